//! The live provider registry: an `arc-swap` snapshot of every provider ready
//! to call, rebuilt from the store after each management write (before the
//! write's response), and the model lists fetched from upstreams in the
//! background.
//!
//! The request path only loads the snapshot (no lock, no database). Unchanged
//! providers keep their `Upstream` so their connection pools survive a reload.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::Utc;
use heimdall_providers::{ProviderConfig, Upstream};
use heimdall_store::{Store, StoreError, StoredProvider, StoredProviderKey};

use super::dto::{self, SeedProvider};
use crate::config::{Config, ConfigError};

/// How often model lists are refreshed from upstreams.
const MODELS_REFRESH: Duration = Duration::from_secs(300);

/// Providers by name, as of the last reload.
#[derive(Debug, Default)]
pub struct Snapshot {
    providers: HashMap<String, Upstream>,
}

impl Snapshot {
    /// A provider ready to call.
    pub fn get(&self, name: &str) -> Option<&Upstream> {
        self.providers.get(name)
    }

    /// True when `name` is a configured provider.
    pub fn contains(&self, name: &str) -> bool {
        self.providers.contains_key(name)
    }

    /// Names, sorted (for messages and listings).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.providers.keys().cloned().collect();
        v.sort();
        v
    }
}

#[derive(Debug, Default)]
struct Inner {
    snapshot: ArcSwap<Snapshot>,
    /// provider → bare model ids the upstream lists.
    models: ArcSwap<HashMap<String, Vec<String>>>,
    /// Serialises reloads so an older read never overwrites a newer one.
    reload_lock: tokio::sync::Mutex<()>,
    /// The model-list fetch running for each provider, with the instance it
    /// fetches for: a reload aborts the fetch of every provider it replaces
    /// or removes, so a deleted provider's retries stop at once.
    refreshing: std::sync::Mutex<HashMap<String, (Upstream, tokio::task::AbortHandle)>>,
}

impl Inner {
    /// Starts fetching `up`'s model list, unless `up` is no longer the live
    /// instance of its provider; replaces a fetch already running for it.
    fn spawn_refresh(self: &Arc<Self>, up: Upstream) {
        let name = up.config().name.clone();
        let mut running = self
            .refreshing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // checked under the lock that `retire` takes after a snapshot swap,
        // so a fetch for a replaced instance is either never started or aborted
        let live = self
            .snapshot
            .load()
            .get(&name)
            .is_some_and(|cur| cur.same_instance(&up));
        if !live {
            return;
        }
        let weak = Arc::downgrade(self);
        let task = tokio::spawn({
            let up = up.clone();
            async move { refresh_one(&weak, &up).await }
        });
        if let Some((_, old)) = running.insert(name, (up, task.abort_handle())) {
            old.abort();
        }
    }

    /// Aborts the fetches of providers that are gone or were replaced, and
    /// forgets the model lists of providers that are gone.
    fn retire(&self, next: &Snapshot) {
        let mut running = self
            .refreshing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        running.retain(|name, (up, task)| {
            let live = next.get(name).is_some_and(|cur| cur.same_instance(up));
            if !live {
                task.abort();
            }
            live
        });
        if self.models.load().keys().any(|k| !next.contains(k)) {
            self.models.rcu(|current| {
                let mut m = HashMap::clone(current);
                m.retain(|k, _| next.contains(k));
                m
            });
        }
    }
}

/// Cheap to clone; shared by the request path and the management API.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl Registry {
    /// Seeds the store from the config file, builds the first snapshot and
    /// starts the background model refresh.
    pub async fn start(store: &Store, config: &Config) -> Result<Registry, ConfigError> {
        seed(store, config).await?;
        let registry = Registry::default();
        registry
            .reload(store)
            .await
            .map_err(|e| ConfigError(format!("cannot load providers: {e}")))?;
        spawn_model_refresh(Arc::downgrade(&registry.inner));
        Ok(registry)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    /// Model ids last fetched from each provider.
    pub fn models(&self) -> Arc<HashMap<String, Vec<String>>> {
        self.inner.models.load_full()
    }

    /// Rebuilds the snapshot from the store. Providers whose configuration did
    /// not change keep their client; new or changed ones get their model list
    /// fetched in the background.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let _guard = self.inner.reload_lock.lock().await;
        let providers = store.list_providers().await?;
        let keys = store.list_provider_keys(None).await?;
        let old = self.snapshot();
        let mut next = HashMap::new();
        let mut changed = Vec::new();
        for p in &providers {
            let own: Vec<&StoredProviderKey> =
                keys.iter().filter(|k| k.provider == p.name).collect();
            let Some(cfg) = dto::live_config(p, &own) else {
                continue;
            };
            match old.get(&p.name) {
                Some(up) if up.config() == &cfg => {
                    next.insert(p.name.clone(), up.clone());
                }
                _ => match Upstream::new(cfg) {
                    Ok(up) => {
                        changed.push(up.clone());
                        next.insert(p.name.clone(), up);
                    }
                    Err(e) => tracing::warn!(provider = %p.name, error = %e, "provider not loaded"),
                },
            }
        }
        let next = Arc::new(Snapshot { providers: next });
        self.inner.snapshot.store(next.clone());
        self.inner.retire(&next);
        for up in changed {
            self.inner.spawn_refresh(up);
        }
        Ok(())
    }
}

async fn refresh_one(inner: &Weak<Inner>, up: &Upstream) {
    let name = up.config().name.clone();
    match up.list_models().await {
        Ok(models) => {
            let Some(inner) = inner.upgrade() else { return };
            let ids: Vec<String> = models.into_iter().map(|m| m.id).collect();
            inner.models.rcu(|current| {
                let mut m = HashMap::clone(current);
                m.insert(name.clone(), ids.clone());
                m
            });
        }
        Err(e) => tracing::debug!(provider = %name, error = %e, "model list not fetched"),
    }
}

/// Every five minutes, refreshes every provider's model list (one task per
/// provider, aborted when the provider is replaced or deleted); stops when
/// the registry is gone.
fn spawn_model_refresh(inner: Weak<Inner>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(MODELS_REFRESH).await;
            let Some(strong) = inner.upgrade() else {
                return;
            };
            let snapshot = strong.snapshot.load_full();
            for up in snapshot.providers.values() {
                strong.spawn_refresh(up.clone());
            }
        }
    });
}

/// Applies the config file's `providers`: the file wins for the providers and
/// keys (by name) it lists; everything else is left alone.
async fn seed(store: &Store, config: &Config) -> Result<(), ConfigError> {
    let seeds = dto::parse_seed(&config.providers).map_err(ConfigError)?;
    for (name, seed) in seeds {
        seed_one(store, &name, seed)
            .await
            .map_err(|e| ConfigError(format!("providers.{name}: {e}")))?;
    }
    Ok(())
}

async fn seed_one(store: &Store, name: &str, seed: SeedProvider) -> Result<(), String> {
    let kind = dto::checked_kind(name, seed.kind.as_deref()).map_err(|e| e.message)?;
    let network = seed.network_config.unwrap_or_default();
    dto::check_network(&network).map_err(|e| e.message)?;
    let now = Utc::now();
    let created_at = store
        .get_provider(name)
        .await
        .map_err(|e| e.to_string())?
        .map_or(now, |p| p.created_at);
    let row = StoredProvider {
        name: name.to_owned(),
        kind: kind.as_str().to_owned(),
        network_config: serde_json::to_value(&network).map_err(|e| e.to_string())?,
        created_at,
        updated_at: now,
    };
    store
        .upsert_provider(&row)
        .await
        .map_err(|e| e.to_string())?;
    let existing = store
        .list_provider_keys(Some(name))
        .await
        .map_err(|e| e.to_string())?;
    for key in seed.keys {
        dto::check_key(&key).map_err(|e| format!("key \"{}\": {}", key.name, e.message))?;
        let found = existing.iter().find(|k| k.name == key.name);
        let row = StoredProviderKey {
            id: found.map_or_else(|| uuid::Uuid::new_v4().to_string(), |k| k.id.clone()),
            provider: name.to_owned(),
            name: key.name.clone(),
            value: dto::key_value_json(&key.value),
            models: key.models.clone(),
            weight: key.weight,
            enabled: key.enabled,
            created_at: found.map_or(now, |k| k.created_at),
        };
        let res = if found.is_some() {
            store.update_provider_key(&row).await
        } else {
            store.insert_provider_key(&row).await
        };
        res.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// For tests of the request path: a registry over given configurations.
pub fn from_configs(configs: Vec<ProviderConfig>) -> Registry {
    let registry = Registry::default();
    let providers = configs
        .into_iter()
        .filter_map(|c| Upstream::new(c).ok())
        .map(|u| (u.config().name.clone(), u))
        .collect();
    registry
        .inner
        .snapshot
        .store(Arc::new(Snapshot { providers }));
    registry
}

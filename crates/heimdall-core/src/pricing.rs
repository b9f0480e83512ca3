//! Model prices: the shipped table (`data/prices.json`, with its source and
//! date), admin overrides, lookup by provider name then by provider kind, and
//! cost arithmetic in integer nano-dollars.
//!
//! A dated model id (`gpt-4o-mini-2024-07-18`, `claude-3-5-haiku-20241022`)
//! takes the price of the longest listed model it extends with `-`.

use std::collections::HashMap;

use serde::Deserialize;

/// Prices in nano-dollars per million tokens (so $0.075/M is exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub input: i64,
    pub output: i64,
    pub cached_input: Option<i64>,
}

/// Where a price comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource {
    Shipped,
    Override,
}

impl PriceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceSource::Shipped => "shipped",
            PriceSource::Override => "override",
        }
    }
}

/// Tokens of one call, split the way prices apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUse {
    /// All input tokens, cached ones included.
    pub prompt: u64,
    /// Input tokens read from the provider's cache (part of `prompt`).
    pub cached: u64,
    pub completion: u64,
}

const MILLION: i128 = 1_000_000;

/// USD per million tokens → nano-dollars per million tokens.
pub fn per_million_nanos(usd: f64) -> Option<i64> {
    if !usd.is_finite() || !(0.0..=1e6).contains(&usd) {
        return None;
    }
    Some((usd * 1e9).round() as i64)
}

impl Price {
    pub fn from_usd(input: f64, output: f64, cached_input: Option<f64>) -> Option<Price> {
        Some(Price {
            input: per_million_nanos(input)?,
            output: per_million_nanos(output)?,
            cached_input: match cached_input {
                Some(c) => Some(per_million_nanos(c)?),
                None => None,
            },
        })
    }

    /// Cost of a call in nano-dollars: uncached input at the input price,
    /// cached input at the cached price (or the input price), output at the
    /// output price. Rounded to the nearest nano-dollar.
    pub fn cost(&self, u: &TokenUse) -> i64 {
        let cached = u.cached.min(u.prompt);
        let uncached = u.prompt - cached;
        let total = i128::from(uncached) * i128::from(self.input)
            + i128::from(cached) * i128::from(self.cached_input.unwrap_or(self.input))
            + i128::from(u.completion) * i128::from(self.output);
        i64::try_from((total + MILLION / 2) / MILLION).unwrap_or(i64::MAX)
    }
}

#[derive(Deserialize)]
struct ShippedFile {
    source: String,
    date: String,
    prices: Vec<ShippedEntry>,
}

#[derive(Deserialize)]
struct ShippedEntry {
    provider: String,
    model: String,
    input: f64,
    output: f64,
    cached_input: Option<f64>,
}

/// One row of `GET /api/pricing`.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceRow {
    pub provider: String,
    pub model: String,
    pub price: Price,
    pub source: PriceSource,
}

/// The shipped prices plus overrides.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    shipped: HashMap<(String, String), Price>,
    overrides: HashMap<(String, String), Price>,
    pub shipped_source: String,
    pub shipped_date: String,
}

impl PriceTable {
    /// The table shipped with this build, without overrides.
    pub fn shipped() -> PriceTable {
        let file: ShippedFile = match serde_json::from_str(include_str!("../data/prices.json")) {
            Ok(f) => f,
            Err(_) => return PriceTable::default(),
        };
        let shipped = file
            .prices
            .into_iter()
            .filter_map(|e| {
                Some((
                    (e.provider, e.model),
                    Price::from_usd(e.input, e.output, e.cached_input)?,
                ))
            })
            .collect();
        PriceTable {
            shipped,
            overrides: HashMap::new(),
            shipped_source: file.source,
            shipped_date: file.date,
        }
    }

    /// This table with `overrides` (provider, model, price) applied.
    pub fn with_overrides(
        mut self,
        overrides: impl IntoIterator<Item = (String, String, Price)>,
    ) -> PriceTable {
        self.overrides = overrides
            .into_iter()
            .map(|(p, m, price)| ((p, m), price))
            .collect();
        self
    }

    fn prefixed<'a>(
        map: &'a HashMap<(String, String), Price>,
        provider: &'a str,
        model: &'a str,
    ) -> impl Iterator<Item = (usize, Price)> + 'a {
        map.iter()
            .filter(move |((p, m), _)| {
                p == provider
                    && model.len() > m.len()
                    && model.starts_with(m.as_str())
                    && model.as_bytes()[m.len()] == b'-'
            })
            .map(|((_, m), price)| (m.len(), *price))
    }

    /// The price of `model` for a provider named `provider` of kind `kind`:
    /// exact ids first (overrides before shipped, name before kind), then the
    /// longest listed model the id extends.
    pub fn lookup(&self, provider: &str, kind: &str, model: &str) -> Option<(Price, PriceSource)> {
        for name in [provider, kind] {
            let key = (name.to_string(), model.to_string());
            if let Some(p) = self.overrides.get(&key) {
                return Some((*p, PriceSource::Override));
            }
            if let Some(p) = self.shipped.get(&key) {
                return Some((*p, PriceSource::Shipped));
            }
        }
        for name in [provider, kind] {
            let best = Self::prefixed(&self.overrides, name, model)
                .map(|(len, p)| (len, 1, p, PriceSource::Override))
                .chain(
                    Self::prefixed(&self.shipped, name, model)
                        .map(|(len, p)| (len, 0, p, PriceSource::Shipped)),
                )
                .max_by_key(|(len, rank, _, _)| (*len, *rank));
            if let Some((_, _, p, src)) = best {
                return Some((p, src));
            }
        }
        None
    }

    pub fn has_override(&self, provider: &str, model: &str) -> bool {
        self.overrides
            .contains_key(&(provider.to_string(), model.to_string()))
    }

    /// Every price, overrides replacing shipped ones, sorted.
    pub fn rows(&self) -> Vec<PriceRow> {
        let mut rows: Vec<PriceRow> = self
            .shipped
            .iter()
            .filter(|(k, _)| !self.overrides.contains_key(*k))
            .map(|((p, m), price)| PriceRow {
                provider: p.clone(),
                model: m.clone(),
                price: *price,
                source: PriceSource::Shipped,
            })
            .chain(self.overrides.iter().map(|((p, m), price)| PriceRow {
                provider: p.clone(),
                model: m.clone(),
                price: *price,
                source: PriceSource::Override,
            }))
            .collect();
        rows.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_loads_with_source_and_date() {
        let t = PriceTable::shipped();
        assert!(t.rows().len() > 20);
        assert!(!t.shipped_source.is_empty());
        assert!(!t.shipped_date.is_empty());
        let (p, src) = t.lookup("openai", "openai", "gpt-4o-mini").unwrap();
        assert_eq!(src, PriceSource::Shipped);
        assert_eq!(p.input, 150_000_000);
    }

    #[test]
    fn dated_models_take_the_base_price() {
        let t = PriceTable::shipped();
        let (p, _) = t
            .lookup("anthropic", "anthropic", "claude-3-5-haiku-20241022")
            .unwrap();
        assert_eq!(p.output, 4_000_000_000);
        let (mini, _) = t
            .lookup("openai", "openai", "gpt-4o-mini-2024-07-18")
            .unwrap();
        assert_eq!(mini.input, 150_000_000, "longest prefix wins over gpt-4o");
        assert!(t.lookup("openai", "openai", "gpt-4ox").is_none());
    }

    #[test]
    fn lookup_by_name_then_kind_and_overrides_win() {
        let groq = Price::from_usd(0.05, 0.08, None).unwrap();
        let t = PriceTable::shipped().with_overrides([
            ("groq".to_string(), "llama".to_string(), groq),
            (
                "openai".to_string(),
                "gpt-4o".to_string(),
                Price::from_usd(1.0, 2.0, None).unwrap(),
            ),
        ]);
        assert_eq!(t.lookup("groq", "openai", "llama").unwrap().0, groq);
        assert_eq!(
            t.lookup("openai-eu", "openai", "gpt-4o-mini").unwrap().1,
            PriceSource::Shipped
        );
        let (p, src) = t.lookup("openai", "openai", "gpt-4o").unwrap();
        assert_eq!((p.input, src), (1_000_000_000, PriceSource::Override));
        assert!(t.lookup("groq", "openai", "nothing").is_none());
    }

    #[test]
    fn cost_uses_cached_prices() {
        let p = Price::from_usd(2.5, 10.0, Some(1.25)).unwrap();
        // 1000 prompt of which 400 cached, 100 completion:
        // 600 × 2.5 + 400 × 1.25 + 100 × 10 = 1500 + 500 + 1000 = 3000 $/M → 0.003 $ = 3_000_000 nanos.
        let c = p.cost(&TokenUse {
            prompt: 1000,
            cached: 400,
            completion: 100,
        });
        assert_eq!(c, 3_000_000);
        let no_cache_price = Price::from_usd(2.5, 10.0, None).unwrap();
        assert_eq!(
            no_cache_price.cost(&TokenUse {
                prompt: 1000,
                cached: 400,
                completion: 0
            }),
            2_500_000
        );
    }
}

//! Unit tests of template validation, partial update and id assignment.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
}

fn create(v: serde_json::Value) -> Result<ValidatedCreate, ValidationError> {
    let req: ProfileCreate =
        serde_json::from_value(v).map_err(|e| ValidationError(e.to_string()))?;
    validate_create(req, now())
}

fn err(v: serde_json::Value) -> String {
    create(v).unwrap_err().0
}

#[test]
fn trims_name_and_dedupes_tags() {
    let c = create(json!({"name": "  Eng  ", "tags": [" a", "b", "a "]})).unwrap();
    assert_eq!(c.name, "Eng");
    assert_eq!(c.tags, vec!["a", "b"]);
    assert_eq!(c.policy.timezone, "UTC");
    assert!(!c.policy.calendar_aligned);
}

#[test]
fn rejects_bad_names() {
    assert!(err(json!({})).contains("name is required"));
    assert!(err(json!({"name": "   "})).contains("must not be empty"));
    assert!(err(json!({"name": "x".repeat(256)})).contains("255"));
    assert!(create(json!({"name": "é".repeat(255)})).is_ok());
}

#[test]
fn rejects_bad_tags() {
    assert!(err(json!({"name": "a", "tags": [" "]})).contains("tags[0]"));
    assert!(err(json!({"name": "a", "tags": ["x".repeat(65)]})).contains("64"));
    let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    assert!(err(json!({"name": "a", "tags": many})).contains("50"));
}

#[test]
fn budgets_need_positive_limits_and_valid_unique_durations() {
    let b = |budgets: serde_json::Value| err(json!({"name": "a", "budgets": budgets}));
    assert!(b(json!([{"max_limit": 0, "reset_duration": "1d"}])).contains("greater than 0"));
    assert!(b(json!([{"max_limit": -1, "reset_duration": "1d"}])).contains("greater than 0"));
    assert!(b(json!([{"reset_duration": "1d"}])).contains("max_limit is required"));
    assert!(b(json!([{"max_limit": 1}])).contains("reset_duration is required"));
    assert!(
        b(json!([{"max_limit": 1, "reset_duration": "1x"}])).contains("budgets[0].reset_duration")
    );
    assert!(b(json!([{"max_limit": 1, "reset_duration": "1d"}, {"max_limit": 2, "reset_duration": "1d"}])).contains("another budget"));
    assert!(b(json!([{"max_limit": 1, "reset_duration": "1d", "reset_config": {"quarter_start_month": 4}}])).contains("only valid with a quarterly"));
    assert!(b(json!([{"max_limit": 1, "reset_duration": "1Q", "reset_config": {"quarter_start_month": 13}}])).contains("between 1 and 12"));
    assert!(b(json!([{"max_limit": 2e9, "reset_duration": "1d"}])).contains("at most"));
    let ok = create(json!({"name": "a", "budgets": [
        {"max_limit": 1, "reset_duration": "1d"},
        {"max_limit": 1, "reset_duration": "7d"},
        {"max_limit": 1, "reset_duration": "2Q", "reset_config": {"quarter_start_month": 11}}
    ]}))
    .unwrap();
    assert_eq!(ok.policy.budgets.len(), 3);
    assert_eq!(ok.policy.budgets[0].max_limit.nanos(), 1_000_000_000);
}

#[test]
fn the_same_duration_is_allowed_on_different_owners() {
    let ok = create(json!({"name": "a",
        "budgets": [{"max_limit": 1, "reset_duration": "1d"}],
        "provider_configs": [{"provider_name": "openai", "budgets": [{"max_limit": 1, "reset_duration": "1d"}]}]
    }));
    assert!(ok.is_ok());
}

#[test]
fn rate_limits_need_pairs_and_no_quarters() {
    let rl = |v: serde_json::Value| err(json!({"name": "a", "rate_limit": v}));
    assert!(rl(json!({})).contains("neither"));
    assert!(rl(json!({"request_max_limit": 5})).contains("request_reset_duration is required"));
    assert!(
        rl(json!({"token_max_limit": 0, "token_reset_duration": "1m"})).contains("greater than 0")
    );
    assert!(
        rl(json!({"token_max_limit": 5, "token_reset_duration": "1Q"})).contains("budgets only")
    );
    let ok = create(
        json!({"name": "a", "rate_limit": {"token_max_limit": 5, "token_reset_duration": "1M"}}),
    )
    .unwrap();
    let r = ok.policy.rate_limit.unwrap();
    assert_eq!(r.token_max_limit, Some(5));
    assert_eq!(r.request_max_limit, None);
}

#[test]
fn provider_configs_are_unique_and_regexes_compile() {
    let pc = |v: serde_json::Value| err(json!({"name": "a", "provider_configs": v}));
    assert!(
        pc(json!([{"provider_name": "openai"}, {"provider_name": "openai"}]))
            .contains("appears twice")
    );
    assert!(pc(json!([{"provider_name": ""}])).contains("provider_name is required"));
    assert!(
        pc(json!([{"provider_name": "openai", "allowed_models": ["regex:("]}]))
            .contains("invalid regular expression")
    );
    let ok = create(json!({"name": "a", "provider_configs": [{"provider_name": "openai", "allowed_models": ["regex:gpt-4o.*"]}]})).unwrap();
    assert_eq!(
        ok.policy.provider_configs[0].allowed_models,
        vec!["regex:gpt-4o.*"]
    );
    let re = compile_model_regex("gpt-4o.*").unwrap();
    assert!(re.is_match("GPT-4o-mini"));
    assert!(!re.is_match("x-gpt-4o"));
}

#[test]
fn timezone_must_be_iana() {
    assert!(err(json!({"name": "a", "timezone": "Mars/Olympus"})).contains("IANA"));
    assert!(create(json!({"name": "a", "timezone": "America/New_York"})).is_ok());
}

#[test]
fn mcp_exclusion_of_a_granted_server_is_rejected() {
    let e = err(json!({"name": "a",
        "mcp_servers": [{"mcp_server_id": "fs"}],
        "mcp_tool_overrides": [{"mcp_client_id": "fs", "tool_name": "rm", "action": "exclude"}]}));
    assert!(e.contains("grants whole"), "{e}");
    assert!(
        create(json!({"name": "a",
        "mcp_servers": [{"mcp_server_id": "fs"}],
        "mcp_tool_overrides": [{"mcp_client_id": "fs", "tool_name": "rm", "action": "include"}]}))
        .is_ok()
    );
}

#[test]
fn rotation_interval_forms_and_range() {
    let ns = |v: serde_json::Value| parse_rotation_interval(&serde_json::from_value(v).unwrap());
    assert_eq!(ns(json!("30d")).unwrap(), 30 * 86_400 * 1_000_000_000);
    assert_eq!(ns(json!("12h")).unwrap(), 12 * 3_600 * 1_000_000_000);
    assert_eq!(ns(json!("90m")).unwrap(), 90 * 60 * 1_000_000_000);
    assert_eq!(ns(json!(3_600_000_000_000_i64)).unwrap(), 3_600_000_000_000);
    assert_eq!(ns(json!("")).unwrap(), 0);
    assert_eq!(ns(json!(0)).unwrap(), 0);
    assert!(ns(json!("59m")).is_err());
    assert!(ns(json!("366d")).is_err());
    assert!(ns(json!("soon")).is_err());
    assert!(ns(json!(-5)).is_err());
}

#[test]
fn next_rotation_defaults_to_now_plus_interval_and_must_be_future() {
    let c = create(json!({"name": "a", "auto_rotation_interval": "1d"})).unwrap();
    assert_eq!(c.next_rotation_at, Some(now() + chrono::Duration::days(1)));
    assert!(err(json!({"name": "a", "auto_rotation_interval": "1d", "next_rotation_at": "2020-01-01T00:00:00Z"})).contains("future"));
    let off = create(json!({"name": "a"})).unwrap();
    assert_eq!(off.next_rotation_at, None);
}

#[test]
fn unknown_fields_are_named_and_read_only_ones_ignored() {
    let e = err(json!({"name": "a", "colour": "red"}));
    assert!(e.contains("colour"), "{e}");
    assert!(create(json!({"name": "a", "id": 7, "version": 3, "is_active": true,
        "budgets": [{"max_limit": 1, "reset_duration": "1d", "id": "x", "scope": "total", "current_usage": 3.0, "last_reset": null}]})).is_ok());
    let e = err(
        json!({"name": "a", "budgets": [{"max_limit": 1, "reset_duration": "1d", "bogus": 1}]}),
    );
    assert!(e.contains("bogus"), "{e}");
}

fn template() -> AccessProfile {
    let c = create(json!({"name": "T", "description": "d", "tags": ["x"],
        "budgets": [{"max_limit": 1, "reset_duration": "1d"}],
        "rate_limit": {"request_max_limit": 5, "request_reset_duration": "1m"},
        "provider_configs": [{"provider_name": "openai", "all_models_allowed": true}]}))
    .unwrap();
    let mut policy = c.policy;
    let mut next = 100;
    policy.assign_ids(None, &mut || {
        next += 1;
        next
    });
    AccessProfile {
        id: 1,
        name: c.name,
        description: c.description,
        is_active: false,
        version: 1,
        tags: c.tags,
        policy,
        rotation: RotationSchedule::default(),
        created_at: now(),
        updated_at: now(),
    }
}

fn patch(v: serde_json::Value) -> ProfilePatch {
    serde_json::from_value(v).unwrap()
}

#[test]
fn patch_keeps_omitted_fields_and_null_clears() {
    let t = template();
    let p = apply_patch(&t, patch(json!({"tags": ["y"]})), now()).unwrap();
    assert_eq!(p.name, "T");
    assert_eq!(p.description.as_deref(), Some("d"));
    assert_eq!(p.tags, vec!["y"]);
    assert!(p.policy.rate_limit.is_some());
    assert!(p.changes_version_of(&t));

    let p = apply_patch(
        &t,
        patch(json!({"description": null, "rate_limit": null})),
        now(),
    )
    .unwrap();
    assert_eq!(p.description, None);
    assert_eq!(p.policy.rate_limit, None);
    assert_eq!(p.policy.budgets.len(), 1);
}

#[test]
fn patch_with_current_values_changes_nothing() {
    let t = template();
    let p = apply_patch(
        &t,
        patch(json!({"name": " T ", "tags": ["x"],
        "budgets": [{"max_limit": 1, "reset_duration": "1d", "id": "whatever"}]})),
        now(),
    )
    .unwrap();
    assert!(!p.changes_anything_of(&t));
}

#[test]
fn patch_validates_like_create() {
    let t = template();
    assert!(apply_patch(&t, patch(json!({"name": ""})), now()).is_err());
    assert!(
        apply_patch(
            &t,
            patch(json!({"budgets": [{"max_limit": 1, "reset_duration": "nope"}]})),
            now()
        )
        .is_err()
    );
    assert!(apply_patch(&t, patch(json!({"timezone": "Nowhere/Else"})), now()).is_err());
    // An exclusion that conflicts with a server grant already on the template.
    let mut with_server = t.clone();
    with_server.policy.mcp_servers = vec![McpServer {
        mcp_server_id: "fs".into(),
    }];
    let e = apply_patch(
        &with_server,
        patch(
            json!({"mcp_tool_overrides": [{"mcp_client_id": "fs", "tool_name": "rm", "action": "exclude"}]}),
        ),
        now(),
    );
    assert!(e.is_err());
}

#[test]
fn assign_ids_reuses_matching_ids_and_mints_new_ones() {
    let t = template();
    let mut changed = t.policy.without_ids();
    changed.budgets.push(Budget {
        id: String::new(),
        max_limit: crate::money::Money(5),
        reset_duration: "1w".into(),
        reset_config: None,
        created_at: None,
        override_: None,
    });
    let mut n = 500;
    changed.assign_ids(Some(&t.policy), &mut || {
        n += 1;
        n
    });
    assert_eq!(changed.budgets[0].id, t.policy.budgets[0].id);
    assert_ne!(changed.budgets[1].id, t.policy.budgets[0].id);
    assert!(!changed.budgets[1].id.is_empty());
    assert_eq!(
        changed.provider_configs[0].id,
        t.policy.provider_configs[0].id
    );
    assert_eq!(
        changed.rate_limit.as_ref().unwrap().id,
        t.policy.rate_limit.as_ref().unwrap().id
    );
    let mut fresh = t.policy.without_ids();
    fresh.assign_ids(None, &mut || 999);
    assert_eq!(fresh.provider_configs[0].id, 999);
    assert_ne!(fresh.budgets[0].id, t.policy.budgets[0].id);
}

#[test]
fn rotation_patch_recomputes_next_rotation() {
    let t = template();
    let p = apply_patch(&t, patch(json!({"auto_rotation_interval": "2d"})), now()).unwrap();
    assert_eq!(
        p.rotation.next_rotation_at,
        Some(now() + chrono::Duration::days(2))
    );
    assert!(p.changes_version_of(&t));
    let off = apply_patch(&t, patch(json!({"auto_rotation_interval": ""})), now()).unwrap();
    assert_eq!(off.rotation.next_rotation_at, None);
    assert!(
        apply_patch(
            &t,
            patch(json!({"next_rotation_at": "2030-01-01T00:00:00Z"})),
            now()
        )
        .is_err()
    );
}

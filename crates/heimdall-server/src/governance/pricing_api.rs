//! `/api/pricing`: list prices, set an override, go back to the shipped price.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use heimdall_core::pricing::{Price, PriceRow, PriceSource, per_million_nanos};

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// Admin routes for prices.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/pricing", get(list)).route(
        "/api/pricing/{provider}/{*model}",
        axum::routing::put(put).delete(delete),
    )
}

fn usd(nanos: i64) -> f64 {
    nanos as f64 / 1e9
}

fn price_json(provider: &str, model: &str, p: &Price, source: PriceSource) -> Value {
    json!({
        "provider": provider,
        "model": model,
        "input_cost_per_million_tokens": usd(p.input),
        "output_cost_per_million_tokens": usd(p.output),
        "cached_input_cost_per_million_tokens": p.cached_input.map(usd),
        "source": source.as_str(),
    })
}

async fn list(State(state): State<AppState>) -> Response {
    let table = state.governance.prices();
    let rows: Vec<Value> = table
        .rows()
        .iter()
        .map(|r: &PriceRow| price_json(&r.provider, &r.model, &r.price, r.source))
        .collect();
    axum::Json(json!({
        "prices": rows,
        "shipped_source": table.shipped_source,
        "shipped_date": table.shipped_date,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceBody {
    input_cost_per_million_tokens: Option<f64>,
    output_cost_per_million_tokens: Option<f64>,
    cached_input_cost_per_million_tokens: Option<f64>,
    #[allow(
        dead_code,
        reason = "read-only fields of the response shape are accepted and ignored"
    )]
    provider: Option<serde::de::IgnoredAny>,
    #[allow(
        dead_code,
        reason = "read-only fields of the response shape are accepted and ignored"
    )]
    model: Option<serde::de::IgnoredAny>,
    #[allow(
        dead_code,
        reason = "read-only fields of the response shape are accepted and ignored"
    )]
    source: Option<serde::de::IgnoredAny>,
}

fn cost(field: &str, v: Option<f64>, required: bool) -> Result<Option<i64>, ApiError> {
    match v {
        None if required => Err(ApiError::invalid_request(format!(
            "{field} is required (USD per million tokens, ≥ 0)"
        ))),
        None => Ok(None),
        Some(x) => per_million_nanos(x).map(Some).ok_or_else(|| {
            ApiError::invalid_request(format!(
                "{field} must be a number ≥ 0 (USD per million tokens)"
            ))
        }),
    }
}

fn check_names(provider: &str, model: &str) -> Result<(), ApiError> {
    if provider.is_empty() || provider.len() > 64 || model.is_empty() || model.len() > 256 {
        return Err(ApiError::invalid_request(
            "provider (1–64 characters) and model (1–256 characters) are required in the path",
        ));
    }
    Ok(())
}

async fn put(
    State(state): State<AppState>,
    Path((provider, model)): Path<(String, String)>,
    JsonBody(body): JsonBody<PriceBody>,
) -> Result<Response, ApiError> {
    check_names(&provider, &model)?;
    let price = Price {
        input: cost(
            "input_cost_per_million_tokens",
            body.input_cost_per_million_tokens,
            true,
        )?
        .unwrap_or(0),
        output: cost(
            "output_cost_per_million_tokens",
            body.output_cost_per_million_tokens,
            true,
        )?
        .unwrap_or(0),
        cached_input: cost(
            "cached_input_cost_per_million_tokens",
            body.cached_input_cost_per_million_tokens,
            false,
        )?,
    };
    state
        .store
        .put_price_override(&provider, &model, price, state.clock.now())
        .await?;
    state.governance.reload_prices(&state.store).await?;
    Ok(axum::Json(price_json(&provider, &model, &price, PriceSource::Override)).into_response())
}

async fn delete(
    State(state): State<AppState>,
    Path((provider, model)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_names(&provider, &model)?;
    if !state.store.delete_price_override(&provider, &model).await? {
        return Err(ApiError::not_found(format!(
            "no price override for {provider}/{model}"
        )));
    }
    state.governance.reload_prices(&state.store).await?;
    let table = state.governance.prices();
    let body = match table.lookup(&provider, &provider, &model) {
        Some((p, src)) => price_json(&provider, &model, &p, src),
        None => {
            json!({"provider": provider, "model": model, "message": "override removed; the model has no shipped price"})
        }
    };
    Ok(axum::Json(body).into_response())
}

//! Liveness, readiness, metrics and the OpenAPI document: the unauthenticated endpoints.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;

#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/livez", tag = "health", responses((status = 200, body = Live)))]
pub async fn livez() -> Json<Live> {
    Json(Live { status: "ok" })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `unavailable`.
    status: &'static str,
    /// Each check: `ok`, or what failed.
    #[schema(value_type = Object)]
    checks: serde_json::Map<String, serde_json::Value>,
}

/// The store is writable and its schema current. 503 lists the failing checks.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Ready), (status = 503, body = Ready)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let health = tokio::time::timeout(Duration::from_secs(3), state.store().health()).await;
    let mut checks = serde_json::Map::new();
    let mut ok = true;
    let mut put = |name: &str, r: Result<(), String>| {
        ok &= r.is_ok();
        checks.insert(
            name.into(),
            serde_json::Value::String(r.err().unwrap_or_else(|| "ok".into())),
        );
    };
    match health {
        Ok(h) => {
            put("store_writable", h.writable);
            put("migrations", h.migrations);
        }
        Err(_) => put(
            "store_writable",
            Err("the store did not answer within 3s".into()),
        ),
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Ready {
            status: if ok { "ready" } else { "unavailable" },
            checks,
        }),
    )
        .into_response()
}

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state.metrics().render().map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

//! The HTTP face of DGC: the axum router, authentication, the error → status table, request ids,
//! metrics and the OpenAPI document. This is the only crate that knows HTTP status codes.
#![forbid(unsafe_code)]

pub mod auth;
mod cache;
pub mod error;
pub mod extract;
pub mod metrics;
mod openapi;
pub mod request_id;
pub mod routes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dgc_store::Store;
use dgc_types::ErrorCode;
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use dgc_runtime::{Instance, MasterKey, audit, bootstrap, crypto};
use error::ApiError;
pub use metrics::Metrics;

/// Size and time limits applied to every request.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted request body.
    pub body_bytes: usize,
    /// Per-request deadline; slower requests get a 503 `timeout`.
    pub request_timeout: Duration,
    /// Largest memory `content`.
    pub memory_content_bytes: usize,
    /// Largest memory `metadata`, as serialized JSON.
    pub memory_metadata_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 2 << 20,
            request_timeout: Duration::from_secs(30),
            memory_content_bytes: 1 << 20,
            memory_metadata_bytes: 64 << 10,
        }
    }
}

/// Everything a handler may use. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<StateInner>,
}

#[derive(Debug)]
struct StateInner {
    store: Arc<dyn Store>,
    limits: Limits,
    metrics: Metrics,
    keys: auth::KeyCache,
    agents: cache::TtlCache<dgc_types::AgentId, dgc_store::AgentRecord>,
    instance: Instance,
    witnesses: audit::Witnesses,
    access_log: bool,
}

/// Options for [`AppState::new`] that have defaults.
#[derive(Debug, Clone)]
pub struct StateOptions {
    pub limits: Limits,
    /// How long a verified key stays cached (bounds how late a revocation made on another
    /// instance is noticed).
    pub key_cache_ttl: Duration,
    /// Log every request at `info` (otherwise only failures are logged).
    pub access_log: bool,
    /// Where signed checkpoints are published outside the database.
    pub witness: audit::WitnessConfig,
}

impl Default for StateOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            key_cache_ttl: Duration::from_secs(5),
            access_log: true,
            witness: audit::WitnessConfig::default(),
        }
    }
}

impl AppState {
    pub async fn new(
        store: Arc<dyn Store>,
        instance: Instance,
        opts: StateOptions,
    ) -> Result<Self, String> {
        let metrics = Metrics::new().map_err(|e| format!("registering metrics: {e}"))?;
        let memories = store
            .count_memories()
            .await
            .map_err(|e| format!("counting memories: {e}"))?;
        let agents = store
            .count_agents()
            .await
            .map_err(|e| format!("counting agents: {e}"))?;
        metrics.memories.set(memories as i64);
        metrics.agents.set(agents as i64);
        // Load the gate engine's built-in policy now (it checks every gate's examples once), not
        // on the first request that needs it.
        routes::agents::builtin_policy().map_err(|e| format!("loading the gate policy: {e:?}"))?;
        let witnesses = audit::Witnesses::new(&opts.witness, &instance.audit.origin)
            .map_err(|e| format!("setting up the checkpoint witness: {e}"))?;
        Ok(Self {
            inner: Arc::new(StateInner {
                store,
                limits: opts.limits,
                metrics,
                keys: auth::KeyCache::new(opts.key_cache_ttl),
                agents: cache::TtlCache::new(opts.key_cache_ttl, 100_000),
                instance,
                witnesses,
                access_log: opts.access_log,
            }),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
    pub fn key_cache(&self) -> &auth::KeyCache {
        &self.inner.keys
    }
    pub fn instance(&self) -> &Instance {
        &self.inner.instance
    }
    /// An agent by id, from the cache or the store (`None` if it does not exist).
    pub async fn agent(
        &self,
        id: &dgc_types::AgentId,
    ) -> Result<Option<Arc<dgc_store::AgentRecord>>, dgc_store::StoreError> {
        if let Some(a) = self.inner.agents.get(id) {
            return Ok(Some(a));
        }
        let found = self.inner.store.get_agent(id).await?.map(Arc::new);
        if let Some(a) = &found {
            self.inner.agents.put(id.clone(), a.clone());
        }
        Ok(found)
    }

    /// Forgets a cached agent after it changed.
    pub fn forget_agent(&self, id: &dgc_types::AgentId) {
        self.inner.agents.remove(id);
    }

    pub fn witnesses(&self) -> &audit::Witnesses {
        &self.inner.witnesses
    }
    pub fn master_key(&self) -> &MasterKey {
        &self.inner.instance.master
    }
}

/// The API routes with their OpenAPI descriptions.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(routes::keys::create_key, routes::keys::list_keys))
        .routes(routes!(routes::keys::revoke_key))
        .routes(routes!(
            routes::agents::create_agent,
            routes::agents::list_agents
        ))
        .routes(routes!(
            routes::agents::get_agent,
            routes::agents::patch_agent,
            routes::agents::delete_agent
        ))
        .routes(routes!(
            routes::memory::create_memory,
            routes::memory::list_memories
        ))
        .routes(routes!(
            routes::memory::get_memory,
            routes::memory::delete_memory
        ))
        .routes(routes!(routes::audit::checkpoint))
        .routes(routes!(routes::audit::checkpoints))
        .routes(routes!(routes::audit::keys))
        .routes(routes!(routes::audit::consistency))
        .routes(routes!(routes::audit::inclusion))
        .routes(routes!(routes::audit::records))
        .routes(routes!(routes::health::livez))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::health::metrics))
}

/// The OpenAPI 3.1 document for every route [`app`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

/// The complete application: routes, fallbacks and the middleware stack.
pub fn app(state: AppState) -> Router {
    let (router, doc) = api_router().split_for_parts();
    let doc = Arc::new(doc);
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn fallback(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} does not accept {method}", uri.path()),
    )
}

/// Request id, deadline, metrics and the access log, around every request.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let request_id = request_id::from_headers(req.headers());
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, route = %route);
    let metrics = state.metrics();
    metrics.http_in_flight.inc();
    let start = Instant::now();
    let deadline = state.limits().request_timeout;
    let mut response = request_id::scope(request_id.clone(), async move {
        match tokio::time::timeout(deadline, next.run(req)).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(
                    timeout_ms = deadline.as_millis() as u64,
                    "request timed out"
                );
                ApiError::new(ErrorCode::Timeout, "").into_response()
            }
        }
    })
    .instrument(span.clone())
    .await;
    let elapsed = start.elapsed();
    metrics.http_in_flight.dec();
    let status = response.status();
    metrics
        .http_requests
        .with_label_values(&[method.as_str(), &route, status.as_str()])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[method.as_str(), &route])
        .observe(elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(request_id::HEADER, v);
    }
    let _g = span.enter();
    let latency_us = elapsed.as_micros() as u64;
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), latency_us, "request failed");
    } else if state.inner.access_log || status.is_client_error() {
        tracing::info!(status = status.as_u16(), latency_us, "request");
    }
    response
}

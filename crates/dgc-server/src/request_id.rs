//! Request ids: honoured from `X-DGC-Request-ID` when well-formed, generated otherwise, and kept in
//! a task-local so errors, logs and (later) events and audit records carry the same id.

use axum::http::HeaderMap;

pub const HEADER: &str = "x-dgc-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, or `-` outside a request.
pub fn current() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_string())
}

/// Runs `f` with `id` as the current request id.
pub async fn scope<F: std::future::Future>(id: String, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

/// The caller's id if acceptable (1–128 visible ASCII characters from a safe set), else a new one.
pub fn from_headers(headers: &HeaderMap) -> String {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map(str::to_string)
        .unwrap_or_else(|| format!("req_{}", dgc_types::ids::new_ulid_body()))
}

//! Request extractors that turn every kind of bad input into a clear JSON error: bodies over the
//! size limit (413), malformed JSON with its position (400), unknown or mistyped fields with their
//! path (422), malformed query strings and path segments (400).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;
use dgc_types::ErrorCode;

/// A JSON body, read within the configured size limit and parsed with precise errors.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// Parses JSON bytes into `T`, classifying errors: syntax → 400, shape/fields → 422.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "the request body is empty; expected a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let msg = strip_position(&inner.to_string());
                if path == "." || path.is_empty() {
                    ApiError::new(ErrorCode::ValidationFailed, msg)
                } else {
                    ApiError::new(ErrorCode::ValidationFailed, format!("{path}: {msg}"))
                }
            }
            _ => ApiError::new(
                ErrorCode::InvalidJson,
                format!(
                    "invalid JSON at line {} column {}: {}",
                    inner.line(),
                    inner.column(),
                    strip_position(&inner.to_string())
                ),
            ),
        }
    })?;
    de.end().map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!(
                "invalid JSON at line {} column {}: trailing characters after the value",
                e.line(),
                e.column()
            ),
        )
    })?;
    Ok(value)
}

/// serde_json appends " at line L column C"; the message states the position itself.
fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Reads a body within `limit` bytes; 413 beyond it.
pub async fn read_body(req: Request, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || {
        ApiError::too_large(format!(
            "the request body exceeds the limit of {limit} bytes"
        ))
    };
    if let Some(len) = req.headers().get(axum::http::header::CONTENT_LENGTH)
        && len
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|n| n > limit as u64)
    {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(req.into_body(), limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "could not read the request body: {e}"
        ))),
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state.limits().body_bytes).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Query parameters; malformed values are a 400 naming the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q)
            .map(ApiQuery)
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))
    }
}

/// Path parameters; a segment that cannot be decoded is a 400.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::bad_request(format!("invalid path: {}", e.body_text())))
    }
}

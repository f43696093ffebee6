//! The error codes every DGC API error carries. Each code maps to exactly one HTTP status in
//! `dgc-server` (the one table from code to status); codes are stable strings clients can match on.

use serde::{Deserialize, Serialize};

/// Stable, machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not well-formed JSON (the message says where).
    InvalidJson,
    /// A query parameter, header or path segment is malformed.
    InvalidRequest,
    /// The search query has nothing searchable in it.
    InvalidQuery,
    /// The pagination cursor was not produced by this server.
    InvalidCursor,
    /// The JSON is well-formed but a field is unknown, missing, of the wrong type or out of range.
    ValidationFailed,
    /// No, malformed, expired or revoked API key.
    Unauthorized,
    /// The key is valid but lacks a capability (or asked for one it does not hold).
    Forbidden,
    /// No such object, or not visible to this key.
    NotFound,
    /// The route exists but not with this HTTP method.
    MethodNotAllowed,
    /// The request conflicts with the current state (duplicate, wrong state).
    Conflict,
    /// The request body or a field in it exceeds a size limit.
    PayloadTooLarge,
    /// Too many requests; retry later.
    RateLimited,
    /// A dependency (store, audit log) cannot serve the request right now.
    Unavailable,
    /// The audit log could not record the action, so the action was not performed.
    AuditUnavailable,
    /// The request took longer than the server's per-request timeout.
    Timeout,
    /// An unexpected server-side failure; the details are in the server log, not the response.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidQuery => "invalid_query",
            Self::InvalidCursor => "invalid_cursor",
            Self::ValidationFailed => "validation_failed",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::AuditUnavailable => "audit_unavailable",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
        }
    }
}

/// The body of every error response: `{"error": {"code", "message", "request_id"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: String,
}

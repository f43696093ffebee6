//! API errors and the one table from error code to HTTP status. Client-facing messages for 5xx
//! errors are generic; their cause goes to the log with the request id.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dgc_store::StoreError;
use dgc_types::{ErrorBody, ErrorCode, ErrorDetail, FieldError};

use crate::request_id;

/// The one table from error code to HTTP status.
pub fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidJson
        | ErrorCode::InvalidRequest
        | ErrorCode::InvalidQuery
        | ErrorCode::InvalidCursor => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable | ErrorCode::AuditUnavailable | ErrorCode::Timeout => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Detail for the log only (never sent to the client).
    pub cause: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            cause: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PayloadTooLarge, message)
    }
    pub fn invalid_field(f: &FieldError) -> Self {
        Self::new(ErrorCode::ValidationFailed, f.to_string())
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: String::new(),
            cause: Some(cause.to_string()),
        }
    }
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        Self {
            code: ErrorCode::Unavailable,
            message: String::new(),
            cause: Some(cause.to_string()),
        }
    }

    pub fn status(&self) -> StatusCode {
        status_for(self.code)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::new(ErrorCode::NotFound, "not found"),
            StoreError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            StoreError::Invalid(f) => ApiError::invalid_field(&f),
            StoreError::InvalidCursor => ApiError::new(
                ErrorCode::InvalidCursor,
                "`after` is not a cursor this list returned",
            ),
            e @ (StoreError::Closed | StoreError::Timeout | StoreError::SchemaTooNew { .. }) => {
                ApiError::unavailable(e)
            }
            e @ StoreError::Audit(_) => ApiError {
                code: ErrorCode::AuditUnavailable,
                message: String::new(),
                cause: Some(e.to_string()),
            },
            e @ StoreError::Backend(_) => ApiError::internal(e),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(f: FieldError) -> Self {
        ApiError::invalid_field(&f)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let request_id = request_id::current();
        let message = if status.is_server_error() {
            if let Some(cause) = &self.cause {
                tracing::error!(request_id = %request_id, code = self.code.as_str(), cause = %cause, "request failed");
            }
            match self.code {
                ErrorCode::Timeout => "the request took too long and was cancelled".to_string(),
                ErrorCode::AuditUnavailable => {
                    "the audit log could not record this action, so it was not performed; retry later".to_string()
                }
                ErrorCode::Unavailable => {
                    "the service is temporarily unavailable; retry later (the request id is in the server log)"
                        .to_string()
                }
                _ => "internal error; the request id identifies the cause in the server log".to_string(),
            }
        } else {
            self.message
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message,
                request_id,
            },
        };
        (status, axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

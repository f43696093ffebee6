//! HTTP handlers, one module per resource. Each handler checks the capability it needs first, then
//! validates input, then calls the store.

pub mod agents;
pub mod audit;
pub mod health;
pub mod keys;
pub mod memory;

use dgc_types::page::{DEFAULT_LIMIT, MAX_LIMIT};
use serde::Deserialize;

use crate::error::ApiError;

/// `limit` and `after`, shared by every list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::bad_request(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            ))),
        }
    }
}

/// Parses an id from a path segment, 400 if it is not an id of that kind.
pub fn parse_id<T: std::str::FromStr<Err = dgc_types::IdError>>(s: &str) -> Result<T, ApiError> {
    s.parse::<T>()
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

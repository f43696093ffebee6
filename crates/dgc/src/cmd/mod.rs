//! CLI commands that talk to a running server.

pub mod agent;
pub mod audit;
pub mod auth;
pub mod memory;

/// A JSON string field or `-`.
pub fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or("-")
}

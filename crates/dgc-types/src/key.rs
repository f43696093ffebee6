//! API keys: what a caller asks for, what it gets back once, and what listing shows (never the secret).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::capability::CapabilitySet;
use crate::duration::DurationSpec;
use crate::ids::{AgentId, KeyId};
use crate::validate::{FieldError, check_text};

/// The prefix of every key secret.
pub const SECRET_PREFIX: &str = "dgc_sk_";
/// Random base62 characters after the prefix (≈ 256 bits).
pub const SECRET_RANDOM_LEN: usize = 43;

/// `POST /v1/keys`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Capabilities for the new key; each must be held by the calling key.
    #[schema(value_type = Vec<String>, example = json!(["memory.*", "agents.read"]))]
    pub capabilities: CapabilitySet,
    /// Lifetime; absent means the calling key's expiry (or none if it has none).
    #[serde(default)]
    pub expires_in: Option<DurationSpec>,
    #[serde(default)]
    pub name: Option<String>,
    /// Restrict the key to these agents; requests about others get 404.
    #[serde(default)]
    pub agent_ids: Option<Vec<AgentId>>,
}

impl CreateKey {
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.capabilities.is_empty() {
            return Err(FieldError::new(
                "capabilities",
                "must name at least one capability",
            ));
        }
        if let Some(n) = &self.name {
            check_text("name", n, 0, 128)?;
        }
        if let Some(e) = self.expires_in
            && e.as_duration().is_zero()
        {
            return Err(FieldError::new("expires_in", "must be positive"));
        }
        if let Some(a) = &self.agent_ids {
            if a.is_empty() {
                return Err(FieldError::new(
                    "agent_ids",
                    "must list at least one agent (omit it for all agents)",
                ));
            }
            if a.len() > 256 {
                return Err(FieldError::new("agent_ids", "at most 256 agents"));
            }
        }
        Ok(())
    }
}

/// A key's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    pub id: KeyId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[schema(value_type = Vec<String>)]
    pub capabilities: CapabilitySet,
    /// Agents the key is limited to; absent means all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_ids: Option<Vec<AgentId>>,
    /// The key that minted this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<KeyId>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
}

/// The response to `POST /v1/keys`: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The secret (`dgc_sk_…`). Store it now: it cannot be shown again.
    pub key: String,
}

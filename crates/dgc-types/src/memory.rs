//! Agent memories: what an agent remembers, how it is tagged and linked, and how it is returned.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::ids::{AgentId, MemoryId};
use crate::validate::{FieldError, check_text};

/// Most tags on one memory.
pub const MAX_TAGS: usize = 32;
/// Most links from one memory.
pub const MAX_LINKS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemoryKind {
    /// Something that happened.
    #[default]
    Episodic,
    /// A fact.
    Semantic,
    /// How to do something.
    Procedural,
    /// A thought about other memories; links to the memories it is about.
    Reflection,
}

impl MemoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Episodic => "episodic",
            Self::Semantic => "semantic",
            Self::Procedural => "procedural",
            Self::Reflection => "reflection",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "episodic" => Self::Episodic,
            "semantic" => Self::Semantic,
            "procedural" => Self::Procedural,
            "reflection" => Self::Reflection,
            _ => return None,
        })
    }
}

/// `POST /v1/agents/{id}/memory`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMemory {
    pub content: String,
    #[serde(default)]
    pub kind: MemoryKind,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Other memories of the same agent this one refers to (a reflection's sources).
    #[serde(default)]
    pub links: Vec<MemoryId>,
}

impl CreateMemory {
    /// Checks everything except the size limits, which the server applies from its config
    /// (413), and link ownership, which the store checks (422).
    pub fn validate(&self) -> Result<(), FieldError> {
        check_text("content", &self.content, 1, usize::MAX)?;
        if self.tags.len() > MAX_TAGS {
            return Err(FieldError::new("tags", format!("at most {MAX_TAGS} tags")));
        }
        for (i, t) in self.tags.iter().enumerate() {
            check_text(&format!("tags[{i}]"), t, 1, 64)?;
        }
        if self.links.len() > MAX_LINKS {
            return Err(FieldError::new(
                "links",
                format!("at most {MAX_LINKS} links"),
            ));
        }
        if self.kind == MemoryKind::Reflection && self.links.is_empty() {
            return Err(FieldError::new(
                "links",
                "a reflection must link the memories it is about",
            ));
        }
        Ok(())
    }
}

/// A memory as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Memory {
    pub id: MemoryId,
    pub agent_id: AgentId,
    pub kind: MemoryKind,
    pub content: String,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Memories this one links to (for a reflection: its sources).
    pub links: Vec<MemoryId>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// BM25 relevance (higher is better); present on search results only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// A memory with the memories that link to it (reflections about it), for `GET …/memory/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemoryDetail {
    #[serde(flatten)]
    pub memory: Memory,
    /// Memories that link to this one.
    pub linked_from: Vec<MemoryId>,
}

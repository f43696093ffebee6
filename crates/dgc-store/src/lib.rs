//! Persistence for DGC: the backend-agnostic [`Store`] trait and its backends (SQLite embedded today;
//! PostgreSQL joins by passing the same conformance suite). SQL stops here: nothing above this
//! crate builds a query.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cursor;
pub mod search;
pub mod sqlite;

use async_trait::async_trait;
use dgc_types::agent::{Agent, AgentSpec};
use dgc_types::key::KeyInfo;
use dgc_types::memory::{Memory, MemoryDetail, MemoryKind};
use dgc_types::{AgentId, CapabilitySet, FieldError, KeyId, MemoryId};
use time::OffsetDateTime;

pub use audit::{AuditFn, AuditRecord, Auditor, StoredCheckpoint};
pub use search::{QueryError, SearchTerms};
pub use sqlite::audit::AuditReader;
pub use sqlite::{SqliteOptions, SqliteStore};

/// What can go wrong in the store. `Backend` carries detail for the log, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// A value the caller supplied is not acceptable for the stored state (e.g. a link to another
    /// agent's memory). The field path says which.
    #[error("{0}")]
    Invalid(FieldError),
    #[error("the pagination cursor is not valid for this list")]
    InvalidCursor,
    #[error(
        "the database schema is version {found}, newer than this build knows ({known}); \
         run a newer dgc or restore a backup made by this version"
    )]
    SchemaTooNew { found: i64, known: i64 },
    /// The audit log could not record the action, so the action was not performed.
    #[error("the audit log could not record this action, so it was not performed: {0}")]
    Audit(String),
    #[error("the store is shutting down")]
    Closed,
    #[error("timed out waiting for the store")]
    Timeout,
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn backend(e: impl std::fmt::Display) -> Self {
        Self::Backend(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A key as stored: its public metadata plus the hash of its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub info: KeyInfo,
    /// SHA-256 of the full secret string.
    pub secret_hash: [u8; 32],
}

/// An agent as stored: the API shape plus its private key, encrypted with the instance master key.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    pub agent: Agent,
    pub secret_key_enc: Vec<u8>,
}

/// A memory to insert. Link targets are checked by the store (same agent, exist).
#[derive(Debug, Clone)]
pub struct NewMemory {
    pub id: MemoryId,
    pub agent_id: AgentId,
    pub kind: MemoryKind,
    pub content: String,
    pub tags: Vec<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub links: Vec<MemoryId>,
    pub created_at: OffsetDateTime,
}

/// Filters shared by memory listing and search.
#[derive(Debug, Clone, Default)]
pub struct MemoryFilter {
    pub kind: Option<MemoryKind>,
    pub tag: Option<String>,
}

/// Which agents a listing may show.
#[derive(Debug, Clone, Default)]
pub struct AgentFilter {
    /// `Some`: only these (an agent-scoped key). `None`: all.
    pub ids: Option<Vec<AgentId>>,
    /// Only agents advertising this skill.
    pub skill: Option<String>,
}

/// Which keys a listing may show.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    /// `Some(k)`: only keys minted (directly or transitively) by `k`. `None`: all keys.
    pub descendants_of: Option<KeyId>,
}

/// A page of results and the opaque cursor for the next one.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Result of a store self-check, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// A write round-trip succeeded.
    pub writable: Result<(), String>,
    /// The schema is at the version this build expects.
    pub migrations: Result<(), String>,
}

/// A closure that edits an agent's spec inside the store's write transaction, so concurrent
/// PATCHes never lose each other's changes.
pub type AgentEdit =
    Box<dyn FnOnce(AgentSpec) -> std::result::Result<AgentSpec, FieldError> + Send>;

/// The storage interface every backend implements and the conformance suite checks.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Write round-trip and schema check.
    async fn health(&self) -> Health;

    /// Small instance-level values (identity, settings). Returns the existing value if one was
    /// already stored under `key` (first writer wins), else stores and returns `value`.
    async fn meta_get_or_insert(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>>;
    async fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    // --- keys ---
    async fn insert_key(&self, key: KeyRecord, audit: Vec<AuditRecord>) -> Result<()>;
    async fn key_by_hash(&self, hash: [u8; 32]) -> Result<Option<KeyRecord>>;
    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>>;
    /// Is `id` equal to or minted (transitively) by `ancestor`?
    async fn key_descends_from(&self, id: &KeyId, ancestor: &KeyId) -> Result<bool>;
    async fn list_keys(
        &self,
        filter: &KeyFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Listed<KeyInfo>>;
    /// Revokes the key and every key minted from it; returns the ids newly revoked.
    /// `audit` receives the ids newly revoked and returns the records to append with them.
    async fn revoke_key(
        &self,
        id: &KeyId,
        at: OffsetDateTime,
        audit: AuditFn<Vec<KeyId>>,
    ) -> Result<Vec<KeyId>>;

    // --- agents ---
    async fn insert_agent(&self, agent: AgentRecord, audit: Vec<AuditRecord>) -> Result<()>;
    async fn get_agent(&self, id: &AgentId) -> Result<Option<AgentRecord>>;
    async fn list_agents(
        &self,
        filter: &AgentFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Listed<Agent>>;
    async fn update_agent(
        &self,
        id: &AgentId,
        at: OffsetDateTime,
        edit: AgentEdit,
    ) -> Result<Agent>;
    /// Deletes the agent and all its memories. Returns how many memories went with it, or
    /// `NotFound`.
    async fn delete_agent(&self, id: &AgentId, audit: Vec<AuditRecord>) -> Result<u64>;

    // --- memory ---
    async fn insert_memory(&self, memory: NewMemory, audit: Vec<AuditRecord>) -> Result<Memory>;
    /// Inserts many memories in one transaction (bulk import, benchmarks). Links are checked.
    async fn insert_memories(
        &self,
        memories: Vec<NewMemory>,
        audit: Vec<AuditRecord>,
    ) -> Result<u64>;
    /// `Err(NotFound)` when the agent does not exist; `Ok(None)` when the memory does not.
    async fn get_memory(&self, agent: &AgentId, id: &MemoryId) -> Result<Option<MemoryDetail>>;
    /// Newest first.
    async fn list_memories(
        &self,
        agent: &AgentId,
        filter: &MemoryFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Listed<Memory>>;
    /// BM25-ranked full-text search within one agent's memories.
    async fn search_memories(
        &self,
        agent: &AgentId,
        terms: &SearchTerms,
        filter: &MemoryFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Listed<Memory>>;
    /// `Err(NotFound)` when the agent does not exist; `Ok(false)` when the memory does not.
    /// `audit` is appended only when a memory was deleted.
    async fn delete_memory(
        &self,
        agent: &AgentId,
        id: &MemoryId,
        audit: Vec<AuditRecord>,
    ) -> Result<bool>;
    async fn count_memories(&self) -> Result<u64>;
    async fn count_agents(&self) -> Result<u64>;

    // --- audit log ---
    /// Sets the key that signs audit records. Until it is set, audited writes fail (closed).
    fn set_auditor(&self, auditor: Auditor);
    /// Writes the log's first record if the log is empty; returns the log size.
    async fn audit_init(&self, instance_id: &str) -> Result<u64>;
    async fn audit_size(&self) -> Result<u64>;
    /// Records `[from, from + limit)` as `(index, canonical bytes)`.
    async fn audit_records(&self, from: u64, limit: u32) -> Result<Vec<(u64, Vec<u8>)>>;
    async fn audit_inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<dgc_audit::Hash>>;
    async fn audit_consistency_proof(&self, from: u64, to: u64) -> Result<Vec<dgc_audit::Hash>>;
    /// Signs a checkpoint of the current tree head and keeps it (the first one at each size).
    async fn audit_checkpoint(&self) -> Result<StoredCheckpoint>;
    /// Stored checkpoints with size greater than `after_size`, smallest first.
    async fn audit_checkpoints(
        &self,
        after_size: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>>;

    /// Finishes pending writes and closes the database cleanly. Later calls fail with `Closed`.
    async fn close(&self);
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.backend())
    }
}

/// Capability sets round-trip through storage as JSON arrays of strings.
pub(crate) fn caps_to_json(c: &CapabilitySet) -> String {
    serde_json::to_string(&c.to_strings()).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn from_ms(v: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

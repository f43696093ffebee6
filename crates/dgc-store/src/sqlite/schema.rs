//! The SQLite schema as an ordered list of embedded migrations. `PRAGMA user_version` records how
//! many have run; a database newer than this list is refused rather than guessed at.

/// Migrations in order; index + 1 is the schema version after applying it. Never edit a released
/// migration: append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: keys, agents, memories with full-text search.
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE api_keys (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    name         TEXT,
    secret_hash  BLOB NOT NULL UNIQUE,
    capabilities TEXT NOT NULL,
    agent_ids    TEXT,
    parent_id    TEXT REFERENCES api_keys(id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX api_keys_parent ON api_keys(parent_id);

CREATE TABLE agents (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    description    TEXT,
    config         TEXT NOT NULL,
    status         TEXT NOT NULL,
    public_key     TEXT NOT NULL,
    secret_key_enc BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE memories (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    agent_seq  INTEGER NOT NULL REFERENCES agents(seq) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    content    TEXT NOT NULL,
    tags       TEXT NOT NULL,
    metadata   TEXT NOT NULL,
    links      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX memories_agent_time ON memories(agent_seq, created_at, seq);

CREATE TABLE memory_tags (
    agent_seq  INTEGER NOT NULL,
    tag        TEXT NOT NULL,
    memory_seq INTEGER NOT NULL REFERENCES memories(seq) ON DELETE CASCADE,
    PRIMARY KEY (agent_seq, tag, memory_seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX memory_tags_memory ON memory_tags(memory_seq);

CREATE TABLE memory_links (
    src_seq INTEGER NOT NULL REFERENCES memories(seq) ON DELETE CASCADE,
    dst_seq INTEGER NOT NULL REFERENCES memories(seq) ON DELETE CASCADE,
    PRIMARY KEY (src_seq, dst_seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX memory_links_dst ON memory_links(dst_seq);

-- Contentless full-text index: rowid = memories.seq. `terms` holds the memory's words, normalised in
-- Rust and prefixed with the agent (`<agent seq>_<word>`, see dgc_store::search), so every posting
-- list belongs to one agent: matching and BM25's per-term statistics never touch other agents' rows.
-- The `ascii` tokenizer with `_` as a token character keeps each prefixed word whole.
CREATE VIRTUAL TABLE memories_fts USING fts5(
    terms,
    content = '', contentless_delete = 1,
    tokenize = "ascii tokenchars '_'"
);
"#,
    // 2: the audit log (RFC 6962 Merkle tree over signed records) and its signed checkpoints.
    r#"
CREATE TABLE audit_records (
    idx   INTEGER PRIMARY KEY,
    bytes BLOB NOT NULL
) STRICT;

CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE audit_checkpoints (
    size       INTEGER PRIMARY KEY,
    note       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
"#,
];

/// The schema version this build writes and expects.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

//! The embedded SQLite backend: WAL mode, one writer thread that group-commits queued writes (so
//! clients never see `database is locked`), and a small pool of read-only connections.

pub mod audit;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use dgc_types::agent::{Agent, AgentConfig, AgentSpec, AgentStatus};
use dgc_types::key::KeyInfo;
use dgc_types::memory::{Memory, MemoryDetail, MemoryKind};
use dgc_types::{AgentId, CapabilitySet, FieldError, KeyId, MemoryId};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc, oneshot};

use dgc_audit::{Hash, PendingRecord};

use crate::audit::{AuditFn, AuditRecord, Auditor, StoredCheckpoint};
use crate::{
    AgentEdit, AgentFilter, AgentRecord, Health, KeyFilter, KeyRecord, Listed, MemoryFilter,
    NewMemory, Result, SearchTerms, Store, StoreError, caps_to_json, cursor, from_ms, ms,
};

pub use schema::latest as latest_schema_version;

/// Most jobs committed in one transaction by the writer.
const MAX_BATCH: usize = 512;

/// How to open a SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub path: PathBuf,
    /// Read-only connections in the pool.
    pub readers: usize,
    /// `synchronous=FULL` (fsync on every commit) when true, `NORMAL` when false. FULL is the
    /// default: an acknowledged write survives power loss.
    pub sync_full: bool,
}

impl SqliteOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            readers: 4,
            sync_full: true,
        }
    }
}

type Finish = Box<dyn FnOnce(Option<String>) + Send>;
/// A queued write. It receives the connection inside an open transaction, or the reason there is
/// none (then it must not touch the database and reports the error).
type Job = Box<dyn FnOnce(std::result::Result<&Connection, String>) -> (bool, Finish) + Send>;

/// The SQLite [`Store`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    auditor: std::sync::RwLock<Option<Auditor>>,
    reader_slots: Semaphore,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn audit_err(e: dgc_audit::LogError) -> StoreError {
    match e {
        dgc_audit::LogError::InvalidArgument(m) => StoreError::Invalid(FieldError::new("audit", m)),
        e => StoreError::Audit(e.to_string()),
    }
}

fn be(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn open_conn(path: &Path, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(be)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(be)?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768;",
    )
    .map_err(be)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Applies pending migrations; refuses a schema newer than this build.
fn migrate(conn: &Connection) -> Result<()> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(be)?;
    let latest = schema::latest();
    if current > latest {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known: latest,
        });
    }
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        conn.execute_batch("BEGIN IMMEDIATE").map_err(be)?;
        let applied = conn
            .execute_batch(sql)
            .and_then(|()| conn.execute_batch(&format!("PRAGMA user_version = {version}")));
        match applied {
            Ok(()) => conn.execute_batch("COMMIT").map_err(be)?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(StoreError::Backend(format!(
                    "migration {version} failed: {e}"
                )));
            }
        }
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database, applies migrations and starts the writer.
    pub fn open(opts: &SqliteOptions) -> Result<Self> {
        // Create the file 0600 before SQLite does: its -wal and -shm files copy the database
        // file's mode, and they hold key hashes, sealed private keys and memories.
        if !opts.path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&opts.path)
                .map_err(|e| {
                    StoreError::Backend(format!("creating {}: {e}", opts.path.display()))
                })?;
        }
        let writer = open_conn(&opts.path, false)?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(be)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "could not enable WAL mode (got {mode})"
            )));
        }
        writer
            .execute_batch(if opts.sync_full {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            })
            .map_err(be)?;
        migrate(&writer)?;
        let readers = (0..opts.readers.max(1))
            .map(|_| open_conn(&opts.path, true))
            .collect::<Result<Vec<_>>>()?;
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let thread = std::thread::Builder::new()
            .name("dgc-sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx))
            .map_err(|e| StoreError::Backend(format!("spawning the writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: opts.path.clone(),
                writer: Mutex::new(Some(tx)),
                writer_thread: Mutex::new(Some(thread)),
                reader_slots: Semaphore::new(readers.len()),
                auditor: std::sync::RwLock::new(None),
                readers: Mutex::new(readers),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` inside the writer's transaction (its own savepoint), after which the batch commits.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let sender = {
            let guard = self.inner.writer.lock().map_err(|_| StoreError::Closed)?;
            guard.clone().ok_or(StoreError::Closed)?
        };
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            let r = match conn {
                Ok(c) => f(c),
                Err(e) => Err(StoreError::Backend(e)),
            };
            let ok = r.is_ok();
            let finish: Finish = Box::new(move |commit_err| {
                let out = match (r, commit_err) {
                    (Ok(_), Some(e)) => Err(StoreError::Backend(format!("commit failed: {e}"))),
                    (r, _) => r,
                };
                let _ = tx.send(out);
            });
            (ok, finish)
        });
        sender.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a pooled read-only connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let _permit = self
            .inner
            .reader_slots
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pooled = self
            .inner
            .readers
            .lock()
            .map_err(|_| StoreError::Closed)?
            .pop();
        let conn = match pooled {
            Some(c) => c,
            // A previous reader panicked and took its connection with it: replace it.
            None => open_conn(&self.inner.path, true)?,
        };
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            if let Ok(mut pool) = inner.readers.lock() {
                pool.push(conn);
            }
            r
        })
        .await
        .map_err(|e| StoreError::Backend(format!("reader task failed: {e}")))?
    }
}

impl SqliteStore {
    fn auditor(&self) -> Option<Auditor> {
        self.inner.auditor.read().ok().and_then(|a| a.clone())
    }

    /// A write whose audit records (computed from its result) are appended in the same
    /// transaction: both are stored, or neither.
    async fn write_audited_with<T, F, A>(&self, f: F, audit: A) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        A: FnOnce(&T) -> Vec<AuditRecord> + Send + 'static,
    {
        let auditor = self.auditor();
        self.write(move |c| {
            let out = f(c)?;
            append_audit(c, auditor.as_ref(), audit(&out))?;
            Ok(out)
        })
        .await
    }

    async fn write_audited<T, F>(&self, records: Vec<AuditRecord>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.write_audited_with(f, move |_| records).await
    }
}

/// Appends `records` to the audit log on the writer's connection (inside its transaction).
fn append_audit(
    c: &Connection,
    auditor: Option<&Auditor>,
    records: Vec<AuditRecord>,
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let a = auditor.ok_or_else(|| StoreError::Audit("no audit signer is configured".into()))?;
    let now = dgc_types::now();
    let pending: Vec<PendingRecord<'_>> = records
        .iter()
        .map(|r| {
            let p = PendingRecord::new(r.entry.clone(), now);
            match &r.cosigner {
                Some(c) => p.with_cosigner(c),
                None => p,
            }
        })
        .collect();
    a.log
        .append(&mut audit::SqlLog { conn: c }, &a.signer, pending)
        .map(|_| ())
        .map_err(|e| StoreError::Audit(e.to_string()))
}

fn writer_loop(conn: Connection, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "could not begin a write transaction");
            let (_, finish) = first(Err(format!("could not begin a transaction: {e}")));
            finish(None);
            continue;
        }
        let mut finishes = Vec::new();
        finishes.push(run_job(&conn, first));
        while finishes.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => finishes.push(run_job(&conn, job)),
                Err(_) => break,
            }
        }
        let commit_err = conn.execute_batch("COMMIT").err().map(|e| {
            tracing::error!(error = %e, "commit failed; rolling back the batch");
            let _ = conn.execute_batch("ROLLBACK");
            e.to_string()
        });
        for f in finishes {
            f(commit_err.clone());
        }
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(error = %e, "final WAL checkpoint failed");
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the database failed");
    }
}

/// Runs one job inside a savepoint so a failing job rolls back alone, not its batch-mates.
fn run_job(conn: &Connection, job: Job) -> Finish {
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        return job(Err(format!("could not open a savepoint: {e}"))).1;
    }
    let (ok, finish) = job(Ok(conn));
    let end = if ok {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    if let Err(e) = conn.execute_batch(end) {
        tracing::error!(error = %e, "ending a savepoint failed");
    }
    finish
}

// ---------- row mapping ----------

fn key_from_row(r: &Row<'_>) -> rusqlite::Result<KeyRecord> {
    let caps: String = r.get("capabilities")?;
    let agent_ids: Option<String> = r.get("agent_ids")?;
    let hash: Vec<u8> = r.get("secret_hash")?;
    let conv = |e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    };
    let capabilities = serde_json::from_str::<Vec<String>>(&caps)
        .map_err(|e| conv(e.to_string()))
        .and_then(|v| CapabilitySet::from_strs(v).map_err(|e| conv(e.to_string())))?;
    let agent_ids = agent_ids
        .map(|s| serde_json::from_str::<Vec<AgentId>>(&s).map_err(|e| conv(e.to_string())))
        .transpose()?;
    let secret_hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| conv("bad hash length".into()))?;
    let id: String = r.get("id")?;
    let parent: Option<String> = r.get("parent_id")?;
    Ok(KeyRecord {
        info: KeyInfo {
            id: KeyId::parse(&id).map_err(|e| conv(e.to_string()))?,
            name: r.get("name")?,
            capabilities,
            agent_ids,
            parent_id: parent
                .map(|p| KeyId::parse(&p).map_err(|e| conv(e.to_string())))
                .transpose()?,
            created_at: from_ms(r.get("created_at")?),
            expires_at: r.get::<_, Option<i64>>("expires_at")?.map(from_ms),
            revoked_at: r.get::<_, Option<i64>>("revoked_at")?.map(from_ms),
        },
        secret_hash,
    })
}

const KEY_COLS: &str =
    "id, name, secret_hash, capabilities, agent_ids, parent_id, created_at, expires_at, revoked_at";

fn conv_err(e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.to_string().into())
}

fn agent_from_row(r: &Row<'_>) -> rusqlite::Result<AgentRecord> {
    let id: String = r.get("id")?;
    let config: String = r.get("config")?;
    let status: String = r.get("status")?;
    Ok(AgentRecord {
        agent: Agent {
            id: AgentId::parse(&id).map_err(conv_err)?,
            name: r.get("name")?,
            description: r.get("description")?,
            config: serde_json::from_str::<AgentConfig>(&config).map_err(conv_err)?,
            status: if status == "disabled" {
                AgentStatus::Disabled
            } else {
                AgentStatus::Active
            },
            public_key: r.get("public_key")?,
            created_at: from_ms(r.get("created_at")?),
            updated_at: from_ms(r.get("updated_at")?),
        },
        secret_key_enc: r.get("secret_key_enc")?,
    })
}

const AGENT_COLS: &str = "seq, id, name, description, config, status, public_key, secret_key_enc, created_at, updated_at";

fn memory_from_row(r: &Row<'_>, agent_id: &AgentId) -> rusqlite::Result<Memory> {
    let id: String = r.get("id")?;
    let kind: String = r.get("kind")?;
    let tags: String = r.get("tags")?;
    let metadata: String = r.get("metadata")?;
    let links: String = r.get("links")?;
    Ok(Memory {
        id: MemoryId::parse(&id).map_err(conv_err)?,
        agent_id: agent_id.clone(),
        kind: MemoryKind::parse(&kind).ok_or_else(|| conv_err(format!("unknown kind {kind}")))?,
        content: r.get("content")?,
        tags: serde_json::from_str(&tags).map_err(conv_err)?,
        metadata: serde_json::from_str(&metadata).map_err(conv_err)?,
        links: serde_json::from_str(&links).map_err(conv_err)?,
        created_at: from_ms(r.get("created_at")?),
        score: None,
    })
}

const MEM_COLS: &str = "m.seq, m.id, m.kind, m.content, m.tags, m.metadata, m.links, m.created_at";

fn agent_seq(conn: &Connection, id: &AgentId) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT seq FROM agents WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.as_str()], |r| r.get(0)).optional())
        .map_err(be)
}

/// The per-agent prefix of indexed words (see `search`).
fn fts_agent_token(seq: i64) -> String {
    seq.to_string()
}

fn insert_memory_tx(conn: &Connection, m: &NewMemory, agent: i64) -> Result<()> {
    let mut link_seqs = Vec::with_capacity(m.links.len());
    for (i, l) in m.links.iter().enumerate() {
        let found: Option<(i64, i64)> = conn
            .prepare_cached("SELECT seq, agent_seq FROM memories WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([l.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(be)?;
        match found {
            Some((seq, a)) if a == agent => link_seqs.push(seq),
            _ => {
                return Err(StoreError::Invalid(FieldError::new(
                    format!("links[{i}]"),
                    format!(
                        "memory {l} does not exist for this agent; links must point to the same agent's memories"
                    ),
                )));
            }
        }
    }
    let tags = serde_json::to_string(&m.tags).map_err(StoreError::backend)?;
    let metadata = serde_json::to_string(&m.metadata).map_err(StoreError::backend)?;
    let links = serde_json::to_string(&m.links).map_err(StoreError::backend)?;
    conn.prepare_cached(
        "INSERT INTO memories (id, agent_seq, kind, content, tags, metadata, links, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            m.id.as_str(),
            agent,
            m.kind.as_str(),
            m.content,
            tags,
            metadata,
            links,
            ms(m.created_at)
        ])
    })
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(format!("memory {} already exists", m.id))
        }
        e => be(e),
    })?;
    let seq = conn.last_insert_rowid();
    let mut seen = std::collections::HashSet::new();
    for t in &m.tags {
        if seen.insert(t.as_str()) {
            conn.prepare_cached(
                "INSERT INTO memory_tags (agent_seq, tag, memory_seq) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![agent, t, seq]))
            .map_err(be)?;
        }
    }
    for dst in link_seqs {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO memory_links (src_seq, dst_seq) VALUES (?1, ?2)",
        )
        .and_then(|mut s| s.execute(params![seq, dst]))
        .map_err(be)?;
    }
    let terms = crate::search::fts5_index_text(&fts_agent_token(agent), &m.content);
    conn.prepare_cached("INSERT INTO memories_fts (rowid, terms) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![seq, terms]))
        .map_err(be)?;
    Ok(())
}

fn page<T>(mut items: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Listed<T> {
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(cursor_of)
    } else {
        None
    };
    Listed { items, next_cursor }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn health(&self) -> Health {
        let writable = self
            .write(|c| {
                c.prepare_cached(
                    "INSERT INTO meta (key, value) VALUES ('health_probe', ?1)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut s| s.execute([ms(OffsetDateTime::now_utc()).to_le_bytes().to_vec()]))
                .map_err(be)
            })
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        let migrations = self
            .read(|c| {
                c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
                    .map_err(be)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|v| {
                if v == schema::latest() {
                    Ok(())
                } else {
                    Err(format!("schema version {v}, expected {}", schema::latest()))
                }
            });
        Health {
            writable,
            migrations,
        }
    }

    async fn meta_get_or_insert(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>> {
        let key = key.to_string();
        self.write(move |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
                params![key, value],
            )
            .map_err(be)?;
            c.query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
                r.get(0)
            })
            .map_err(be)
        })
        .await
    }

    async fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = key.to_string();
        self.read(move |c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(be)
        })
        .await
    }

    async fn insert_key(&self, key: KeyRecord, audit: Vec<AuditRecord>) -> Result<()> {
        self.write_audited(audit, move |c| {
            let i = &key.info;
            let agent_ids = i
                .agent_ids
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(StoreError::backend)?;
            c.prepare_cached(&format!(
                "INSERT INTO api_keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    i.id.as_str(),
                    i.name,
                    key.secret_hash.to_vec(),
                    caps_to_json(&i.capabilities),
                    agent_ids,
                    i.parent_id.as_ref().map(KeyId::as_str),
                    ms(i.created_at),
                    i.expires_at.map(ms),
                    i.revoked_at.map(ms),
                ])
            })
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    StoreError::Conflict("a key with this id or secret already exists".into())
                }
                e => be(e),
            })?;
            Ok(())
        })
        .await
    }

    async fn key_by_hash(&self, hash: [u8; 32]) -> Result<Option<KeyRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {KEY_COLS} FROM api_keys WHERE secret_hash = ?1"
            ))
            .and_then(|mut s| s.query_row([hash.to_vec()], key_from_row).optional())
            .map_err(be)
        })
        .await
    }

    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>> {
        let id = id.clone();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id.as_str()], key_from_row).optional())
                .map_err(be)
        })
        .await
    }

    async fn key_descends_from(&self, id: &KeyId, ancestor: &KeyId) -> Result<bool> {
        let (id, ancestor) = (id.clone(), ancestor.clone());
        self.read(move |c| {
            c.prepare_cached(
                "WITH RECURSIVE up(id, parent) AS (
                     SELECT id, parent_id FROM api_keys WHERE id = ?1
                     UNION ALL
                     SELECT k.id, k.parent_id FROM api_keys k JOIN up ON k.id = up.parent
                 ) SELECT EXISTS (SELECT 1 FROM up WHERE id = ?2)",
            )
            .and_then(|mut s| s.query_row([id.as_str(), ancestor.as_str()], |r| r.get(0)))
            .map_err(be)
        })
        .await
    }

    async fn list_keys(
        &self,
        filter: &KeyFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Listed<KeyInfo>> {
        let after = after
            .map(|a| cursor::decode("key", 1, a))
            .transpose()?
            .map_or(0, |v| v[0]);
        let root = filter.descendants_of.clone();
        self.read(move |c| {
            let rows: Vec<(i64, KeyRecord)> = match &root {
                Some(root) => {
                    let mut s = c
                        .prepare_cached(&format!(
                            "WITH RECURSIVE d(id) AS (
                                 SELECT id FROM api_keys WHERE id = ?1
                                 UNION ALL
                                 SELECT k.id FROM api_keys k JOIN d ON k.parent_id = d.id
                             )
                             SELECT seq, {KEY_COLS} FROM api_keys WHERE id IN d AND seq > ?2 ORDER BY seq LIMIT ?3"
                        ))
                        .map_err(be)?;
                    s.query_map(params![root.as_str(), after, limit + 1], |r| Ok((r.get(0)?, key_from_row(r)?)))
                        .and_then(Iterator::collect)
                        .map_err(be)?
                }
                None => {
                    let mut s = c
                        .prepare_cached(&format!("SELECT seq, {KEY_COLS} FROM api_keys WHERE seq > ?1 ORDER BY seq LIMIT ?2"))
                        .map_err(be)?;
                    s.query_map(params![after, limit + 1], |r| Ok((r.get(0)?, key_from_row(r)?)))
                        .and_then(Iterator::collect)
                        .map_err(be)?
                }
            };
            let listed = page(rows, limit, |(seq, _)| cursor::encode("key", &[*seq]));
            Ok(Listed { items: listed.items.into_iter().map(|(_, k)| k.info).collect(), next_cursor: listed.next_cursor })
        })
        .await
    }

    async fn revoke_key(
        &self,
        id: &KeyId,
        at: OffsetDateTime,
        audit: AuditFn<Vec<KeyId>>,
    ) -> Result<Vec<KeyId>> {
        let id = id.clone();
        self.write_audited_with(move |c| {
            let exists: bool = c
                .query_row("SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = ?1)", [id.as_str()], |r| r.get(0))
                .map_err(be)?;
            if !exists {
                return Err(StoreError::NotFound);
            }
            let mut s = c
                .prepare_cached(
                    "WITH RECURSIVE d(id) AS (
                         SELECT id FROM api_keys WHERE id = ?1
                         UNION ALL
                         SELECT k.id FROM api_keys k JOIN d ON k.parent_id = d.id
                     )
                     UPDATE api_keys SET revoked_at = ?2 WHERE id IN d AND revoked_at IS NULL RETURNING id",
                )
                .map_err(be)?;
            let ids: Vec<String> =
                s.query_map(params![id.as_str(), ms(at)], |r| r.get(0)).and_then(Iterator::collect).map_err(be)?;
            ids.iter().map(|s| KeyId::parse(s).map_err(StoreError::backend)).collect()
        }, audit)
        .await
    }

    async fn insert_agent(&self, rec: AgentRecord, audit: Vec<AuditRecord>) -> Result<()> {
        self.write_audited(audit, move |c| {
            let a = &rec.agent;
            let config = serde_json::to_string(&a.config).map_err(StoreError::backend)?;
            c.prepare_cached(
                "INSERT INTO agents (id, name, description, config, status, public_key, secret_key_enc, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    a.id.as_str(),
                    a.name,
                    a.description,
                    config,
                    if a.status == AgentStatus::Disabled { "disabled" } else { "active" },
                    a.public_key,
                    rec.secret_key_enc,
                    ms(a.created_at),
                    ms(a.updated_at),
                ])
            })
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    StoreError::Conflict(format!("agent {} already exists", a.id))
                }
                e => be(e),
            })?;
            Ok(())
        })
        .await
    }

    async fn get_agent(&self, id: &AgentId) -> Result<Option<AgentRecord>> {
        let id = id.clone();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {AGENT_COLS} FROM agents WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id.as_str()], agent_from_row).optional())
                .map_err(be)
        })
        .await
    }

    async fn list_agents(
        &self,
        filter: &AgentFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Listed<Agent>> {
        let after = after
            .map(|a| cursor::decode("agt", 1, a))
            .transpose()?
            .map_or(0, |v| v[0]);
        let ids = filter
            .ids
            .as_ref()
            .map(|ids| serde_json::to_string(&ids.iter().map(AgentId::as_str).collect::<Vec<_>>()))
            .transpose()
            .map_err(StoreError::backend)?;
        let skill = filter.skill.clone();
        self.read(move |c| {
            let mut sql = format!("SELECT {AGENT_COLS} FROM agents WHERE seq > ?1");
            if ids.is_some() {
                sql.push_str(" AND id IN (SELECT value FROM json_each(?3))");
            }
            if skill.is_some() {
                sql.push_str(
                    " AND EXISTS (SELECT 1 FROM json_each(config, '$.skills') WHERE value = ?4)",
                );
            }
            sql.push_str(" ORDER BY seq LIMIT ?2");
            let mut s = c.prepare_cached(&sql).map_err(be)?;
            let mut idx = 3;
            s.raw_bind_parameter(1, after).map_err(be)?;
            s.raw_bind_parameter(2, limit + 1).map_err(be)?;
            if let Some(ids) = &ids {
                s.raw_bind_parameter(idx, ids).map_err(be)?;
            }
            idx += 1;
            if let Some(sk) = &skill {
                s.raw_bind_parameter(idx, sk).map_err(be)?;
            }
            let mut rows = s.raw_query();
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(be)? {
                out.push((
                    r.get::<_, i64>(0).map_err(be)?,
                    agent_from_row(r).map_err(be)?.agent,
                ));
            }
            let listed = page(out, limit, |(seq, _)| cursor::encode("agt", &[*seq]));
            Ok(Listed {
                items: listed.items.into_iter().map(|(_, a)| a).collect(),
                next_cursor: listed.next_cursor,
            })
        })
        .await
    }

    async fn update_agent(
        &self,
        id: &AgentId,
        at: OffsetDateTime,
        edit: AgentEdit,
    ) -> Result<Agent> {
        let id = id.clone();
        self.write(move |c| {
            let rec = c
                .prepare_cached(&format!("SELECT {AGENT_COLS} FROM agents WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id.as_str()], agent_from_row).optional())
                .map_err(be)?
                .ok_or(StoreError::NotFound)?;
            let spec: AgentSpec = edit(rec.agent.spec()).map_err(StoreError::Invalid)?;
            let config = serde_json::to_string(&spec.config).map_err(StoreError::backend)?;
            c.prepare_cached("UPDATE agents SET name = ?2, description = ?3, config = ?4, updated_at = ?5 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id.as_str(), spec.name, spec.description, config, ms(at)]))
                .map_err(be)?;
            Ok(Agent {
                name: spec.name,
                description: spec.description,
                config: spec.config,
                updated_at: from_ms(ms(at)),
                ..rec.agent
            })
        })
        .await
    }

    async fn delete_agent(&self, id: &AgentId, audit: Vec<AuditRecord>) -> Result<u64> {
        let id = id.clone();
        self.write_audited(audit, move |c| {
            let seq = agent_seq(c, &id)?.ok_or(StoreError::NotFound)?;
            c.execute("DELETE FROM memories_fts WHERE rowid IN (SELECT seq FROM memories WHERE agent_seq = ?1)", [seq])
                .map_err(be)?;
            let n = c.execute("DELETE FROM memories WHERE agent_seq = ?1", [seq]).map_err(be)?;
            c.execute("DELETE FROM agents WHERE seq = ?1", [seq]).map_err(be)?;
            Ok(n as u64)
        })
        .await
    }

    async fn insert_memory(&self, m: NewMemory, audit: Vec<AuditRecord>) -> Result<Memory> {
        self.write_audited(audit, move |c| {
            let agent = agent_seq(c, &m.agent_id)?.ok_or(StoreError::NotFound)?;
            insert_memory_tx(c, &m, agent)?;
            Ok(Memory {
                id: m.id,
                agent_id: m.agent_id,
                kind: m.kind,
                content: m.content,
                tags: m.tags,
                metadata: m.metadata,
                links: m.links,
                created_at: from_ms(ms(m.created_at)),
                score: None,
            })
        })
        .await
    }

    async fn insert_memories(
        &self,
        memories: Vec<NewMemory>,
        audit: Vec<AuditRecord>,
    ) -> Result<u64> {
        self.write_audited(audit, move |c| {
            let mut seqs: std::collections::HashMap<AgentId, i64> =
                std::collections::HashMap::new();
            for m in &memories {
                let agent = match seqs.get(&m.agent_id) {
                    Some(s) => *s,
                    None => {
                        let s = agent_seq(c, &m.agent_id)?.ok_or(StoreError::NotFound)?;
                        seqs.insert(m.agent_id.clone(), s);
                        s
                    }
                };
                insert_memory_tx(c, m, agent)?;
            }
            Ok(memories.len() as u64)
        })
        .await
    }

    async fn get_memory(&self, agent: &AgentId, id: &MemoryId) -> Result<Option<MemoryDetail>> {
        let (agent, id) = (agent.clone(), id.clone());
        self.read(move |c| {
            let aseq = agent_seq(c, &agent)?.ok_or(StoreError::NotFound)?;
            let found = c
                .prepare_cached(&format!(
                    "SELECT {MEM_COLS} FROM memories m WHERE m.id = ?1 AND m.agent_seq = ?2"
                ))
                .and_then(|mut s| {
                    s.query_row(params![id.as_str(), aseq], |r| {
                        Ok((r.get::<_, i64>(0)?, memory_from_row(r, &agent)?))
                    })
                    .optional()
                })
                .map_err(be)?;
            let Some((seq, memory)) = found else {
                return Ok(None);
            };
            let linked_from: Vec<String> = c
                .prepare_cached(
                    "SELECT m.id FROM memory_links l JOIN memories m ON m.seq = l.src_seq
                     WHERE l.dst_seq = ?1 ORDER BY m.seq LIMIT 1000",
                )
                .and_then(|mut s| s.query_map([seq], |r| r.get(0)).and_then(Iterator::collect))
                .map_err(be)?;
            let linked_from = linked_from
                .iter()
                .map(|s| MemoryId::parse(s).map_err(StoreError::backend))
                .collect::<Result<_>>()?;
            Ok(Some(MemoryDetail {
                memory,
                linked_from,
            }))
        })
        .await
    }

    async fn list_memories(
        &self,
        agent: &AgentId,
        filter: &MemoryFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Listed<Memory>> {
        let after = after.map(|a| cursor::decode("mem", 2, a)).transpose()?;
        let (agent, filter) = (agent.clone(), filter.clone());
        self.read(move |c| {
            let aseq = agent_seq(c, &agent)?.ok_or(StoreError::NotFound)?;
            let mut sql = format!("SELECT {MEM_COLS} FROM memories m WHERE m.agent_seq = ?1");
            if filter.kind.is_some() {
                sql.push_str(" AND m.kind = ?2");
            }
            if filter.tag.is_some() {
                sql.push_str(" AND m.seq IN (SELECT memory_seq FROM memory_tags WHERE agent_seq = ?1 AND tag = ?3)");
            }
            if after.is_some() {
                sql.push_str(" AND (m.created_at, m.seq) < (?4, ?5)");
            }
            sql.push_str(" ORDER BY m.created_at DESC, m.seq DESC LIMIT ?6");
            let mut s = c.prepare_cached(&sql).map_err(be)?;
            s.raw_bind_parameter(1, aseq).map_err(be)?;
            if let Some(k) = filter.kind {
                s.raw_bind_parameter(2, k.as_str()).map_err(be)?;
            }
            if let Some(t) = &filter.tag {
                s.raw_bind_parameter(3, t).map_err(be)?;
            }
            if let Some(a) = &after {
                s.raw_bind_parameter(4, a[0]).map_err(be)?;
                s.raw_bind_parameter(5, a[1]).map_err(be)?;
            }
            s.raw_bind_parameter(6, limit + 1).map_err(be)?;
            let mut rows = s.raw_query();
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(be)? {
                let seq: i64 = r.get(0).map_err(be)?;
                let created: i64 = r.get("created_at").map_err(be)?;
                out.push(((created, seq), memory_from_row(r, &agent).map_err(be)?));
            }
            let listed = page(out, limit, |((t, s), _)| cursor::encode("mem", &[*t, *s]));
            Ok(Listed { items: listed.items.into_iter().map(|(_, m)| m).collect(), next_cursor: listed.next_cursor })
        })
        .await
    }

    async fn search_memories(
        &self,
        agent: &AgentId,
        terms: &SearchTerms,
        filter: &MemoryFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Listed<Memory>> {
        let offset = after
            .map(|a| cursor::decode("srch", 1, a))
            .transpose()?
            .map_or(0, |v| v[0]);
        if !(0..=100_000).contains(&offset) {
            return Err(StoreError::InvalidCursor);
        }
        let (agent, filter, terms) = (agent.clone(), filter.clone(), terms.clone());
        self.read(move |c| {
            let aseq = agent_seq(c, &agent)?.ok_or(StoreError::NotFound)?;
            let query = terms.fts5_expr(&fts_agent_token(aseq));
            // CROSS JOIN fixes the join order: the FTS match first (agent-local posting lists), then
            // point lookups into `memories`. Without filters, rank and cut inside the FTS subquery so
            // only the returned page is joined.
            let sql = if filter.kind.is_none() && filter.tag.is_none() {
                format!(
                    "SELECT {MEM_COLS}, f.rank AS rank
                     FROM (SELECT rowid, rank FROM memories_fts WHERE memories_fts MATCH ?1
                           ORDER BY rank LIMIT ?5 OFFSET ?6) AS f
                     CROSS JOIN memories m ON m.seq = f.rowid
                     WHERE m.agent_seq = ?2
                     ORDER BY f.rank"
                )
            } else {
                let mut sql = format!(
                    "SELECT {MEM_COLS}, memories_fts.rank AS rank
                     FROM memories_fts CROSS JOIN memories m ON m.seq = memories_fts.rowid
                     WHERE memories_fts MATCH ?1 AND m.agent_seq = ?2"
                );
                if filter.kind.is_some() {
                    sql.push_str(" AND m.kind = ?3");
                }
                if filter.tag.is_some() {
                    sql.push_str(" AND m.seq IN (SELECT memory_seq FROM memory_tags WHERE agent_seq = ?2 AND tag = ?4)");
                }
                sql.push_str(" ORDER BY memories_fts.rank LIMIT ?5 OFFSET ?6");
                sql
            };
            let mut s = c.prepare_cached(&sql).map_err(be)?;
            s.raw_bind_parameter(1, &query).map_err(be)?;
            s.raw_bind_parameter(2, aseq).map_err(be)?;
            if let Some(k) = filter.kind {
                s.raw_bind_parameter(3, k.as_str()).map_err(be)?;
            }
            if let Some(t) = &filter.tag {
                s.raw_bind_parameter(4, t).map_err(be)?;
            }
            s.raw_bind_parameter(5, limit + 1).map_err(be)?;
            s.raw_bind_parameter(6, offset).map_err(be)?;
            let mut rows = s.raw_query();
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(be)? {
                let mut m = memory_from_row(r, &agent).map_err(be)?;
                let rank: f64 = r.get("rank").map_err(be)?;
                m.score = Some(-rank);
                out.push(m);
            }
            let next = offset + i64::from(limit);
            Ok(page(out, limit, |_| cursor::encode("srch", &[next])))
        })
        .await
    }

    async fn delete_memory(
        &self,
        agent: &AgentId,
        id: &MemoryId,
        audit: Vec<AuditRecord>,
    ) -> Result<bool> {
        let (agent, id) = (agent.clone(), id.clone());
        self.write_audited_with(
            move |c| {
                let aseq = agent_seq(c, &agent)?.ok_or(StoreError::NotFound)?;
                let seq: Option<i64> = c
                    .prepare_cached("SELECT seq FROM memories WHERE id = ?1 AND agent_seq = ?2")
                    .and_then(|mut s| {
                        s.query_row(params![id.as_str(), aseq], |r| r.get(0))
                            .optional()
                    })
                    .map_err(be)?;
                let Some(seq) = seq else { return Ok(false) };
                c.execute("DELETE FROM memories_fts WHERE rowid = ?1", [seq])
                    .map_err(be)?;
                c.execute("DELETE FROM memories WHERE seq = ?1", [seq])
                    .map_err(be)?;
                Ok(true)
            },
            move |deleted: &bool| if *deleted { audit } else { Vec::new() },
        )
        .await
    }

    async fn count_memories(&self) -> Result<u64> {
        self.read(|c| {
            c.query_row("SELECT count(*) FROM memories", [], |r| r.get::<_, i64>(0))
                .map_err(be)
        })
        .await
        .map(|n| n as u64)
    }

    async fn count_agents(&self) -> Result<u64> {
        self.read(|c| {
            c.query_row("SELECT count(*) FROM agents", [], |r| r.get::<_, i64>(0))
                .map_err(be)
        })
        .await
        .map(|n| n as u64)
    }

    fn set_auditor(&self, auditor: Auditor) {
        if let Ok(mut a) = self.inner.auditor.write() {
            *a = Some(auditor);
        }
    }

    async fn audit_init(&self, instance_id: &str) -> Result<u64> {
        let auditor = self
            .auditor()
            .ok_or_else(|| StoreError::Audit("no audit signer is configured".into()))?;
        let instance_id = instance_id.to_string();
        self.write(move |c| {
            let mut log = audit::SqlLog { conn: c };
            let size =
                dgc_audit::LogStorage::size(&log).map_err(|e| StoreError::Audit(e.to_string()))?;
            if size > 0 {
                return Ok(size);
            }
            auditor
                .log
                .init(&mut log, &instance_id, &auditor.signer, dgc_types::now())
                .map(|a| a.size)
                .map_err(|e| StoreError::Audit(e.to_string()))
        })
        .await
    }

    async fn audit_size(&self) -> Result<u64> {
        self.read(|c| {
            dgc_audit::LogStorage::size(&audit::SqlLog { conn: c })
                .map_err(|e| StoreError::Audit(e.to_string()))
        })
        .await
    }

    async fn audit_records(&self, from: u64, limit: u32) -> Result<Vec<(u64, Vec<u8>)>> {
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT idx, bytes FROM audit_records WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
                )
                .map_err(be)?;
            s.query_map(params![from as i64, limit], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
            .and_then(Iterator::collect)
            .map_err(be)
        })
        .await
    }

    async fn audit_inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        let log = self
            .auditor()
            .ok_or_else(|| StoreError::Audit("no audit signer is configured".into()))?
            .log;
        self.read(move |c| {
            log.inclusion_proof(&audit::SqlLog { conn: c }, index, size)
                .map_err(audit_err)
        })
        .await
    }

    async fn audit_consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>> {
        let log = self
            .auditor()
            .ok_or_else(|| StoreError::Audit("no audit signer is configured".into()))?
            .log;
        self.read(move |c| {
            log.consistency_proof(&audit::SqlLog { conn: c }, from, to)
                .map_err(audit_err)
        })
        .await
    }

    async fn audit_checkpoint(&self) -> Result<StoredCheckpoint> {
        let auditor = self
            .auditor()
            .ok_or_else(|| StoreError::Audit("no audit signer is configured".into()))?;
        self.write(move |c| {
            let signed = auditor
                .log
                .checkpoint(&audit::SqlLog { conn: c }, &auditor.signer)
                .map_err(audit_err)?;
            let size = signed.checkpoint.size;
            c.prepare_cached(
                "INSERT INTO audit_checkpoints (size, note, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(size) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![size as i64, signed.note, ms(dgc_types::now())]))
            .map_err(be)?;
            // The first checkpoint at a size is the one kept (and possibly witnessed); serve it.
            let note: String = c
                .query_row(
                    "SELECT note FROM audit_checkpoints WHERE size = ?1",
                    [size as i64],
                    |r| r.get(0),
                )
                .map_err(be)?;
            Ok(StoredCheckpoint { size, note })
        })
        .await
    }

    async fn audit_checkpoints(
        &self,
        after_size: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>> {
        self.read(move |c| {
            let mut s = c
                .prepare_cached("SELECT size, note FROM audit_checkpoints WHERE size > ?1 ORDER BY size LIMIT ?2")
                .map_err(be)?;
            s.query_map(params![after_size.map_or(-1, |v| v as i64), limit], |r| {
                Ok(StoredCheckpoint { size: r.get::<_, i64>(0)? as u64, note: r.get(1)? })
            })
            .and_then(Iterator::collect)
            .map_err(be)
        })
        .await
    }

    async fn close(&self) {
        let sender = self.inner.writer.lock().ok().and_then(|mut g| g.take());
        drop(sender);
        let thread = self
            .inner
            .writer_thread
            .lock()
            .ok()
            .and_then(|mut g| g.take());
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        self.inner.reader_slots.close();
        if let Ok(mut r) = self.inner.readers.lock() {
            r.clear();
        }
    }
}

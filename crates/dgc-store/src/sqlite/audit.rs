//! The audit log's storage on SQLite: `audit_records(idx, bytes)` and `audit_nodes(level, idx,
//! hash)`, read and written through `dgc_audit::LogStorage` on whichever connection (writer inside
//! its transaction, or a pooled reader for proofs) the caller holds.

use dgc_audit::{AppendBatch, Hash, LogStorage, NodeId, StorageError};
use rusqlite::{Connection, OptionalExtension, params};

/// `LogStorage` over one connection. Appends only work on the writer connection, inside its
/// transaction; on a reader they fail.
pub struct SqlLog<'c> {
    pub conn: &'c Connection,
}

impl std::fmt::Debug for SqlLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqlLog")
    }
}

fn se(e: rusqlite::Error) -> StorageError {
    StorageError::new(e)
}

impl LogStorage for SqlLog<'_> {
    fn size(&self) -> Result<u64, StorageError> {
        self.conn
            .prepare_cached("SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(se)
    }

    fn node(&self, id: NodeId) -> Result<Option<Hash>, StorageError> {
        let raw: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT hash FROM audit_nodes WHERE level = ?1 AND idx = ?2")
            .and_then(|mut s| {
                s.query_row(params![id.level, id.index as i64], |r| r.get(0))
                    .optional()
            })
            .map_err(se)?;
        raw.map(|b| {
            <[u8; 32]>::try_from(b.as_slice()).map(Hash).map_err(|_| {
                StorageError::msg(format!("node ({}, {}) is not 32 bytes", id.level, id.index))
            })
        })
        .transpose()
    }

    fn record(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.conn
            .prepare_cached("SELECT bytes FROM audit_records WHERE idx = ?1")
            .and_then(|mut s| s.query_row([index as i64], |r| r.get(0)).optional())
            .map_err(se)
    }

    fn append(&mut self, batch: &AppendBatch<'_>) -> Result<(), StorageError> {
        let size = self.size()?;
        if size != batch.start {
            return Err(StorageError::msg(format!(
                "log size is {size}, not {}: another writer appended first",
                batch.start
            )));
        }
        let mut rec = self
            .conn
            .prepare_cached("INSERT INTO audit_records (idx, bytes) VALUES (?1, ?2)")
            .map_err(se)?;
        for (i, bytes) in batch.records.iter().enumerate() {
            rec.execute(params![(batch.start + i as u64) as i64, bytes])
                .map_err(se)?;
        }
        let mut node = self
            .conn
            .prepare_cached("INSERT INTO audit_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")
            .map_err(se)?;
        for (id, hash) in batch.nodes {
            node.execute(params![id.level, id.index as i64, hash.0.to_vec()])
                .map_err(se)?;
        }
        Ok(())
    }
}

/// Read-only access to a data directory's audit log, for offline verification: opens the
/// database without migrating or writing anything.
pub struct AuditReader {
    conn: Connection,
}

impl std::fmt::Debug for AuditReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditReader")
    }
}

impl AuditReader {
    pub fn open(path: &std::path::Path) -> Result<Self, crate::StoreError> {
        let be =
            |e: rusqlite::Error| crate::StoreError::Backend(format!("{}: {e}", path.display()));
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(be)?;
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(be)?;
        if v > super::schema::latest() {
            return Err(crate::StoreError::SchemaTooNew {
                found: v,
                known: super::schema::latest(),
            });
        }
        if v < 2 {
            return Err(crate::StoreError::Backend(format!(
                "{} has no audit log (schema version {v}); start `dgc serve` on it once to migrate",
                path.display()
            )));
        }
        Ok(Self { conn })
    }

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, crate::StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(crate::StoreError::backend)
    }

    pub fn size(&self) -> Result<u64, crate::StoreError> {
        LogStorage::size(&SqlLog { conn: &self.conn })
            .map_err(|e| crate::StoreError::Audit(e.to_string()))
    }

    /// Records `[from, from + limit)` in index order.
    pub fn records(&self, from: u64, limit: u32) -> Result<Vec<(u64, Vec<u8>)>, crate::StoreError> {
        let mut s = self
            .conn
            .prepare_cached(
                "SELECT idx, bytes FROM audit_records WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
            )
            .map_err(crate::StoreError::backend)?;
        s.query_map(params![from as i64, limit], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
        })
        .and_then(Iterator::collect)
        .map_err(crate::StoreError::backend)
    }

    pub fn checkpoints(&self) -> Result<Vec<crate::StoredCheckpoint>, crate::StoreError> {
        let mut s = self
            .conn
            .prepare_cached("SELECT size, note FROM audit_checkpoints ORDER BY size")
            .map_err(crate::StoreError::backend)?;
        s.query_map([], |r| {
            Ok(crate::StoredCheckpoint {
                size: r.get::<_, i64>(0)? as u64,
                note: r.get(1)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(crate::StoreError::backend)
    }

    /// A consistency proof computed from the stored tree (self-verifying: a tampered node only
    /// makes the proof fail).
    pub fn consistency_proof(
        &self,
        log: &dgc_audit::Log,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, StorageError> {
        log.consistency_proof(&SqlLog { conn: &self.conn }, from, to)
            .map_err(|e| StorageError::msg(e.to_string()))
    }
}

//! The persistence boundary of the log: a key-value view of leaves and perfect-subtree hashes
//! that a database implements, plus the in-memory implementation used by tests and benches.

use std::collections::HashMap;
use std::fmt;

use crate::hash::Hash;
use crate::proof::NodeId;

/// A storage backend failed. Wraps the backend's own error so that nothing is lost on the way
/// to the caller.
#[derive(Debug, thiserror::Error)]
#[error("log storage: {message}")]
pub struct StorageError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StorageError {
    /// A storage error that carries the backend's error as its source.
    pub fn new(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// A storage error described by a message only.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }
}

/// One atomic append: the records `[start, start + records.len())` and every hash that became
/// known with them.
#[derive(Debug, Clone, Copy)]
pub struct AppendBatch<'a> {
    /// Index of the first new record; equals the log size before the append.
    pub start: u64,
    /// The records' canonical bytes (the leaves), in index order.
    pub records: &'a [Vec<u8>],
    /// The new perfect-subtree hashes: one level-0 leaf hash per record plus every interior
    /// node completed by this batch. Never contains a node that already exists.
    pub nodes: &'a [(NodeId, Hash)],
}

/// Where the log lives. Implemented by the server on SQLite/PostgreSQL with two tables —
/// `records(idx INTEGER PRIMARY KEY, bytes BLOB)` and
/// `nodes(level INTEGER, idx INTEGER, hash BLOB, PRIMARY KEY(level, idx))` — and by
/// [`MemoryStorage`] here.
///
/// The trait is synchronous: callers on an async runtime run it on a blocking thread, inside
/// one database transaction per [`crate::log::Log`] operation.
pub trait LogStorage {
    /// Number of records in the log.
    fn size(&self) -> Result<u64, StorageError>;

    /// The hash of a perfect subtree, or `None` if it is not stored.
    fn node(&self, id: NodeId) -> Result<Option<Hash>, StorageError>;

    /// Several node hashes at once, in the order asked. A backend may override this to use a
    /// single query; the log asks for at most ~130 nodes per proof.
    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StorageError> {
        ids.iter().map(|id| self.node(*id)).collect()
    }

    /// The canonical bytes of record `index`, or `None` if there is no such record.
    fn record(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError>;

    /// Stores `batch` atomically: all of it or nothing. Must fail (and store nothing) if the
    /// log size is not `batch.start`, so that two writers can never both append at one index.
    fn append(&mut self, batch: &AppendBatch<'_>) -> Result<(), StorageError>;
}

/// A log kept in memory: for tests, benchmarks and offline tools that rebuild a tree.
#[derive(Default, Clone)]
pub struct MemoryStorage {
    records: Vec<Vec<u8>>,
    /// `levels[l][i]` is the hash of node `(l, i)`; every level is dense from index 0.
    levels: Vec<Vec<Hash>>,
    /// Nodes written out of order (never by the log itself), kept so that the trait contract
    /// holds for arbitrary callers.
    sparse: HashMap<NodeId, Hash>,
}

impl fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStorage")
            .field("records", &self.records.len())
            .field("levels", &self.levels.len())
            .finish()
    }
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the bytes of a stored record without touching any hash: the in-memory
    /// equivalent of someone editing the database, for tamper tests.
    pub fn tamper_record(&mut self, index: u64, bytes: Vec<u8>) -> bool {
        match self.records.get_mut(index as usize) {
            Some(r) => {
                *r = bytes;
                true
            }
            None => false,
        }
    }

    /// All records in order.
    pub fn records(&self) -> &[Vec<u8>] {
        &self.records
    }
}

impl LogStorage for MemoryStorage {
    fn size(&self) -> Result<u64, StorageError> {
        Ok(self.records.len() as u64)
    }

    fn node(&self, id: NodeId) -> Result<Option<Hash>, StorageError> {
        let dense = self
            .levels
            .get(id.level as usize)
            .and_then(|l| l.get(usize::try_from(id.index).ok()?))
            .copied();
        Ok(dense.or_else(|| self.sparse.get(&id).copied()))
    }

    fn record(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(usize::try_from(index)
            .ok()
            .and_then(|i| self.records.get(i))
            .cloned())
    }

    fn append(&mut self, batch: &AppendBatch<'_>) -> Result<(), StorageError> {
        if batch.start != self.records.len() as u64 {
            return Err(StorageError::msg(format!(
                "append at {} but the log has {} records",
                batch.start,
                self.records.len()
            )));
        }
        for (id, _) in batch.nodes {
            if self.node(*id)?.is_some() {
                return Err(StorageError::msg(format!(
                    "node ({}, {}) already stored",
                    id.level, id.index
                )));
            }
        }
        self.records.extend(batch.records.iter().cloned());
        for (id, h) in batch.nodes {
            let level = id.level as usize;
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            let l = &mut self.levels[level];
            if id.index == l.len() as u64 {
                l.push(*h);
            } else {
                self.sparse.insert(*id, *h);
            }
        }
        Ok(())
    }
}

//! The audit log as the store keeps it: which key signs, and the records a mutation must append.
//! Backends append a mutation's records in the mutation's own transaction, so an action and its
//! audit record are stored together or not at all (if the append fails, the action fails: the
//! `satya` rule).

use dgc_audit::{Entry, Log, Signer};

/// What the store needs to append signed records: the log (its origin) and the instance key.
#[derive(Debug, Clone)]
pub struct Auditor {
    pub log: Log,
    pub signer: Signer,
}

/// One record to append with a mutation, optionally co-signed (e.g. by a new agent key).
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub entry: Entry,
    pub cosigner: Option<Signer>,
}

impl AuditRecord {
    pub fn new(entry: Entry) -> Self {
        Self {
            entry,
            cosigner: None,
        }
    }

    pub fn cosigned(entry: Entry, by: Signer) -> Self {
        Self {
            entry,
            cosigner: Some(by),
        }
    }
}

/// Records that depend on what the mutation found (e.g. which keys a revocation reached).
pub type AuditFn<T> = Box<dyn FnOnce(&T) -> Vec<AuditRecord> + Send>;

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub note: String,
}

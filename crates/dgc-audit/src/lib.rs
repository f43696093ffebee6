//! DGC's audit core: an RFC 6962 Merkle log of signed records, C2SP signed checkpoints,
//! DSSE/in-toto attestations, and their offline verification.
//!
//! Invariant: verification works offline with no server and no database. Storage is behind
//! [`LogStorage`]; nothing in this crate performs network or database I/O (the only file I/O
//! is [`DirWitness`]).
//!
//! Map of the crate:
//! - [`log::Log`] appends signed records to a [`LogStorage`] and serves roots and proofs;
//! - [`entry`] defines the records (the audited events) and their canonical encoding;
//! - [`checkpoint`] / [`note`] sign and open C2SP checkpoints;
//! - [`attestation`] / [`dsse`] build and verify in-toto attestations;
//! - [`verify::verify_log`], [`bundle::verify_bundle`] and [`witness`] verify offline.
#![forbid(unsafe_code)]

pub mod attestation;
pub mod bundle;
pub mod canonical;
pub mod checkpoint;
pub mod dsse;
pub mod entry;
pub mod hash;
pub mod history;
pub mod keys;
pub mod log;
pub mod note;
mod par;
pub mod proof;
pub mod storage;
pub mod verify;
pub mod witness;

pub use attestation::{
    ActionPredicate, ActionRef, AgentRef, ModelCall, ResourceDescriptor, Statement, Timings,
    attestation_entry, sign_attestation, verify_against_entry, verify_attestation,
};
pub use bundle::{Bundle, VerifiedBundle, build_bundle, verify_bundle};
pub use checkpoint::{Checkpoint, VerifiedCheckpoint, open_checkpoint};
pub use dsse::Envelope;
pub use entry::{Entry, KeySubject, Record};
pub use hash::Hash;
pub use history::KeyHistory;
pub use keys::{KeyId, KeyInfo, KeyName, Signer, VerifierKey, agent_key_name};
pub use log::{Appended, Log, LogError, PendingRecord, SignedCheckpoint};
pub use note::Note;
pub use proof::{NodeId, verify_consistency, verify_inclusion};
pub use storage::{AppendBatch, LogStorage, MemoryStorage, StorageError};
pub use verify::{LogLeaf, LogVerifier, VerifyError, VerifyOptions, VerifyReport, verify_log};
pub use witness::{DirWitness, Witness, check_against_witnessed};

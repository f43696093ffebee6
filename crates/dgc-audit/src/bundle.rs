//! Self-contained attestation bundles: the envelope, the log record that commits to it, its
//! inclusion proof and a signed checkpoint — everything needed to verify an attestation with
//! one trusted verifier key, no server and no database.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::attestation::{AttestationError, Statement, verify_against_entry};
use crate::checkpoint::{Checkpoint, CheckpointError, parse_unverified};
use crate::dsse::Envelope;
use crate::entry::{Entry, Record, RecordError};
use crate::hash::{Hash, leaf_hash};
use crate::keys::{KeyInfo, VerifierKey};
use crate::log::{Log, LogError};
use crate::note::{Note, NoteError};
use crate::proof::{ProofError, verify_inclusion};
use crate::storage::LogStorage;

/// `mediaType` of a bundle.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dgc.attestation-bundle.v1+json";

/// Largest bundle accepted (JSON bytes).
pub const MAX_BUNDLE_BYTES: usize = 4 << 20;

/// A bundle cannot be built, or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle is larger than {MAX_BUNDLE_BYTES} bytes")]
    TooLarge,
    #[error("not a DGC attestation bundle: {0}")]
    Format(String),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("checkpoint is not signed by the trusted key: {0}")]
    CheckpointSignature(NoteError),
    #[error("checkpoint origin {origin:?} is not the name of the key that signed it ({key})")]
    CheckpointOrigin { origin: String, key: String },
    #[error("bundle says tree size {bundle} but the checkpoint is for size {checkpoint}")]
    TreeSize { bundle: u64, checkpoint: u64 },
    #[error("record {index} is not included in the checkpointed tree: {error}")]
    Inclusion { index: u64, error: ProofError },
    #[error("log record: {0}")]
    Record(#[from] RecordError),
    #[error("log record {index} is a {found} entry, not an attestation")]
    NotAttestation { index: u64, found: String },
    #[error("log record is for {found}, the bundle for {expected}")]
    Mismatch { expected: String, found: String },
    #[error("log record is not signed by the instance key it names ({0})")]
    RecordSignature(String),
    #[error("attestation: {0}")]
    Attestation(#[from] AttestationError),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// A self-contained, offline-verifiable attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub attestation_id: String,
    /// The DSSE envelope of the in-toto statement.
    pub envelope: Envelope,
    /// Standard base64 of the log record (Merkle leaf) that commits to the envelope.
    pub record: String,
    pub log_index: u64,
    pub tree_size: u64,
    /// Inclusion proof of the record in the tree of `tree_size` records.
    pub inclusion_proof: Vec<Hash>,
    /// C2SP signed checkpoint of the tree of `tree_size` records.
    pub checkpoint: String,
    /// The keys involved, for display and key discovery. Never trusted: verification uses
    /// the caller's verifier key and the keys named inside the signed record.
    pub keys: Vec<KeyInfo>,
}

/// What a verified bundle proves.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedBundle {
    pub attestation_id: String,
    pub statement: Statement,
    pub log_index: u64,
    pub checkpoint: Checkpoint,
    pub agent_key: VerifierKey,
    pub instance_key: VerifierKey,
}

impl Bundle {
    /// Parses bundle JSON (size-limited).
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge);
        }
        let b: Bundle =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Format(e.to_string()))?;
        if b.media_type != BUNDLE_MEDIA_TYPE {
            return Err(BundleError::Format(format!(
                "mediaType is {:?}, expected {BUNDLE_MEDIA_TYPE:?}",
                b.media_type
            )));
        }
        Ok(b)
    }

    /// Pretty-printed JSON (what `dgc audit proof` writes).
    pub fn to_json_pretty(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    fn record_bytes(&self) -> Result<Vec<u8>, BundleError> {
        STANDARD
            .decode(&self.record)
            .map_err(|_| BundleError::Format("record is not standard base64".into()))
    }
}

/// Builds the bundle for the attestation recorded at `log_index`, proven against the signed
/// checkpoint `checkpoint_note` (which must cover the record and match the stored tree).
pub fn build_bundle<S: LogStorage + ?Sized>(
    log: &Log,
    storage: &S,
    attestation_id: &str,
    envelope: &Envelope,
    log_index: u64,
    checkpoint_note: &str,
) -> Result<Bundle, BundleError> {
    let (_, cp) = parse_unverified(checkpoint_note.as_bytes())?;
    if log_index >= cp.size {
        return Err(BundleError::Inclusion {
            index: log_index,
            error: ProofError::IndexBeyondSize {
                index: log_index,
                size: cp.size,
            },
        });
    }
    let stored_root = log.root_at(storage, cp.size)?;
    if stored_root != cp.root {
        return Err(BundleError::Checkpoint(CheckpointError::Malformed(
            format!(
                "checkpoint root does not match the stored tree at size {}",
                cp.size
            ),
        )));
    }
    let record = log.record(storage, log_index)?;
    let decoded = Record::decode(&record)?;
    let Entry::Attestation(att) = &decoded.entry else {
        return Err(BundleError::NotAttestation {
            index: log_index,
            found: decoded.entry.type_name().to_owned(),
        });
    };
    if att.attestation_id != attestation_id {
        return Err(BundleError::Mismatch {
            expected: attestation_id.to_owned(),
            found: att.attestation_id.clone(),
        });
    }
    verify_against_entry(envelope, att)?;
    // The checkpoint may be signed by a newer instance key than the record (after a
    // rotation); the caller adds that key to `keys` if it wants it displayed.
    let keys = vec![att.agent_key.describe(), att.instance_key.describe()];
    Ok(Bundle {
        media_type: BUNDLE_MEDIA_TYPE.to_owned(),
        attestation_id: attestation_id.to_owned(),
        envelope: envelope.clone(),
        record: STANDARD.encode(&record),
        log_index,
        tree_size: cp.size,
        inclusion_proof: log.inclusion_proof(storage, log_index, cp.size)?,
        checkpoint: checkpoint_note.to_owned(),
        keys,
    })
}

/// Verifies a bundle with nothing but the instance's verifier key(s): checkpoint signature,
/// inclusion of the record, the record's own signature, and the envelope's digests and both
/// signatures against the keys the record names.
pub fn verify_bundle(
    bundle: &Bundle,
    trusted: &[VerifierKey],
) -> Result<VerifiedBundle, BundleError> {
    if bundle.media_type != BUNDLE_MEDIA_TYPE {
        return Err(BundleError::Format(format!(
            "mediaType is {:?}",
            bundle.media_type
        )));
    }
    // 1. The checkpoint is signed by a trusted key named after the log's origin.
    let note = Note::parse(bundle.checkpoint.as_bytes()).map_err(CheckpointError::Note)?;
    let signers = note
        .verify(trusted)
        .map_err(BundleError::CheckpointSignature)?;
    let cp = Checkpoint::parse_text(note.text())?;
    if !signers.iter().any(|k| k.name().as_str() == cp.origin) {
        return Err(BundleError::CheckpointOrigin {
            origin: cp.origin,
            key: signers
                .iter()
                .map(|k| k.to_vkey())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if bundle.tree_size != cp.size {
        return Err(BundleError::TreeSize {
            bundle: bundle.tree_size,
            checkpoint: cp.size,
        });
    }
    // 2. The record is leaf `log_index` of that tree.
    let record = bundle.record_bytes()?;
    verify_inclusion(
        bundle.log_index,
        cp.size,
        leaf_hash(&record).as_ref(),
        &bundle.inclusion_proof,
        cp.root.as_ref(),
    )
    .map_err(|error| BundleError::Inclusion {
        index: bundle.log_index,
        error,
    })?;
    // 3. The record is a well-formed attestation entry of this log, at this position.
    let decoded = Record::decode(&record)?;
    if decoded.origin != cp.origin || decoded.index != bundle.log_index {
        return Err(BundleError::Mismatch {
            expected: format!("{} #{}", cp.origin, bundle.log_index),
            found: format!("{} #{}", decoded.origin, decoded.index),
        });
    }
    let Entry::Attestation(att) = &decoded.entry else {
        return Err(BundleError::NotAttestation {
            index: bundle.log_index,
            found: decoded.entry.type_name().to_owned(),
        });
    };
    if att.attestation_id != bundle.attestation_id {
        return Err(BundleError::Mismatch {
            expected: bundle.attestation_id.clone(),
            found: att.attestation_id.clone(),
        });
    }
    if att.instance_key.name().as_str() != cp.origin || !decoded.is_signed_by(&att.instance_key) {
        return Err(BundleError::RecordSignature(att.instance_key.to_vkey()));
    }
    // 4. The envelope is the one the record commits to, signed by the keys it names.
    let statement = verify_against_entry(&bundle.envelope, att)?;
    Ok(VerifiedBundle {
        attestation_id: att.attestation_id.clone(),
        statement,
        log_index: bundle.log_index,
        checkpoint: cp,
        agent_key: att.agent_key.clone(),
        instance_key: att.instance_key.clone(),
    })
}

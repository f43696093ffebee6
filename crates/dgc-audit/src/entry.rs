//! Log records: the versioned entry types DGC audits and their signed, canonical encoding.
//!
//! A record (one Merkle leaf) is a DSSE envelope in RFC 8785 canonical JSON whose payload is
//! the canonical JSON of a [`RecordBody`]: `{"entry":{"type":…},"index":n,"origin":…,
//! "time":…,"v":1}`, payload type [`RECORD_PAYLOAD_TYPE`], signed by the instance key valid at
//! `index` (and, for key records, by the key being introduced). Putting `origin` and `index`
//! under the signature pins every record to one position of one log, so a moved, swapped or
//! replayed record is caught and named even before the tree root is compared.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::canonical::{self, CanonicalError};
use crate::dsse::{Envelope, EnvelopeSignature};
use crate::hash::{Hash, hex_serde};
use crate::keys::{KeyId, Signer, VerifierKey};

/// DSSE payload type of a log record.
pub const RECORD_PAYLOAD_TYPE: &str = "application/vnd.dgc.audit-record.v1+json";

/// Record format version written into every body (`"v"`).
pub const RECORD_VERSION: u32 = 1;

/// Largest record (leaf) accepted. Records carry digests, not content, so they stay small.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// A record cannot be built or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is {0} bytes, more than the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("record is not a DSSE envelope: {0}")]
    Envelope(String),
    #[error("record payload type is {0:?}, expected {RECORD_PAYLOAD_TYPE:?}")]
    PayloadType(String),
    #[error("record bytes are not canonical JSON")]
    NotCanonical,
    #[error("record body: {0}")]
    Body(String),
    #[error("unsupported record version {0}")]
    Version(u64),
    #[error("record cannot be encoded: {0}")]
    Encode(#[from] CanonicalError),
    #[error("a record must be signed by at least one key")]
    Unsigned,
}

/// Whose signing key a key record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeySubject {
    /// The instance key that signs records and checkpoints.
    Instance,
    /// An agent's identity key that co-signs its attestations.
    Agent { agent_id: String },
}

/// First record of every log: names the instance and its first key (self-signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogInit {
    pub instance_id: String,
    /// The instance key; its name must be the log origin.
    pub key: VerifierKey,
}

/// What an attestation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestationSubject {
    ToolCall,
    Task,
}

/// An attestation was issued: the log commits to its envelope by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationEntry {
    pub attestation_id: String,
    pub agent_id: String,
    pub subject: AttestationSubject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// SHA-256 of the envelope's payload (the in-toto Statement bytes).
    #[serde(with = "hex_serde")]
    pub payload_sha256: Hash,
    /// SHA-256 of the canonical envelope JSON, signatures included.
    #[serde(with = "hex_serde")]
    pub envelope_sha256: Hash,
    /// The agent key that signed the envelope.
    pub agent_key: VerifierKey,
    /// The instance key that signed the envelope.
    pub instance_key: VerifierKey,
}

/// An API key (`key_…`, bearer secret `dgc_sk_…`) was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyIssued {
    pub key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The agents a key is limited to, when more than one (added in v1 as an optional field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_ids: Option<Vec<String>>,
    pub capabilities: Vec<String>,
    /// RFC 3339 expiry, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An API key was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRevoked {
    pub key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The kind of change made to a memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryOp {
    Create,
    Update,
    Delete,
}

/// A memory was written; the log holds a digest of the content, never the content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryWrite {
    pub memory_id: String,
    pub agent_id: String,
    pub op: MemoryOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// SHA-256 of the memory's canonical content (absent for deletes).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_hex_hash"
    )]
    pub content_sha256: Option<Hash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An agent's first signing key was registered (signed by the instance key and by the new
/// agent key, as proof of possession).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentKeyAdded {
    pub agent_id: String,
    pub key: VerifierKey,
}

/// A signing key was replaced. For the instance key the record is signed by the old key
/// (authorisation) and the new one (possession); for an agent key by the instance key and the
/// new agent key. Records before the rotation keep verifying with the old key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotated {
    pub subject: KeySubject,
    pub old_key_id: KeyId,
    pub new_key: VerifierKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An agent signing key was revoked without replacement (the agent can no longer attest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRevoked {
    pub subject: KeySubject,
    pub key_id: KeyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A reference to an earlier tree head of this log (e.g. a checkpoint that was published to
/// a witness), so the log itself records the heads it has vouched for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    pub size: u64,
    pub root_hash: Hash,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<String>,
}

/// What a record says happened. New kinds are added as new variants with new `type` strings;
/// fields are only ever added as optional, so old verifiers keep working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Entry {
    LogInit(LogInit),
    Attestation(Box<AttestationEntry>),
    ApiKeyIssued(ApiKeyIssued),
    ApiKeyRevoked(ApiKeyRevoked),
    MemoryWrite(MemoryWrite),
    AgentKeyAdded(AgentKeyAdded),
    KeyRotated(KeyRotated),
    KeyRevoked(KeyRevoked),
    CheckpointRef(CheckpointRef),
    /// An entry type this version does not know. Its record is still verified (position,
    /// signature, tree); it cannot change keys, so nothing else depends on it.
    #[serde(skip)]
    Unknown {
        type_name: String,
    },
}

impl Entry {
    /// The `type` strings this version understands.
    pub const KNOWN_TYPES: [&'static str; 9] = [
        "log_init",
        "attestation",
        "api_key_issued",
        "api_key_revoked",
        "memory_write",
        "agent_key_added",
        "key_rotated",
        "key_revoked",
        "checkpoint_ref",
    ];

    /// The entry's `type` string.
    pub fn type_name(&self) -> &str {
        match self {
            Entry::LogInit(_) => "log_init",
            Entry::Attestation(_) => "attestation",
            Entry::ApiKeyIssued(_) => "api_key_issued",
            Entry::ApiKeyRevoked(_) => "api_key_revoked",
            Entry::MemoryWrite(_) => "memory_write",
            Entry::AgentKeyAdded(_) => "agent_key_added",
            Entry::KeyRotated(_) => "key_rotated",
            Entry::KeyRevoked(_) => "key_revoked",
            Entry::CheckpointRef(_) => "checkpoint_ref",
            Entry::Unknown { type_name } => type_name,
        }
    }

    /// Decodes an entry object, mapping unknown `type`s to [`Entry::Unknown`] and rejecting
    /// malformed known ones.
    pub fn from_value(v: Value) -> Result<Self, RecordError> {
        let type_name = v
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| RecordError::Body("entry has no string \"type\"".into()))?
            .to_owned();
        if !Self::KNOWN_TYPES.contains(&type_name.as_str()) {
            return Ok(Entry::Unknown { type_name });
        }
        serde_json::from_value(v).map_err(|e| RecordError::Body(format!("{type_name} entry: {e}")))
    }
}

mod opt_hex_hash {
    use crate::hash::{Hash, hex_serde};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &Option<Hash>, s: S) -> Result<S::Ok, S::Error> {
        match h {
            Some(h) => hex_serde::serialize(h, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Hash>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "hex_serde")] Hash);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

/// The signed content of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordBody {
    pub v: u32,
    pub origin: String,
    pub index: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub entry: Entry,
}

/// Builds the leaf bytes of a record: canonical body, DSSE envelope signed by every signer,
/// canonical envelope JSON.
pub fn encode_record(body: &RecordBody, signers: &[&Signer]) -> Result<Vec<u8>, RecordError> {
    if signers.is_empty() {
        return Err(RecordError::Unsigned);
    }
    let payload = canonical::to_vec(body)?;
    let mut env = Envelope::new(RECORD_PAYLOAD_TYPE, payload);
    for s in signers {
        env.sign(s);
    }
    let bytes = env.to_json();
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// A decoded record. Decoding checks format only; who signed it is [`crate::verify`]'s job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub version: u32,
    pub origin: String,
    pub index: u64,
    pub time: OffsetDateTime,
    pub entry: Entry,
    envelope: Envelope,
}

impl Record {
    /// Decodes leaf bytes, insisting on the one canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge(bytes.len()));
        }
        let envelope =
            Envelope::from_json(bytes).map_err(|e| RecordError::Envelope(e.to_string()))?;
        if envelope.to_json() != bytes {
            return Err(RecordError::NotCanonical);
        }
        if envelope.payload_type != RECORD_PAYLOAD_TYPE {
            return Err(RecordError::PayloadType(envelope.payload_type));
        }
        let body = canonical::parse_canonical(&envelope.payload).map_err(|e| match e {
            CanonicalError::NotCanonical => RecordError::NotCanonical,
            other => RecordError::Body(other.to_string()),
        })?;
        let Value::Object(mut map) = body else {
            return Err(RecordError::Body("body is not a JSON object".into()));
        };
        let version = map
            .get("v")
            .and_then(Value::as_u64)
            .ok_or_else(|| RecordError::Body("missing version \"v\"".into()))?;
        if version != u64::from(RECORD_VERSION) {
            return Err(RecordError::Version(version));
        }
        let origin = map
            .get("origin")
            .and_then(Value::as_str)
            .ok_or_else(|| RecordError::Body("missing \"origin\"".into()))?
            .to_owned();
        let index = map
            .get("index")
            .and_then(Value::as_u64)
            .ok_or_else(|| RecordError::Body("missing \"index\"".into()))?;
        let time_str = map
            .get("time")
            .and_then(Value::as_str)
            .ok_or_else(|| RecordError::Body("missing \"time\"".into()))?;
        let time = OffsetDateTime::parse(time_str, &time::format_description::well_known::Rfc3339)
            .map_err(|e| RecordError::Body(format!("time: {e}")))?;
        let entry = Entry::from_value(
            map.remove("entry")
                .ok_or_else(|| RecordError::Body("missing \"entry\"".into()))?,
        )?;
        Ok(Self {
            version: RECORD_VERSION,
            origin,
            index,
            time,
            entry,
            envelope,
        })
    }

    /// The record's signatures (DSSE `keyid` hints and raw signatures).
    pub fn signatures(&self) -> &[EnvelopeSignature] {
        &self.envelope.signatures
    }

    /// Whether `key` signed this record.
    pub fn is_signed_by(&self, key: &VerifierKey) -> bool {
        self.envelope.is_signed_by(key)
    }

    /// The bytes every record signature covers (DSSE PAE of the body).
    pub fn signed_message(&self) -> Vec<u8> {
        self.envelope.pae()
    }

    /// The canonical body bytes (the DSSE payload).
    pub fn body_bytes(&self) -> &[u8] {
        &self.envelope.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;
    use crate::keys::KeyName;

    fn body(entry: Entry) -> RecordBody {
        RecordBody {
            v: RECORD_VERSION,
            origin: "dgc.local/i".into(),
            index: 3,
            time: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            entry,
        }
    }

    #[test]
    fn records_round_trip_and_are_canonical() {
        let s = Signer::generate(KeyName::new("dgc.local/i").unwrap());
        let entry = Entry::MemoryWrite(MemoryWrite {
            memory_id: "mem_1".into(),
            agent_id: "ag_1".into(),
            op: MemoryOp::Create,
            kind: Some("episodic".into()),
            content_sha256: Some(sha256(b"hello")),
            request_id: None,
        });
        let bytes = encode_record(&body(entry.clone()), &[&s]).unwrap();
        let rec = Record::decode(&bytes).unwrap();
        assert_eq!(rec.entry, entry);
        assert_eq!(rec.index, 3);
        assert!(rec.is_signed_by(s.verifier()));
        let payload = String::from_utf8(rec.body_bytes().to_vec()).unwrap();
        assert!(
            payload.starts_with(r#"{"entry":{"agent_id":"ag_1","content_sha256":"2cf24dba"#),
            "{payload}"
        );
        assert!(
            payload.ends_with(
                r#""index":3,"origin":"dgc.local/i","time":"2023-11-14T22:13:20Z","v":1}"#
            ),
            "{payload}"
        );
    }

    #[test]
    fn decode_rejects_reformatted_and_foreign_records() {
        let s = Signer::generate(KeyName::new("dgc.local/i").unwrap());
        let bytes = encode_record(
            &body(Entry::ApiKeyRevoked(ApiKeyRevoked {
                key_id: "key_1".into(),
                reason: None,
                request_id: None,
            })),
            &[&s],
        )
        .unwrap();
        let mut pretty =
            serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&bytes).unwrap()).unwrap();
        assert_eq!(Record::decode(&pretty), Err(RecordError::NotCanonical));
        pretty.truncate(10);
        assert!(matches!(
            Record::decode(&pretty),
            Err(RecordError::Envelope(_))
        ));

        let mut env = Envelope::new("application/vnd.in-toto+json", b"{}".to_vec());
        env.sign(&s);
        assert!(matches!(
            Record::decode(&env.to_json()),
            Err(RecordError::PayloadType(_))
        ));
        assert_eq!(
            encode_record(
                &body(Entry::CheckpointRef(CheckpointRef {
                    size: 1,
                    root_hash: sha256(b""),
                    witness: None
                })),
                &[]
            ),
            Err(RecordError::Unsigned)
        );
    }

    #[test]
    fn unknown_entry_types_decode_as_unknown() {
        let e = Entry::from_value(serde_json::json!({"type": "future_thing", "x": 1})).unwrap();
        assert_eq!(
            e,
            Entry::Unknown {
                type_name: "future_thing".into()
            }
        );
        assert!(Entry::from_value(serde_json::json!({"type": "memory_write"})).is_err());
        assert!(Entry::from_value(serde_json::json!({"x": 1})).is_err());
    }
}

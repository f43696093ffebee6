//! DGC attestations: in-toto Statement v1 with the DGC action predicate, in a DSSE envelope
//! signed by the acting agent's key and the instance key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{self, CanonicalError};
use crate::dsse::{DsseError, Envelope};
use crate::entry::{AttestationEntry, AttestationSubject};
use crate::hash::{Hash, sha256};
use crate::keys::{Signer, VerifierKey};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// DSSE payload type of in-toto statements.
pub const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Predicate type of a DGC action attestation (a tool call or a whole task).
pub const PREDICATE_TYPE: &str = "https://dgc.local/attestation/action/v1";

/// Most subjects one statement may name.
pub const MAX_SUBJECTS: usize = 1024;

/// An attestation cannot be built or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    #[error(transparent)]
    Dsse(#[from] DsseError),
    #[error("statement cannot be encoded: {0}")]
    Encode(#[from] CanonicalError),
    #[error("payload is not an in-toto statement: {0}")]
    Statement(String),
    #[error("statement _type is {0:?}, expected {STATEMENT_TYPE:?}")]
    StatementType(String),
    #[error("predicate type is {0:?}, expected {PREDICATE_TYPE:?}")]
    PredicateType(String),
    #[error("statement has no subject, or a subject without a digest")]
    Subject,
    #[error("envelope digest does not match the log entry ({what})")]
    DigestMismatch { what: &'static str },
    #[error("statement names agent {statement:?} but the log entry names {entry:?}")]
    AgentMismatch { statement: String, entry: String },
}

/// An in-toto ResourceDescriptor, limited to what DGC writes and reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Algorithm → lowercase hex digest.
    #[serde(default)]
    pub digest: BTreeMap<String, String>,
    #[serde(default, rename = "mediaType", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

impl ResourceDescriptor {
    /// A subject named `name` whose content is `bytes` (digest only; the bytes stay out).
    pub fn sha256_of(name: impl Into<String>, bytes: &[u8]) -> Self {
        Self::with_sha256(name, sha256(bytes))
    }

    /// A subject named `name` with a known SHA-256.
    pub fn with_sha256(name: impl Into<String>, digest: Hash) -> Self {
        Self {
            name: Some(name.into()),
            uri: None,
            digest: BTreeMap::from([("sha256".to_owned(), digest.to_hex())]),
            media_type: None,
            annotations: None,
        }
    }
}

/// The agent that acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRef {
    pub id: String,
    /// Signed-note key ID of the agent key that co-signs the envelope.
    pub key_id: String,
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRef {
    pub kind: AttestationSubject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// Namespaced tool name (`fs.read`, `mcp.<server>.<tool>`, …) for tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Outcome as the runtime reports it (`succeeded`, `failed`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// When it happened. Times are RFC 3339 strings as the runtime recorded them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
}

/// A model call that contributed to the action, by digest of its request and response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Algorithm → lowercase hex digest of the request.
    pub request_digest: BTreeMap<String, String>,
    /// Algorithm → lowercase hex digest of the response.
    pub response_digest: BTreeMap<String, String>,
}

/// The DGC action predicate ([`PREDICATE_TYPE`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionPredicate {
    pub instance_id: String,
    pub agent: AgentRef,
    pub action: ActionRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The gate pipeline's decisions, as the gates crate serialises them (opaque here).
    pub gate_decisions: Value,
    /// The sandbox profile the action ran under (opaque here).
    pub sandbox_profile: Value,
    pub timings: Timings,
    #[serde(default)]
    pub model_calls: Vec<ModelCall>,
}

/// An in-toto Statement v1 carrying a DGC action predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: ActionPredicate,
}

impl Statement {
    /// A statement about `subject` (digests of the action's inputs and outputs).
    pub fn new(subject: Vec<ResourceDescriptor>, predicate: ActionPredicate) -> Self {
        Self {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject,
            predicate_type: PREDICATE_TYPE.to_owned(),
            predicate,
        }
    }

    fn validate(&self) -> Result<(), AttestationError> {
        if self.statement_type != STATEMENT_TYPE {
            return Err(AttestationError::StatementType(self.statement_type.clone()));
        }
        if self.predicate_type != PREDICATE_TYPE {
            return Err(AttestationError::PredicateType(self.predicate_type.clone()));
        }
        if self.subject.is_empty()
            || self.subject.len() > MAX_SUBJECTS
            || self.subject.iter().any(|s| s.digest.is_empty())
        {
            return Err(AttestationError::Subject);
        }
        Ok(())
    }
}

/// Serialises `statement` canonically and signs it with the agent key and the instance key.
pub fn sign_attestation(
    statement: &Statement,
    agent: &Signer,
    instance: &Signer,
) -> Result<Envelope, AttestationError> {
    statement.validate()?;
    let payload = canonical::to_vec(statement)?;
    let mut env = Envelope::new(INTOTO_PAYLOAD_TYPE, payload);
    env.sign(agent);
    env.sign(instance);
    Ok(env)
}

/// Checks that `envelope` is an in-toto statement signed by both keys and returns it.
pub fn verify_attestation(
    envelope: &Envelope,
    agent_key: &VerifierKey,
    instance_key: &VerifierKey,
) -> Result<Statement, AttestationError> {
    envelope.verify(&[agent_key, instance_key])?;
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE {
        return Err(DsseError::WrongPayloadType {
            expected: INTOTO_PAYLOAD_TYPE.to_owned(),
            found: envelope.payload_type.clone(),
        }
        .into());
    }
    // Check the type URIs before the predicate's shape, so a foreign statement is reported
    // as such rather than as a missing field.
    let value: Value = serde_json::from_slice(&envelope.payload)
        .map_err(|e| AttestationError::Statement(e.to_string()))?;
    let type_of = |field: &str| value.get(field).and_then(Value::as_str).unwrap_or_default();
    if type_of("_type") != STATEMENT_TYPE {
        return Err(AttestationError::StatementType(type_of("_type").to_owned()));
    }
    if type_of("predicateType") != PREDICATE_TYPE {
        return Err(AttestationError::PredicateType(
            type_of("predicateType").to_owned(),
        ));
    }
    let statement: Statement =
        serde_json::from_value(value).map_err(|e| AttestationError::Statement(e.to_string()))?;
    statement.validate()?;
    Ok(statement)
}

/// The log entry that commits to `envelope` (to be appended by the caller).
pub fn attestation_entry(
    attestation_id: &str,
    statement: &Statement,
    envelope: &Envelope,
    agent_key: &VerifierKey,
    instance_key: &VerifierKey,
) -> AttestationEntry {
    AttestationEntry {
        attestation_id: attestation_id.to_owned(),
        agent_id: statement.predicate.agent.id.clone(),
        subject: statement.predicate.action.kind,
        task_id: statement.predicate.action.task_id.clone(),
        request_id: statement.predicate.request_id.clone(),
        payload_sha256: sha256(&envelope.payload),
        envelope_sha256: envelope.digest(),
        agent_key: agent_key.clone(),
        instance_key: instance_key.clone(),
    }
}

/// Checks `envelope` against the log entry that committed to it: digests, both signatures by
/// the keys the entry names, and the agent the statement names. Returns the statement.
pub fn verify_against_entry(
    envelope: &Envelope,
    entry: &AttestationEntry,
) -> Result<Statement, AttestationError> {
    if envelope.digest() != entry.envelope_sha256 {
        return Err(AttestationError::DigestMismatch { what: "envelope" });
    }
    if sha256(&envelope.payload) != entry.payload_sha256 {
        return Err(AttestationError::DigestMismatch { what: "payload" });
    }
    let statement = verify_attestation(envelope, &entry.agent_key, &entry.instance_key)?;
    if statement.predicate.agent.id != entry.agent_id {
        return Err(AttestationError::AgentMismatch {
            statement: statement.predicate.agent.id,
            entry: entry.agent_id.clone(),
        });
    }
    Ok(statement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyName;
    use serde_json::json;

    pub(crate) fn statement(agent_key: &VerifierKey) -> Statement {
        Statement::new(
            vec![
                ResourceDescriptor::sha256_of("input", b"{\"path\":\"/etc/hosts\"}"),
                ResourceDescriptor::sha256_of("output", b"127.0.0.1 localhost\n"),
            ],
            ActionPredicate {
                instance_id: "inst-1".into(),
                agent: AgentRef {
                    id: "ag_1".into(),
                    key_id: agent_key.key_id().to_string(),
                },
                action: ActionRef {
                    kind: AttestationSubject::ToolCall,
                    task_id: Some("tk_1".into()),
                    step: Some(0),
                    tool: Some("fs.read".into()),
                    outcome: Some("succeeded".into()),
                },
                request_id: Some("req-1".into()),
                gate_decisions: json!([{"gate": "satya", "decision": "allow", "score": 0.25}]),
                sandbox_profile: json!({"tier": "process", "cpu": 0.5}),
                timings: Timings {
                    started_at: "2026-01-01T00:00:00Z".into(),
                    finished_at: "2026-01-01T00:00:01.5Z".into(),
                    duration_ms: 1500,
                },
                model_calls: vec![],
            },
        )
    }

    #[test]
    fn sign_verify_and_bind_to_the_log_entry() {
        let agent = Signer::generate(KeyName::new("o/agents/ag_1").unwrap());
        let inst = Signer::generate(KeyName::new("o").unwrap());
        let st = statement(agent.verifier());
        let env = sign_attestation(&st, &agent, &inst).unwrap();
        assert_eq!(
            verify_attestation(&env, agent.verifier(), inst.verifier()).unwrap(),
            st
        );
        let entry = attestation_entry("att_1", &st, &env, agent.verifier(), inst.verifier());
        assert_eq!(verify_against_entry(&env, &entry).unwrap(), st);

        let mut only_agent = env.clone();
        only_agent
            .signatures
            .retain(|s| s.keyid == agent.key_id().to_string());
        assert!(matches!(
            verify_attestation(&only_agent, agent.verifier(), inst.verifier()),
            Err(AttestationError::Dsse(DsseError::MissingSignature(_)))
        ));
        assert!(matches!(
            verify_against_entry(&only_agent, &entry),
            Err(AttestationError::DigestMismatch { what: "envelope" })
        ));
        let other = Signer::generate(KeyName::new("o/agents/ag_2").unwrap());
        assert!(verify_attestation(&env, other.verifier(), inst.verifier()).is_err());
    }

    #[test]
    fn rejects_statements_without_subjects_or_with_foreign_types() {
        let agent = Signer::generate(KeyName::new("a").unwrap());
        let inst = Signer::generate(KeyName::new("i").unwrap());
        let mut st = statement(agent.verifier());
        st.subject.clear();
        assert_eq!(
            sign_attestation(&st, &agent, &inst),
            Err(AttestationError::Subject)
        );
        let mut st = statement(agent.verifier());
        st.predicate_type = "https://slsa.dev/provenance/v1".into();
        assert!(matches!(
            sign_attestation(&st, &agent, &inst),
            Err(AttestationError::PredicateType(_))
        ));
    }
}

//! The server's side of the audit log: the instance's log identity (origin and signer), agent
//! signers, the records each API mutation appends, witness publishing and the periodic
//! checkpointer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dgc_audit::entry::{ApiKeyIssued, ApiKeyRevoked, MemoryOp, MemoryWrite};
use dgc_audit::{DirWitness, Entry, KeyName, Log, Signer, VerifierKey, Witness};
use dgc_store::{AuditRecord, Auditor, Store, StoreError};
use dgc_types::agent::Agent;
use dgc_types::key::KeyInfo;
use ed25519_dalek::SigningKey;

use crate::crypto::{self, CryptoError, MasterKey};

/// The log's origin for an instance: `dgc.local/<instance id>`.
pub fn origin_for(instance_id: &str) -> Result<KeyName, dgc_audit::keys::KeyError> {
    KeyName::new(format!("dgc.local/{instance_id}"))
}

/// The audit identity of this instance.
#[derive(Debug, Clone)]
pub struct AuditIdentity {
    pub origin: KeyName,
    pub log: Log,
    pub signer: Signer,
}

impl AuditIdentity {
    pub fn new(
        instance_id: &str,
        instance_key: &SigningKey,
    ) -> Result<Self, dgc_audit::keys::KeyError> {
        let origin = origin_for(instance_id)?;
        Ok(Self {
            log: Log::new(origin.clone()),
            signer: Signer::from_signing_key(origin.clone(), instance_key.clone()),
            origin,
        })
    }

    pub fn auditor(&self) -> Auditor {
        Auditor {
            log: self.log.clone(),
            signer: self.signer.clone(),
        }
    }

    /// The verifier key of an agent, from its public key (for `/v1/audit/keys`).
    pub fn agent_verifier(&self, agent: &Agent) -> Option<VerifierKey> {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&agent.public_key)
            .ok()?;
        let bytes: [u8; 32] = raw.try_into().ok()?;
        let name = dgc_audit::agent_key_name(&self.origin, agent.id.as_str()).ok()?;
        VerifierKey::from_public_bytes(name, &bytes).ok()
    }

    /// An agent's signer, opened from its sealed private key.
    pub fn agent_signer(
        &self,
        master: &MasterKey,
        agent: &Agent,
        sealed: &[u8],
    ) -> Result<Signer, CryptoError> {
        let sk = crypto::open_signing_key(
            master,
            sealed,
            &crypto::agent_key_purpose(agent.id.as_str()),
        )?;
        let name = dgc_audit::agent_key_name(&self.origin, agent.id.as_str())
            .map_err(|_| CryptoError::Format)?;
        Ok(Signer::from_signing_key(name, sk))
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn key_issued(info: &KeyInfo, request_id: &str) -> AuditRecord {
    let (agent_id, agent_ids) = match info.agent_ids.as_deref() {
        Some([one]) => (Some(one.to_string()), None),
        Some(many) => (None, Some(many.iter().map(ToString::to_string).collect())),
        None => (None, None),
    };
    AuditRecord::new(Entry::ApiKeyIssued(ApiKeyIssued {
        key_id: info.id.to_string(),
        parent_key_id: info.parent_id.as_ref().map(ToString::to_string),
        agent_id,
        agent_ids,
        capabilities: info.capabilities.to_strings(),
        expires_at: info.expires_at.map(rfc3339),
        request_id: Some(request_id.to_string()),
    }))
}

pub fn key_revoked(key_id: &str, reason: String, request_id: &str) -> AuditRecord {
    AuditRecord::new(Entry::ApiKeyRevoked(ApiKeyRevoked {
        key_id: key_id.to_string(),
        reason: Some(reason),
        request_id: Some(request_id.to_string()),
    }))
}

pub fn memory_written(
    memory_id: &str,
    agent_id: &str,
    op: MemoryOp,
    kind: Option<&str>,
    content: Option<&str>,
    request_id: &str,
) -> AuditRecord {
    AuditRecord::new(Entry::MemoryWrite(MemoryWrite {
        memory_id: memory_id.to_string(),
        agent_id: agent_id.to_string(),
        op,
        kind: kind.map(str::to_string),
        content_sha256: content.map(|c| dgc_audit::hash::sha256(c.as_bytes())),
        request_id: Some(request_id.to_string()),
    }))
}

/// Where checkpoints are published outside the operator's database.
#[derive(Debug, Clone, Default)]
pub struct WitnessConfig {
    /// A directory (e.g. on another filesystem or a synced share) receiving one file per
    /// checkpoint, written once.
    pub dir: Option<PathBuf>,
}

/// Publishes checkpoints to the configured witnesses.
#[derive(Debug, Clone, Default)]
pub struct Witnesses {
    dirs: Vec<Arc<DirWitness>>,
}

impl Witnesses {
    pub fn new(
        cfg: &WitnessConfig,
        origin: &KeyName,
    ) -> Result<Self, dgc_audit::witness::WitnessError> {
        let mut dirs = Vec::new();
        if let Some(d) = &cfg.dir {
            dirs.push(Arc::new(DirWitness::new(d, origin.as_str())?));
        }
        Ok(Self { dirs })
    }

    /// Publishes one signed checkpoint everywhere; a conflict (a different checkpoint already
    /// witnessed at this size) is logged loudly: it means the log forked or was rewritten.
    pub fn publish(&self, note: &str) {
        for w in &self.dirs {
            if let Err(e) = w.publish(note) {
                tracing::error!(witness = %w.describe(), error = %e, "publishing a checkpoint to a witness failed");
            }
        }
    }
}

/// Signs a checkpoint whenever the log has grown, at most every `interval`, and publishes it.
pub fn spawn_checkpointer(
    store: Arc<dyn Store>,
    witnesses: Witnesses,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => {
                    // One last checkpoint so the final state is vouched for.
                    checkpoint_once(store.as_ref(), &witnesses, &mut last).await;
                    return;
                }
            }
            checkpoint_once(store.as_ref(), &witnesses, &mut last).await;
        }
    })
}

async fn checkpoint_once(store: &dyn Store, witnesses: &Witnesses, last: &mut u64) {
    match store.audit_size().await {
        Ok(size) if size > *last => match store.audit_checkpoint().await {
            Ok(cp) => {
                witnesses.publish(&cp.note);
                *last = cp.size;
                tracing::debug!(size = cp.size, "signed an audit checkpoint");
            }
            Err(e) => tracing::error!(error = %e, "signing an audit checkpoint failed"),
        },
        Ok(_) => {}
        Err(StoreError::Closed) => {}
        Err(e) => tracing::error!(error = %e, "reading the audit log size failed"),
    }
}

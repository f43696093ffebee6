//! Key history: which instance and agent keys were valid for which range of log indices, so
//! that records keep verifying with the key that signed them after a rotation.
//!
//! The history is not configuration: it is derived from the log's own key records
//! (`log_init`, `agent_key_added`, `key_rotated`, `key_revoked`), each signed by the key that
//! authorises it, so a verifier rebuilds it while replaying the log.

use serde::{Deserialize, Serialize};

use crate::entry::{Entry, KeySubject};
use crate::keys::{KeyId, KeyInfo, VerifierKey};

/// One key and the log indices it may sign: `from..until` (`until` exclusive, `None` = still
/// valid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEpoch {
    pub subject: KeySubject,
    pub key: VerifierKey,
    pub from: u64,
    pub until: Option<u64>,
}

impl KeyEpoch {
    /// Whether the key may sign the record at `index`.
    pub fn covers(&self, index: u64) -> bool {
        self.from <= index && self.until.is_none_or(|u| index < u)
    }
}

/// A key record does not fit the history so far.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyHistoryError {
    #[error("the log already has an instance key; log_init may only be the first record")]
    AlreadyInitialised,
    #[error("log_init must be the first record")]
    InitNotFirst,
    #[error("key {old} being replaced is not the current {subject} key (current: {current})")]
    NotCurrent {
        subject: String,
        old: KeyId,
        current: String,
    },
    #[error("agent {0} already has a signing key; replace it with key_rotated")]
    AgentHasKey(String),
    #[error("{0} has no current signing key")]
    NoCurrentKey(String),
    #[error("the instance key cannot be revoked, only rotated")]
    RevokeInstance,
    #[error("key {0} is already in the history")]
    Reused(String),
}

fn subject_label(s: &KeySubject) -> String {
    match s {
        KeySubject::Instance => "instance".to_owned(),
        KeySubject::Agent { agent_id } => format!("agent {agent_id}"),
    }
}

/// All keys a log has used, in the order they were introduced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHistory {
    epochs: Vec<KeyEpoch>,
}

impl KeyHistory {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn epochs(&self) -> &[KeyEpoch] {
        &self.epochs
    }

    /// Instance keys valid at `index` (two at a rotation record, which both sign).
    pub fn instance_keys_at(&self, index: u64) -> Vec<&VerifierKey> {
        self.epochs
            .iter()
            .filter(|e| e.subject == KeySubject::Instance && e.covers(index))
            .map(|e| &e.key)
            .collect()
    }

    /// The newest instance key valid at `index`.
    pub fn instance_key_at(&self, index: u64) -> Option<&VerifierKey> {
        self.instance_keys_at(index).into_iter().last()
    }

    /// The current (latest, unexpired) instance key.
    pub fn current_instance_key(&self) -> Option<&VerifierKey> {
        self.current(&KeySubject::Instance).map(|e| &e.key)
    }

    /// The signing key of `agent_id` valid at `index`.
    pub fn agent_key_at(&self, agent_id: &str, index: u64) -> Option<&VerifierKey> {
        self.epochs
            .iter()
            .rev()
            .find(|e| {
                matches!(&e.subject, KeySubject::Agent { agent_id: a } if a == agent_id)
                    && e.covers(index)
            })
            .map(|e| &e.key)
    }

    /// Every instance key the log has ever used.
    pub fn instance_keys(&self) -> Vec<VerifierKey> {
        self.epochs
            .iter()
            .filter(|e| e.subject == KeySubject::Instance)
            .map(|e| e.key.clone())
            .collect()
    }

    /// The epoch of a key, looked up by its full identity.
    pub fn epoch_of(&self, key: &VerifierKey) -> Option<&KeyEpoch> {
        self.epochs.iter().find(|e| &e.key == key)
    }

    /// `GET /v1/audit/keys` entries for every key in the history.
    pub fn describe(&self) -> Vec<KeyInfo> {
        self.epochs.iter().map(|e| e.key.describe()).collect()
    }

    fn current(&self, subject: &KeySubject) -> Option<&KeyEpoch> {
        self.epochs
            .iter()
            .rev()
            .find(|e| &e.subject == subject && e.until.is_none())
    }

    fn current_mut(&mut self, subject: &KeySubject) -> Option<&mut KeyEpoch> {
        self.epochs
            .iter_mut()
            .rev()
            .find(|e| &e.subject == subject && e.until.is_none())
    }

    fn push(
        &mut self,
        subject: KeySubject,
        key: &VerifierKey,
        from: u64,
    ) -> Result<(), KeyHistoryError> {
        // A key is bound to one subject and one epoch: reusing it would make the index ranges
        // ambiguous, and rotating back to an old key would silently revive its old records.
        if self
            .epochs
            .iter()
            .any(|e| e.key.public_bytes() == key.public_bytes())
        {
            return Err(KeyHistoryError::Reused(key.to_vkey()));
        }
        self.epochs.push(KeyEpoch {
            subject,
            key: key.clone(),
            from,
            until: None,
        });
        Ok(())
    }

    /// Applies the key record `entry` found at `index` (its signatures already checked).
    /// Non-key entries are ignored.
    pub fn apply(&mut self, index: u64, entry: &Entry) -> Result<(), KeyHistoryError> {
        match entry {
            Entry::LogInit(init) => {
                if self.current(&KeySubject::Instance).is_some() {
                    return Err(KeyHistoryError::AlreadyInitialised);
                }
                if index != 0 {
                    return Err(KeyHistoryError::InitNotFirst);
                }
                self.push(KeySubject::Instance, &init.key, index)
            }
            Entry::AgentKeyAdded(added) => {
                let subject = KeySubject::Agent {
                    agent_id: added.agent_id.clone(),
                };
                if self.current(&subject).is_some() {
                    return Err(KeyHistoryError::AgentHasKey(added.agent_id.clone()));
                }
                self.push(subject, &added.key, index)
            }
            Entry::KeyRotated(rot) => {
                let label = subject_label(&rot.subject);
                let Some(cur) = self.current(&rot.subject) else {
                    return Err(KeyHistoryError::NoCurrentKey(label));
                };
                if cur.key.key_id() != rot.old_key_id {
                    return Err(KeyHistoryError::NotCurrent {
                        subject: label,
                        old: rot.old_key_id,
                        current: cur.key.to_vkey(),
                    });
                }
                // The old instance key signs the rotation record itself, so it stays valid
                // through it; an old agent key signs nothing at or after the rotation.
                let until = match rot.subject {
                    KeySubject::Instance => index + 1,
                    KeySubject::Agent { .. } => index,
                };
                let subject = rot.subject.clone();
                if self
                    .epochs
                    .iter()
                    .any(|e| e.key.public_bytes() == rot.new_key.public_bytes())
                {
                    return Err(KeyHistoryError::Reused(rot.new_key.to_vkey()));
                }
                if let Some(cur) = self.current_mut(&subject) {
                    cur.until = Some(until);
                }
                self.push(subject, &rot.new_key, index)
            }
            Entry::KeyRevoked(rev) => {
                if rev.subject == KeySubject::Instance {
                    return Err(KeyHistoryError::RevokeInstance);
                }
                let label = subject_label(&rev.subject);
                let Some(cur) = self.current_mut(&rev.subject) else {
                    return Err(KeyHistoryError::NoCurrentKey(label));
                };
                if cur.key.key_id() != rev.key_id {
                    let current = cur.key.to_vkey();
                    return Err(KeyHistoryError::NotCurrent {
                        subject: label,
                        old: rev.key_id,
                        current,
                    });
                }
                cur.until = Some(index);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

//! A realistic log for the tests: genesis, agent keys, API keys, memory writes, attestations,
//! an agent key rotation, an instance key rotation, and checkpoints along the way.

use std::collections::BTreeMap;

use dgc_audit::entry::{
    AgentKeyAdded, ApiKeyIssued, ApiKeyRevoked, AttestationSubject, KeyRotated, MemoryOp,
    MemoryWrite,
};
use dgc_audit::hash::sha256;
use dgc_audit::{
    ActionPredicate, ActionRef, AgentRef, Entry, Envelope, KeyName, KeySubject, Log, LogLeaf,
    MemoryStorage, PendingRecord, ResourceDescriptor, Signer, Statement, Timings, VerifierKey,
    VerifyOptions, agent_key_name, attestation_entry, sign_attestation,
};
use serde_json::json;
use time::OffsetDateTime;

pub const ORIGIN: &str = "dgc.local/inst-test";

pub fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600 + secs).unwrap()
}

pub fn origin() -> KeyName {
    KeyName::new(ORIGIN).unwrap()
}

/// Deterministic keys, so failures are reproducible.
pub fn signer(name: &KeyName, seed: u8) -> Signer {
    Signer::from_seed(name.clone(), &[seed; 32])
}

pub fn statement(agent_id: &str, agent: &VerifierKey, n: u64) -> Statement {
    Statement::new(
        vec![
            ResourceDescriptor::sha256_of("input", format!("{{\"n\":{n}}}").as_bytes()),
            ResourceDescriptor::sha256_of("output", format!("result {n}").as_bytes()),
        ],
        ActionPredicate {
            instance_id: "inst-test".into(),
            agent: AgentRef {
                id: agent_id.into(),
                key_id: agent.key_id().to_string(),
            },
            action: ActionRef {
                kind: AttestationSubject::ToolCall,
                task_id: Some(format!("tk_{n}")),
                step: Some(0),
                tool: Some("fs.read".into()),
                outcome: Some("succeeded".into()),
            },
            request_id: Some(format!("req-{n}")),
            gate_decisions: json!([{"gate": "satya", "decision": "allow", "risk": 0.125}]),
            sandbox_profile: json!({"tier": "process", "cpu_quota": 0.5, "memory_mb": 256}),
            timings: Timings {
                started_at: "2026-01-01T00:00:00Z".into(),
                finished_at: "2026-01-01T00:00:00.250Z".into(),
                duration_ms: 250,
            },
            model_calls: vec![],
        },
    )
}

pub struct Fixture {
    pub log: Log,
    pub store: MemoryStorage,
    /// First instance key (records 0..=17).
    pub inst1: Signer,
    /// Instance key after the rotation at index 17.
    pub inst2: Signer,
    /// `ag_1`'s first key, rotated at index 15.
    pub agent1: Signer,
    pub agent1b: Signer,
    /// Signed checkpoints at sizes 5, 15 (by inst1) and 20 (by inst2).
    pub checkpoints: Vec<String>,
    /// Attestation envelopes by log index.
    pub envelopes: BTreeMap<u64, Envelope>,
    /// Attestation ids by log index.
    pub attestation_ids: BTreeMap<u64, String>,
}

impl Fixture {
    pub fn build() -> Self {
        let origin = origin();
        let log = Log::new(origin.clone());
        let mut store = MemoryStorage::new();
        let inst1 = signer(&origin, 1);
        let inst2 = signer(&origin, 2);
        let ag1_name = agent_key_name(&origin, "ag_1").unwrap();
        let agent1 = signer(&ag1_name, 11);
        let agent1b = signer(&ag1_name, 12);
        let mut fx = Fixture {
            log,
            store: MemoryStorage::new(),
            inst1,
            inst2,
            agent1,
            agent1b,
            checkpoints: Vec::new(),
            envelopes: BTreeMap::new(),
            attestation_ids: BTreeMap::new(),
        };

        fx.log
            .init(&mut store, "inst-test", &fx.inst1, t(0))
            .unwrap(); // 0
        let added = Entry::AgentKeyAdded(AgentKeyAdded {
            agent_id: "ag_1".into(),
            key: fx.agent1.verifier().clone(),
        });
        let api = Entry::ApiKeyIssued(ApiKeyIssued {
            key_id: "key_01".into(),
            parent_key_id: None,
            agent_id: Some("ag_1".into()),
            agent_ids: None,
            capabilities: vec!["tools.call".into(), "memory.write".into()],
            expires_at: Some("2026-12-31T00:00:00Z".into()),
            request_id: Some("req-0".into()),
        });
        fx.log
            .append(
                &mut store,
                &fx.inst1,
                vec![
                    PendingRecord::new(added, t(1)).with_cosigner(&fx.agent1), // 1
                    PendingRecord::new(api, t(2)),                             // 2
                ],
            )
            .unwrap();
        let (agent1, inst1) = (fx.agent1.clone(), fx.inst1.clone());
        fx.attest(&mut store, &agent1, &inst1, 3); // 3
        fx.memory(&mut store, &inst1, 4); // 4
        fx.checkpoint(&store, &inst1); // size 5

        // A batch of ten: attestations and memory writes alternate.
        let mut batch = Vec::new();
        let mut envs = Vec::new();
        for i in 5..15u64 {
            if i % 2 == 1 {
                let (entry, env, id) = fx.attestation_for(&agent1, &inst1, i);
                envs.push((i, env, id));
                batch.push(PendingRecord::new(entry, t(i as i64)));
            } else {
                batch.push(PendingRecord::new(memory_entry(i), t(i as i64)));
            }
        }
        fx.log.append(&mut store, &inst1, batch).unwrap();
        for (i, env, id) in envs {
            fx.envelopes.insert(i, env);
            fx.attestation_ids.insert(i, id);
        }
        fx.checkpoint(&store, &inst1); // size 15

        let agent1b = fx.agent1b.clone();
        let rot_agent = Entry::KeyRotated(KeyRotated {
            subject: KeySubject::Agent {
                agent_id: "ag_1".into(),
            },
            old_key_id: agent1.key_id(),
            new_key: agent1b.verifier().clone(),
            reason: Some("scheduled".into()),
        });
        fx.log
            .append(
                &mut store,
                &inst1,
                vec![PendingRecord::new(rot_agent, t(15)).with_cosigner(&agent1b)],
            )
            .unwrap(); // 15
        fx.attest(&mut store, &agent1b, &inst1, 16); // 16
        let inst2 = fx.inst2.clone();
        let rot_inst = Entry::KeyRotated(KeyRotated {
            subject: KeySubject::Instance,
            old_key_id: inst1.key_id(),
            new_key: inst2.verifier().clone(),
            reason: None,
        });
        fx.log
            .append(
                &mut store,
                &inst1,
                vec![PendingRecord::new(rot_inst, t(17)).with_cosigner(&inst2)],
            )
            .unwrap(); // 17
        fx.attest(&mut store, &agent1b, &inst2, 18); // 18
        let revoked = Entry::ApiKeyRevoked(ApiKeyRevoked {
            key_id: "key_01".into(),
            reason: Some("rotated".into()),
            request_id: None,
        });
        fx.log
            .append(&mut store, &inst2, vec![PendingRecord::new(revoked, t(19))])
            .unwrap(); // 19
        fx.checkpoint(&store, &inst2); // size 20
        fx.store = store;
        fx
    }

    pub fn attestation_for(
        &self,
        agent: &Signer,
        inst: &Signer,
        n: u64,
    ) -> (Entry, Envelope, String) {
        let st = statement("ag_1", agent.verifier(), n);
        let env = sign_attestation(&st, agent, inst).unwrap();
        let id = format!("att_{n:04}");
        let entry = attestation_entry(&id, &st, &env, agent.verifier(), inst.verifier());
        (Entry::Attestation(Box::new(entry)), env, id)
    }

    fn attest(&mut self, store: &mut MemoryStorage, agent: &Signer, inst: &Signer, n: u64) {
        let (entry, env, id) = self.attestation_for(agent, inst, n);
        let a = self
            .log
            .append(store, inst, vec![PendingRecord::new(entry, t(n as i64))])
            .unwrap();
        assert_eq!(a.first_index, n);
        self.envelopes.insert(n, env);
        self.attestation_ids.insert(n, id);
    }

    fn memory(&mut self, store: &mut MemoryStorage, inst: &Signer, n: u64) {
        self.log
            .append(
                store,
                inst,
                vec![PendingRecord::new(memory_entry(n), t(n as i64))],
            )
            .unwrap();
    }

    fn checkpoint(&mut self, store: &MemoryStorage, inst: &Signer) {
        self.checkpoints
            .push(self.log.checkpoint(store, inst).unwrap().note);
    }

    /// Options trusting the first instance key.
    pub fn opts(&self) -> VerifyOptions {
        let mut o = VerifyOptions::new(origin(), vec![self.inst1.verifier().clone()]);
        o.require_envelopes = true;
        o
    }

    /// The stored records as a verifier reads them, envelopes attached.
    pub fn leaves(&self) -> Vec<LogLeaf> {
        self.store
            .records()
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let leaf = LogLeaf::new(i as u64, r.clone());
                match self.envelopes.get(&(i as u64)) {
                    Some(env) => leaf.with_envelope(env.to_json()),
                    None => leaf,
                }
            })
            .collect()
    }
}

pub fn memory_entry(n: u64) -> Entry {
    Entry::MemoryWrite(MemoryWrite {
        memory_id: format!("mem_{n:04}"),
        agent_id: "ag_1".into(),
        op: MemoryOp::Create,
        kind: Some("episodic".into()),
        content_sha256: Some(sha256(format!("memory {n}").as_bytes())),
        request_id: None,
    })
}

pub fn ok_leaves(
    leaves: Vec<LogLeaf>,
) -> impl Iterator<Item = Result<LogLeaf, dgc_audit::StorageError>> {
    leaves.into_iter().map(Ok)
}

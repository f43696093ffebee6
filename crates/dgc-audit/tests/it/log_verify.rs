//! Whole-log verification: the fixture log verifies, and every kind of tampering is caught
//! and reported at the right index with the right reason.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dgc_audit::entry::KeySubject;
use dgc_audit::verify::{CheckpointProblem, RecordProblem};
use dgc_audit::{
    Checkpoint, Entry, KeyName, LogLeaf, Signer, VerifyError, VerifyOptions, verify_log,
};
use serde_json::Value;

use crate::common::{Fixture, ok_leaves, origin};

fn verify(
    leaves: Vec<LogLeaf>,
    checkpoints: &[String],
    opts: VerifyOptions,
) -> Result<dgc_audit::VerifyReport, VerifyError> {
    verify_log(ok_leaves(leaves), checkpoints, opts)
}

fn record_problem(e: VerifyError) -> (u64, RecordProblem) {
    match e {
        VerifyError::Record { index, problem } => (index, problem),
        other => panic!("expected a record error, got: {other}"),
    }
}

fn checkpoint_problem(e: VerifyError) -> (u64, CheckpointProblem) {
    match e {
        VerifyError::Checkpoint { size, problem } => (size, problem),
        other => panic!("expected a checkpoint error, got: {other}"),
    }
}

/// Rewrites the body of a stored record with `edit` and re-wraps it with its old signatures,
/// as someone with database access but no key would.
fn edit_body(record: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut env: Value = serde_json::from_slice(record).unwrap();
    let payload = STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    let mut body: Value = serde_json::from_slice(&payload).unwrap();
    edit(&mut body);
    let new_payload = dgc_audit::canonical::value_to_vec(&body).unwrap();
    env["payload"] = Value::String(STANDARD.encode(new_payload));
    dgc_audit::canonical::value_to_vec(&env).unwrap()
}

#[test]
fn the_fixture_log_verifies_with_keys_derived_from_the_log() {
    let fx = Fixture::build();
    let report = verify(fx.leaves(), &fx.checkpoints, fx.opts()).unwrap();
    assert_eq!(report.size, 20);
    assert_eq!(report.root, fx.log.root_at(&fx.store, 20).unwrap());
    assert_eq!(
        report
            .checkpoints
            .iter()
            .map(|c| c.size)
            .collect::<Vec<_>>(),
        vec![5, 15, 20]
    );
    assert_eq!(report.attestations_checked, 8);
    assert_eq!(report.entries["attestation"], 8);
    assert_eq!(report.entries["key_rotated"], 2);
    // The history was rebuilt from the log: inst1 until the rotation record, inst2 after.
    let h = &report.history;
    assert_eq!(h.instance_key_at(16), Some(fx.inst1.verifier()));
    assert_eq!(h.instance_keys_at(17).len(), 2);
    assert_eq!(h.instance_key_at(18), Some(fx.inst2.verifier()));
    assert_eq!(h.agent_key_at("ag_1", 14), Some(fx.agent1.verifier()));
    assert_eq!(h.agent_key_at("ag_1", 16), Some(fx.agent1b.verifier()));
    assert_eq!(h.describe().len(), 4);
    assert!(report.to_string().starts_with("20 records"));
}

#[test]
fn trusting_only_the_current_key_needs_a_checkpoint_it_signed() {
    let fx = Fixture::build();
    let opts = VerifyOptions::new(origin(), vec![fx.inst2.verifier().clone()]);
    verify(fx.leaves(), &fx.checkpoints, opts.clone()).unwrap();
    // Without the size-20 checkpoint nothing signed by inst2 vouches for records 0..17.
    let err = verify(fx.leaves(), &fx.checkpoints[..2], opts).unwrap_err();
    assert!(
        matches!(err, VerifyError::UntrustedPrefix { until: 17 }),
        "{err}"
    );
}

#[test]
fn an_unrelated_trust_anchor_is_refused() {
    let fx = Fixture::build();
    let stranger = Signer::generate(origin());
    let opts = VerifyOptions::new(origin(), vec![stranger.verifier().clone()]);
    let err = verify(fx.leaves(), &fx.checkpoints, opts).unwrap_err();
    assert!(matches!(err, VerifyError::Untrusted { .. }), "{err}");
}

#[test]
fn changed_bytes_are_named() {
    let fx = Fixture::build();
    // A semantic edit that keeps the record canonical: only the signature can catch it.
    let mut leaves = fx.leaves();
    leaves[6].record = edit_body(&leaves[6].record, |b| {
        b["entry"]["memory_id"] = Value::String("mem_9999".into());
    });
    let (index, problem) = record_problem(verify(leaves, &fx.checkpoints, fx.opts()).unwrap_err());
    assert_eq!(index, 6);
    assert!(
        matches!(problem, RecordProblem::BadSignature { .. }),
        "{problem}"
    );

    // A flipped byte in the raw record.
    let mut leaves = fx.leaves();
    let mid = leaves[9].record.len() / 2;
    leaves[9].record[mid] ^= 0x01;
    let (index, problem) = record_problem(verify(leaves, &fx.checkpoints, fx.opts()).unwrap_err());
    assert_eq!(index, 9);
    assert!(
        matches!(
            problem,
            RecordProblem::Malformed(_) | RecordProblem::BadSignature { .. }
        ),
        "{problem}"
    );

    // Re-serialised (pretty-printed) but otherwise identical.
    let mut leaves = fx.leaves();
    let v: Value = serde_json::from_slice(&leaves[2].record).unwrap();
    leaves[2].record = serde_json::to_vec_pretty(&v).unwrap();
    let (index, problem) = record_problem(verify(leaves, &fx.checkpoints, fx.opts()).unwrap_err());
    assert_eq!(index, 2);
    assert!(matches!(problem, RecordProblem::Malformed(_)), "{problem}");
}

#[test]
fn a_deleted_record_is_named() {
    let fx = Fixture::build();
    let mut leaves = fx.leaves();
    leaves.remove(6);
    let (index, problem) = record_problem(verify(leaves, &fx.checkpoints, fx.opts()).unwrap_err());
    assert_eq!(index, 6);
    assert_eq!(problem, RecordProblem::Missing { found: 7 });
    // Deleting and renumbering the rest to close the gap is caught by the signed index.
    let mut leaves = fx.leaves();
    leaves.remove(6);
    for (i, l) in leaves.iter_mut().enumerate() {
        l.index = i as u64;
    }
    let (index, problem) = record_problem(verify(leaves, &fx.checkpoints, fx.opts()).unwrap_err());
    assert_eq!(index, 6);
    assert_eq!(problem, RecordProblem::Misplaced { claims: 7 });
}

#[test]
fn swapped_records_are_named() {
    let fx = Fixture::build();
    let mut leaves = fx.leaves();
    let (a, b) = (leaves[8].clone(), leaves[11].clone());
    leaves[8].record = b.record;
    leaves[8].envelope = b.envelope;
    leaves[11].record = a.record;
    leaves[11].envelope = a.envelope;
    let (index, problem) = record_problem(verify(leaves, &fx.checkpoints, fx.opts()).unwrap_err());
    assert_eq!(index, 8);
    assert_eq!(problem, RecordProblem::Misplaced { claims: 11 });
}

#[test]
fn truncation_below_a_checkpoint_is_named() {
    let fx = Fixture::build();
    let mut leaves = fx.leaves();
    leaves.truncate(12);
    let (size, problem) =
        checkpoint_problem(verify(leaves, &fx.checkpoints, fx.opts()).unwrap_err());
    assert_eq!(size, 15);
    assert_eq!(
        problem,
        CheckpointProblem::BeyondLog {
            size: 15,
            log_size: 12
        }
    );
}

#[test]
fn a_checkpoint_signed_by_another_key_is_named() {
    let fx = Fixture::build();
    let impostor = Signer::generate(origin());
    let mut cps = fx.checkpoints.clone();
    // Same tree head, signed by a key that has the instance's name but is not in the log.
    cps[2] = fx.log.checkpoint(&fx.store, &impostor).unwrap().note;
    let (size, problem) = checkpoint_problem(verify(fx.leaves(), &cps, fx.opts()).unwrap_err());
    assert_eq!(size, 20);
    assert!(
        matches!(problem, CheckpointProblem::UnknownKey { .. }),
        "{problem}"
    );
}

#[test]
fn a_retired_key_cannot_sign_a_later_checkpoint() {
    let fx = Fixture::build();
    let root20 = fx.log.root_at(&fx.store, 20).unwrap();
    let by_old_key = Checkpoint::new(crate::common::ORIGIN, 20, root20)
        .sign(&fx.inst1)
        .unwrap();
    let mut cps = fx.checkpoints.clone();
    cps[2] = by_old_key;
    let (size, problem) = checkpoint_problem(verify(fx.leaves(), &cps, fx.opts()).unwrap_err());
    assert_eq!(size, 20);
    assert!(
        matches!(problem, CheckpointProblem::KeyNotValid { from: 0, .. }),
        "{problem}"
    );
}

#[test]
fn a_rolled_back_and_rewritten_tree_is_named() {
    let fx = Fixture::build();
    // The operator rolls back to 12 records and appends different ones, re-signing with the
    // real key: the stored checkpoint at 15 no longer matches.
    let mut store = dgc_audit::MemoryStorage::new();
    let log = dgc_audit::Log::new(origin());
    log.append_leaves(&mut store, &fx.store.records()[..12])
        .unwrap();
    let replacement: Vec<dgc_audit::PendingRecord<'_>> = (12..20)
        .map(|i| {
            dgc_audit::PendingRecord::new(
                crate::common::memory_entry(i + 100),
                crate::common::t(i as i64),
            )
        })
        .collect();
    log.append(&mut store, &fx.inst1, replacement).unwrap();
    let leaves: Vec<LogLeaf> = store
        .records()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let l = LogLeaf::new(i as u64, r.clone());
            match fx.envelopes.get(&(i as u64)) {
                Some(e) if i < 12 => l.with_envelope(e.to_json()),
                _ => l,
            }
        })
        .collect();
    let (size, problem) =
        checkpoint_problem(verify(leaves, &fx.checkpoints[..2], fx.opts()).unwrap_err());
    assert_eq!(size, 15);
    assert!(
        matches!(problem, CheckpointProblem::RootMismatch { .. }),
        "{problem}"
    );
}

#[test]
fn a_tampered_checkpoint_text_is_named() {
    let fx = Fixture::build();
    let mut cps = fx.checkpoints.clone();
    let root15 = fx.log.root_at(&fx.store, 15).unwrap().to_base64();
    let root14 = fx.log.root_at(&fx.store, 14).unwrap().to_base64();
    cps[1] = cps[1].replace(&root15, &root14);
    let (size, problem) = checkpoint_problem(verify(fx.leaves(), &cps, fx.opts()).unwrap_err());
    assert_eq!(size, 15);
    assert!(
        matches!(problem, CheckpointProblem::BadSignature { .. }),
        "{problem}"
    );
    // Correctly signed, wrong root.
    let mut cps = fx.checkpoints.clone();
    cps[1] = Checkpoint::new(
        crate::common::ORIGIN,
        15,
        fx.log.root_at(&fx.store, 14).unwrap(),
    )
    .sign(&fx.inst1)
    .unwrap();
    let (size, problem) = checkpoint_problem(verify(fx.leaves(), &cps, fx.opts()).unwrap_err());
    assert_eq!(size, 15);
    assert!(
        matches!(problem, CheckpointProblem::RootMismatch { .. }),
        "{problem}"
    );
}

#[test]
fn envelopes_must_match_their_records() {
    let fx = Fixture::build();
    let mut leaves = fx.leaves();
    leaves[7].envelope = leaves[9].envelope.clone();
    let (index, problem) = record_problem(verify(leaves, &fx.checkpoints, fx.opts()).unwrap_err());
    assert_eq!(index, 7);
    assert!(
        matches!(problem, RecordProblem::Attestation(_)),
        "{problem}"
    );
    let mut leaves = fx.leaves();
    leaves[3].envelope = None;
    let (index, problem) = record_problem(verify(leaves, &fx.checkpoints, fx.opts()).unwrap_err());
    assert_eq!((index, problem), (3, RecordProblem::MissingEnvelope));
}

#[test]
fn records_signed_by_the_wrong_keys_are_named() {
    let fx = Fixture::build();
    let log = dgc_audit::Log::new(origin());
    // An attestation co-signed by an agent key the log never registered.
    let rogue = Signer::generate(dgc_audit::agent_key_name(&origin(), "ag_1").unwrap());
    let mut store = dgc_audit::MemoryStorage::new();
    log.append_leaves(&mut store, &fx.store.records()[..5])
        .unwrap();
    let (entry, _, _) = fx.attestation_for(&rogue, &fx.inst1, 5);
    log.append(
        &mut store,
        &fx.inst1,
        vec![dgc_audit::PendingRecord::new(entry, crate::common::t(5))],
    )
    .unwrap();
    let leaves: Vec<LogLeaf> = store
        .records()
        .iter()
        .enumerate()
        .map(|(i, r)| LogLeaf::new(i as u64, r.clone()))
        .collect();
    let mut opts = fx.opts();
    opts.require_envelopes = false;
    let (index, problem) = record_problem(verify(leaves, &[] as &[String], opts).unwrap_err());
    assert_eq!(index, 5);
    assert!(
        matches!(problem, RecordProblem::AttestationKey { what: "agent", .. }),
        "{problem}"
    );

    // A record carrying an extra signature.
    let mut leaves = fx.leaves();
    let mut env: Value = serde_json::from_slice(&leaves[4].record).unwrap();
    let extra = serde_json::json!({"keyid": "00000000", "sig": STANDARD.encode([0u8; 64])});
    env["signatures"].as_array_mut().unwrap().push(extra);
    leaves[4].record = dgc_audit::canonical::value_to_vec(&env).unwrap();
    let (index, problem) = record_problem(verify(leaves, &fx.checkpoints, fx.opts()).unwrap_err());
    assert_eq!(index, 4);
    assert!(
        matches!(problem, RecordProblem::UnexpectedSignature { .. }),
        "{problem}"
    );

    // A record from another log.
    let mut leaves = fx.leaves();
    let other = KeyName::new("dgc.local/other").unwrap();
    let other_log = dgc_audit::Log::new(other.clone());
    let mut other_store = dgc_audit::MemoryStorage::new();
    other_log
        .init(
            &mut other_store,
            "other",
            &Signer::generate(other),
            crate::common::t(0),
        )
        .unwrap();
    leaves[0].record = other_store.records()[0].clone();
    let (index, problem) = record_problem(verify(leaves, &fx.checkpoints, fx.opts()).unwrap_err());
    assert_eq!(index, 0);
    assert!(
        matches!(problem, RecordProblem::WrongOrigin { .. }),
        "{problem}"
    );
}

#[test]
fn key_records_must_follow_the_history() {
    let fx = Fixture::build();
    let log = dgc_audit::Log::new(origin());
    let mut store = dgc_audit::MemoryStorage::new();
    log.append_leaves(&mut store, &fx.store.records()[..5])
        .unwrap();
    // Rotating a key that is not the current one.
    let bogus = Entry::KeyRotated(dgc_audit::entry::KeyRotated {
        subject: KeySubject::Agent {
            agent_id: "ag_1".into(),
        },
        old_key_id: fx.agent1b.key_id(),
        new_key: fx.agent1b.verifier().clone(),
        reason: None,
    });
    log.append(
        &mut store,
        &fx.inst1,
        vec![dgc_audit::PendingRecord::new(bogus, crate::common::t(5)).with_cosigner(&fx.agent1b)],
    )
    .unwrap();
    let leaves: Vec<LogLeaf> = store
        .records()
        .iter()
        .enumerate()
        .map(|(i, r)| LogLeaf::new(i as u64, r.clone()))
        .collect();
    let mut opts = fx.opts();
    opts.require_envelopes = false;
    let (index, problem) = record_problem(verify(leaves, &[] as &[String], opts).unwrap_err());
    assert_eq!(index, 5);
    assert!(matches!(problem, RecordProblem::KeyHistory(_)), "{problem}");
}

#[test]
fn unknown_entry_types_are_verified_but_not_interpreted() {
    // A future record type, signed properly, must not break verification of the log.
    let fx = Fixture::build();
    let mut leaves = fx.leaves();
    leaves.truncate(20);
    let mut body: Value = {
        let env: Value = serde_json::from_slice(&leaves[19].record).unwrap();
        serde_json::from_slice(&STANDARD.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap()
    };
    body["index"] = 20.into();
    body["entry"] = serde_json::json!({"type": "tool_registered", "tool": "fs.read"});
    let payload = dgc_audit::canonical::value_to_vec(&body).unwrap();
    let mut env = dgc_audit::Envelope::new(dgc_audit::entry::RECORD_PAYLOAD_TYPE, payload);
    env.sign(&fx.inst2);
    leaves.push(LogLeaf::new(20, env.to_json()));
    let report = verify(leaves, &fx.checkpoints, fx.opts()).unwrap();
    assert_eq!(report.unknown_entries, 1);
    assert_eq!(report.size, 21);
}

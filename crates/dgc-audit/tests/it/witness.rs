//! Witnessing to a directory: write-once publication, and detection of rollback and forks
//! against the witnessed checkpoints.

use dgc_audit::witness::{WitnessCheckError, WitnessError};
use dgc_audit::{
    Checkpoint, DirWitness, Log, MemoryStorage, PendingRecord, Witness, check_against_witnessed,
};

use crate::common::{Fixture, ORIGIN, memory_entry, origin, t};

#[test]
fn publication_is_write_once_and_idempotent() {
    let fx = Fixture::build();
    let dir = tempfile::tempdir().unwrap();
    let w = DirWitness::new(dir.path().join("witness"), ORIGIN).unwrap();
    for cp in &fx.checkpoints {
        w.publish(cp).unwrap();
    }
    w.publish(&fx.checkpoints[1]).unwrap();
    assert_eq!(w.witnessed().unwrap(), fx.checkpoints);
    // A different checkpoint for an already witnessed size is refused, and the original kept.
    let forged = Checkpoint::new(ORIGIN, 15, fx.log.root_at(&fx.store, 14).unwrap())
        .sign(&fx.inst1)
        .unwrap();
    assert!(matches!(
        w.publish(&forged),
        Err(WitnessError::Conflict { size: 15, .. })
    ));
    assert_eq!(w.witnessed().unwrap()[1], fx.checkpoints[1]);
    assert!(matches!(
        w.publish("garbage"),
        Err(WitnessError::Checkpoint(_))
    ));
    let other = Checkpoint::new("dgc.local/other", 1, dgc_audit::hash::empty_root())
        .sign(&fx.inst1)
        .unwrap();
    assert!(matches!(
        w.publish(&other),
        Err(WitnessError::WrongOrigin { .. })
    ));
    // No temporary files are left behind, and stray files are ignored.
    std::fs::write(dir.path().join("witness/notes.txt"), "hello").unwrap();
    assert_eq!(w.witnessed().unwrap().len(), 3);
    let names: Vec<String> = std::fs::read_dir(dir.path().join("witness"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn the_log_is_checked_against_witnessed_checkpoints() {
    let fx = Fixture::build();
    let keys = vec![fx.inst1.verifier().clone(), fx.inst2.verifier().clone()];
    let current = Checkpoint::new(ORIGIN, 20, fx.log.root_at(&fx.store, 20).unwrap());
    let proofs = |a, b| {
        fx.log
            .consistency_proof(&fx.store, a, b)
            .map_err(|e| dgc_audit::StorageError::msg(e.to_string()))
    };
    let heads = check_against_witnessed(&fx.checkpoints, &current, &keys, proofs).unwrap();
    assert_eq!(
        heads.iter().map(|h| h.size).collect::<Vec<_>>(),
        vec![5, 15, 20]
    );

    // Rolled back: the log now ends at 12, below the witnessed 15 and 20.
    let rolled = Checkpoint::new(ORIGIN, 12, fx.log.root_at(&fx.store, 12).unwrap());
    let err = check_against_witnessed(&fx.checkpoints, &rolled, &keys, proofs).unwrap_err();
    assert!(
        matches!(
            err,
            WitnessCheckError::RolledBack {
                size: 15,
                current: 12
            }
        ),
        "{err}"
    );
}

#[test]
fn a_rewritten_history_is_caught_by_the_witness() {
    let fx = Fixture::build();
    // The operator rebuilds the log from record 10 with different records, past size 20.
    let log = Log::new(origin());
    let mut forked = MemoryStorage::new();
    log.append_leaves(&mut forked, &fx.store.records()[..10])
        .unwrap();
    let recs: Vec<PendingRecord<'_>> = (10..25)
        .map(|i| PendingRecord::new(memory_entry(i + 500), t(i as i64)))
        .collect();
    log.append(&mut forked, &fx.inst1, recs).unwrap();
    let current = Checkpoint::new(ORIGIN, 25, log.root_at(&forked, 25).unwrap());
    let keys = vec![fx.inst1.verifier().clone(), fx.inst2.verifier().clone()];
    let proofs = |a, b| {
        log.consistency_proof(&forked, a, b)
            .map_err(|e| dgc_audit::StorageError::msg(e.to_string()))
    };
    let err = check_against_witnessed(&fx.checkpoints, &current, &keys, proofs).unwrap_err();
    assert!(
        matches!(err, WitnessCheckError::Inconsistent { size: 15, .. }),
        "{err}"
    );

    // A witnessed file not signed by the log's keys is an error, not silently skipped.
    let stranger = dgc_audit::Signer::generate(origin());
    let planted = Checkpoint::new(ORIGIN, 3, fx.log.root_at(&fx.store, 3).unwrap())
        .sign(&stranger)
        .unwrap();
    let current = Checkpoint::new(ORIGIN, 20, fx.log.root_at(&fx.store, 20).unwrap());
    let err = check_against_witnessed(&[planted], &current, &keys, |a, b| {
        fx.log
            .consistency_proof(&fx.store, a, b)
            .map_err(|e| dgc_audit::StorageError::msg(e.to_string()))
    })
    .unwrap_err();
    assert!(
        matches!(err, WitnessCheckError::Signature { size: 3, .. }),
        "{err}"
    );
}

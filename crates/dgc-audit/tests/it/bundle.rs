//! Attestation bundles: built from the log, verified with only a verifier key, and rejected
//! when any part is swapped or altered.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dgc_audit::bundle::BundleError;
use dgc_audit::{Bundle, Signer, VerifierKey, build_bundle, verify_bundle};

use crate::common::{Fixture, origin};

fn bundle_for(fx: &Fixture, index: u64, checkpoint: usize) -> Bundle {
    build_bundle(
        &fx.log,
        &fx.store,
        &fx.attestation_ids[&index],
        &fx.envelopes[&index],
        index,
        &fx.checkpoints[checkpoint],
    )
    .unwrap()
}

#[test]
fn bundles_verify_offline_across_key_rotations() {
    let fx = Fixture::build();
    // Attestation 3 was signed by agent1 + inst1; the checkpoint at 20 by inst2.
    let b = bundle_for(&fx, 3, 2);
    let json = b.to_json_pretty();
    let parsed = Bundle::from_json(&json).unwrap();
    let trusted: Vec<VerifierKey> = vec![fx.inst2.verifier().clone()];
    let v = verify_bundle(&parsed, &trusted).unwrap();
    assert_eq!(v.log_index, 3);
    assert_eq!(v.checkpoint.size, 20);
    assert_eq!(&v.agent_key, fx.agent1.verifier());
    assert_eq!(&v.instance_key, fx.inst1.verifier());
    assert_eq!(
        v.statement.predicate.action.task_id.as_deref(),
        Some("tk_3")
    );
    // The same attestation proven against the older checkpoint needs the older key.
    let old = bundle_for(&fx, 3, 0);
    assert!(verify_bundle(&old, &[fx.inst1.verifier().clone()]).is_ok());
    assert!(matches!(
        verify_bundle(&old, &trusted),
        Err(BundleError::CheckpointSignature(_))
    ));
    // An attestation after both rotations.
    let late = bundle_for(&fx, 18, 2);
    let v = verify_bundle(&late, &trusted).unwrap();
    assert_eq!(&v.agent_key, fx.agent1b.verifier());
}

#[test]
fn building_refuses_inconsistent_inputs() {
    let fx = Fixture::build();
    let wrong_env = build_bundle(
        &fx.log,
        &fx.store,
        &fx.attestation_ids[&3],
        &fx.envelopes[&5],
        3,
        &fx.checkpoints[2],
    );
    assert!(matches!(wrong_env, Err(BundleError::Attestation(_))));
    let not_att = build_bundle(
        &fx.log,
        &fx.store,
        "att_x",
        &fx.envelopes[&3],
        4,
        &fx.checkpoints[2],
    );
    assert!(matches!(
        not_att,
        Err(BundleError::NotAttestation { index: 4, .. })
    ));
    let beyond = build_bundle(
        &fx.log,
        &fx.store,
        &fx.attestation_ids[&16],
        &fx.envelopes[&16],
        16,
        &fx.checkpoints[1],
    );
    assert!(matches!(beyond, Err(BundleError::Inclusion { .. })));
}

#[test]
fn every_altered_part_is_rejected() {
    let fx = Fixture::build();
    let trusted = vec![fx.inst2.verifier().clone()];
    let good = bundle_for(&fx, 7, 2);
    verify_bundle(&good, &trusted).unwrap();

    let mut b = good.clone();
    b.envelope = fx.envelopes[&9].clone();
    assert!(matches!(
        verify_bundle(&b, &trusted),
        Err(BundleError::Attestation(_))
    ));

    let mut b = good.clone();
    b.envelope.payload[10] ^= 1;
    assert!(matches!(
        verify_bundle(&b, &trusted),
        Err(BundleError::Attestation(_))
    ));

    let mut b = good.clone();
    b.log_index = 9;
    assert!(matches!(
        verify_bundle(&b, &trusted),
        Err(BundleError::Inclusion { index: 9, .. })
    ));

    let mut b = good.clone();
    b.inclusion_proof[0].0[0] ^= 1;
    assert!(matches!(
        verify_bundle(&b, &trusted),
        Err(BundleError::Inclusion { .. })
    ));

    let mut b = good.clone();
    b.record = STANDARD.encode(&fx.store.records()[9]);
    assert!(matches!(
        verify_bundle(&b, &trusted),
        Err(BundleError::Inclusion { .. })
    ));

    let mut b = good.clone();
    b.attestation_id = "att_other".into();
    assert!(matches!(
        verify_bundle(&b, &trusted),
        Err(BundleError::Mismatch { .. })
    ));

    let mut b = good.clone();
    b.tree_size = 19;
    assert!(matches!(
        verify_bundle(&b, &trusted),
        Err(BundleError::TreeSize { .. })
    ));

    let impostor = Signer::generate(origin());
    let b = good.clone();
    assert!(matches!(
        verify_bundle(&b, &[impostor.verifier().clone()]),
        Err(BundleError::CheckpointSignature(_))
    ));

    let mut json: serde_json::Value = serde_json::from_slice(&good.to_json_pretty()).unwrap();
    json["mediaType"] = "application/json".into();
    assert!(matches!(
        Bundle::from_json(&serde_json::to_vec(&json).unwrap()),
        Err(BundleError::Format(_))
    ));
    assert!(matches!(
        Bundle::from_json(&vec![b' '; dgc_audit::bundle::MAX_BUNDLE_BYTES + 1]),
        Err(BundleError::TooLarge)
    ));
}

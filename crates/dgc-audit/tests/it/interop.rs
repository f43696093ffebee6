//! Interoperability with independent implementations: DSSE envelopes against PyPI
//! `securesystemslib`, signed notes against a few lines of `cryptography`, canonical JSON
//! against `rfc8785`, and the documented third-party bundle verifier — in both directions.
//!
//! The Python interpreter comes from `DGC_TEST_PYTHON` (exported by `scripts/test`, which
//! installs `scripts/requirements-test.txt` into `$HOME/.cache/dgc/venv`). These tests fail,
//! never skip, when it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dgc_audit::checkpoint::open_checkpoint;
use dgc_audit::{
    Checkpoint, Envelope, KeyName, Signer, VerifierKey, build_bundle, canonical, sign_attestation,
};
use serde_json::{Value, json};

use crate::common::{Fixture, ORIGIN, statement};

fn python() -> PathBuf {
    match std::env::var_os("DGC_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "DGC_TEST_PYTHON is not set: run the test suite through scripts/test, which creates \
             $HOME/.cache/dgc/venv from scripts/requirements-test.txt and exports DGC_TEST_PYTHON"
        ),
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/py")
        .join(name)
}

/// Runs a Python script; `Ok(stdout JSON)` on success, `Err(stderr)` on a non-zero exit.
fn run_py(script_name: &str, args: &[&str]) -> Result<Value, String> {
    let py = python();
    let out = Command::new(&py)
        .arg(script(script_name))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run DGC_TEST_PYTHON={}: {e} (run the suite through scripts/test)",
                py.display()
            )
        });
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if stderr.contains("ModuleNotFoundError") {
        panic!(
            "{} lacks the test packages ({stderr}): run scripts/test, which installs \
             scripts/requirements-test.txt",
            py.display()
        );
    }
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{script_name} printed no JSON ({e}): {stderr}")))
    } else {
        Err(stderr)
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn dgc_envelopes_verify_with_securesystemslib() {
    let dir = tempfile::tempdir().unwrap();
    let inst = Signer::generate(KeyName::new(ORIGIN).unwrap());
    let agent = Signer::generate(dgc_audit::agent_key_name(inst.name(), "ag_1").unwrap());
    let st = statement("ag_1", agent.verifier(), 1);
    let env = sign_attestation(&st, &agent, &inst).unwrap();
    let path = write(dir.path(), "env.json", &env.to_json());
    let (a, i) = (agent.verifier().to_vkey(), inst.verifier().to_vkey());
    let out = run_py("interop.py", &["dsse-verify", &path, &a, &i]).unwrap();
    assert_eq!(out["payload_type"], "application/vnd.in-toto+json");
    assert_eq!(
        out["payload_sha256"],
        dgc_audit::hash::sha256(&env.payload).to_hex()
    );
    let mut accepted = vec![agent.key_id().to_string(), inst.key_id().to_string()];
    accepted.sort();
    assert_eq!(out["accepted"], json!(accepted));

    // The Python side really checks: an altered payload type fails there too.
    let mut v: Value = serde_json::from_slice(&env.to_json()).unwrap();
    v["payloadType"] = "application/json".into();
    let bad = write(dir.path(), "bad.json", &serde_json::to_vec(&v).unwrap());
    assert!(run_py("interop.py", &["dsse-verify", &bad, &a, &i]).is_err());
    // A key that did not sign is not accepted.
    let stranger = Signer::generate(KeyName::new("x").unwrap())
        .verifier()
        .to_vkey();
    assert!(run_py("interop.py", &["dsse-verify", &path, &a, &stranger]).is_err());
}

#[test]
fn securesystemslib_envelopes_verify_in_dgc() {
    let name = "dgc.local/py-signer";
    let out = run_py("interop.py", &["dsse-sign", name]).unwrap();
    let pub_bytes: [u8; 32] = hex::decode(out["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let vk = VerifierKey::from_public_bytes(KeyName::new(name).unwrap(), &pub_bytes).unwrap();
    // Both sides compute the same signed-note key ID.
    assert_eq!(out["key_id"], vk.key_id().to_string());
    let env_json = serde_json::to_vec(&out["envelope"]).unwrap();
    let env = Envelope::from_json(&env_json).unwrap();
    env.verify(&[&vk]).unwrap();
    let statement: Value = serde_json::from_slice(&env.payload).unwrap();
    assert_eq!(statement["predicate"]["signed_by"], "securesystemslib");
    let mut tampered = env;
    tampered.payload.push(b' ');
    assert!(tampered.verify(&[&vk]).is_err());
}

#[test]
fn dgc_checkpoints_verify_with_python_cryptography() {
    let fx = Fixture::build();
    let dir = tempfile::tempdir().unwrap();
    let note = &fx.checkpoints[2];
    let path = write(dir.path(), "cp.note", note.as_bytes());
    let vkey = fx.inst2.verifier().to_vkey();
    let out = run_py("interop.py", &["note-verify", &path, &vkey]).unwrap();
    assert_eq!(out["origin"], ORIGIN);
    assert_eq!(out["size"], 20);
    assert_eq!(
        out["root"],
        fx.log.root_at(&fx.store, 20).unwrap().to_base64()
    );
    // Python ignores unknown cosigners, as the spec requires, and checks the known one.
    let mut cosigned = dgc_audit::Note::parse(note.as_bytes()).unwrap();
    cosigned.sign(&Signer::generate(
        KeyName::new("witness.example/w1").unwrap(),
    ));
    let path2 = write(dir.path(), "cp2.note", cosigned.encode().as_bytes());
    assert!(run_py("interop.py", &["note-verify", &path2, &vkey]).is_ok());
    let tampered = note.replacen("\n20\n", "\n21\n", 1);
    let path3 = write(dir.path(), "cp3.note", tampered.as_bytes());
    assert!(run_py("interop.py", &["note-verify", &path3, &vkey]).is_err());
}

#[test]
fn python_signed_checkpoints_verify_in_dgc() {
    let dir = tempfile::tempdir().unwrap();
    let name = "example.com/python-log";
    let cp = Checkpoint::new(name, 12345, dgc_audit::hash::sha256(b"some root"));
    let text_path = write(dir.path(), "text", cp.to_text().unwrap().as_bytes());
    let out = run_py("interop.py", &["note-sign", name, &text_path]).unwrap();
    let vk = VerifierKey::parse(out["vkey"].as_str().unwrap()).unwrap();
    let note = out["note"].as_str().unwrap();
    let v = open_checkpoint(note.as_bytes(), name, std::slice::from_ref(&vk)).unwrap();
    assert_eq!(v.checkpoint, cp);
    assert_eq!(v.signers, vec![vk.clone()]);
    let tampered = note.replace("12345", "12346");
    assert!(open_checkpoint(tampered.as_bytes(), name, &[vk]).is_err());
}

/// A small deterministic generator, so a failure can be reproduced.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn canonical_json_matches_the_rfc8785_reference() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut values: Vec<Value> = Vec::new();
    for _ in 0..3000 {
        let f = f64::from_bits(rng.next());
        if f.is_finite() {
            values.push(json!(f));
        }
        // Also numbers of everyday magnitudes, where the layout rules switch.
        let exp = (rng.next() % 60) as i32 - 30;
        let g = (rng.next() % 1_000_000) as f64 * 10f64.powi(exp);
        values.push(json!(g));
    }
    for bits in [
        0x43143ff3c1cb0959u64,
        0x44b52d02c7e14af6,
        0x3eb0c6f7a0b5ed8d,
        1,
        0x7fefffffffffffff,
    ] {
        values.push(json!(f64::from_bits(bits)));
    }
    values.push(json!({
        "z": [1, -2, 9007199254740991i64, true, null, "\u{0}\u{1f}\"\\/\u{7f}\u{2028}é😀"],
        "\u{20ac}": {"b": 1.5, "a": -0.0},
        "\r": "cr", "1": "one", "\u{80}": "c1", "\u{fb33}": "dalet", "😀": "emoji", "": "empty",
    }));
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "values.json",
        &serde_json::to_vec(&values).unwrap(),
    );
    let out = run_py("interop.py", &["jcs", &path]).unwrap();
    let theirs = out.as_array().unwrap();
    assert_eq!(theirs.len(), values.len());
    let mut mismatches = Vec::new();
    for (v, t) in values.iter().zip(theirs) {
        let ours = canonical::value_to_vec(v).unwrap();
        let t = STANDARD.decode(t.as_str().unwrap()).unwrap();
        if ours != t {
            mismatches.push(format!(
                "{v}: dgc {} vs rfc8785 {}",
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&t)
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_documented_third_party_verifier_accepts_bundles_and_rejects_tampering() {
    let fx = Fixture::build();
    let dir = tempfile::tempdir().unwrap();
    let vkey = fx.inst2.verifier().to_vkey();
    for index in [3u64, 16, 18] {
        let bundle = build_bundle(
            &fx.log,
            &fx.store,
            &fx.attestation_ids[&index],
            &fx.envelopes[&index],
            index,
            &fx.checkpoints[2],
        )
        .unwrap();
        let path = write(dir.path(), "bundle.json", &bundle.to_json_pretty());
        let out = run_py("verify_bundle.py", &[&path, &vkey])
            .unwrap_or_else(|e| panic!("bundle {index} rejected by the Python verifier: {e}"));
        assert_eq!(out["log_index"], index);
        assert_eq!(out["agent"], "ag_1");
        assert_eq!(out["tree_size"], 20);
    }
    let good = build_bundle(
        &fx.log,
        &fx.store,
        &fx.attestation_ids[&7],
        &fx.envelopes[&7],
        7,
        &fx.checkpoints[2],
    )
    .unwrap();
    let mut wrong_env = good.clone();
    wrong_env.envelope = fx.envelopes[&9].clone();
    let mut wrong_index = good.clone();
    wrong_index.log_index = 8;
    let mut bad_sig = good.clone();
    bad_sig.envelope.signatures[0].sig[0] ^= 1;
    for (what, b) in [
        ("envelope", wrong_env),
        ("index", wrong_index),
        ("signature", bad_sig),
    ] {
        let path = write(dir.path(), "bad.json", &b.to_json_pretty());
        assert!(
            run_py("verify_bundle.py", &[&path, &vkey]).is_err(),
            "the Python verifier accepted a bundle with a changed {what}"
        );
    }
    let other = Signer::generate(KeyName::new(ORIGIN).unwrap())
        .verifier()
        .to_vkey();
    let path = write(dir.path(), "good.json", &good.to_json_pretty());
    assert!(run_py("verify_bundle.py", &[&path, &other]).is_err());
}

#[test]
fn docs_show_the_tested_verifier_script() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/audit.md");
    let docs = std::fs::read_to_string(&docs).unwrap();
    let script = std::fs::read_to_string(script("verify_bundle.py")).unwrap();
    assert!(
        docs.contains(&format!("```python\n{script}```")),
        "docs/audit.md must embed tests/it/py/verify_bundle.py verbatim in a ```python block"
    );
}

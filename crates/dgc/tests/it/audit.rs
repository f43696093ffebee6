//! `dgc audit verify` on real data directories: a clean log verifies (offline and remotely), and
//! every kind of tampering is caught and located.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Server;

struct Fixture {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    witness: PathBuf,
}

/// A data directory with a populated, checkpointed and witnessed audit log (server stopped).
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let witness = tmp.path().join("witness");
    let s = Server::start(
        &data,
        &[
            "--witness-dir",
            witness.to_str().unwrap(),
            "--checkpoint-interval",
            "100ms",
        ],
    );
    let agent = s.cli(&["agent", "create", "a"]).ok().to_string();
    for i in 0..5 {
        s.cli(&["memory", "add", &agent, &format!("note {i}")]).ok();
    }
    s.cli(&["audit", "checkpoint"]).ok();
    let key = s
        .cli(&["auth", "issue", "--capabilities", "memory.read"])
        .ok()
        .to_string();
    assert!(key.starts_with("dgc_sk_"));
    for i in 5..8 {
        s.cli(&["memory", "add", &agent, &format!("note {i}")]).ok();
    }
    s.cli(&["audit", "checkpoint"]).ok();
    // The remote verifier sees the same log.
    let remote = s.cli(&["audit", "verify", "--witness", witness.to_str().unwrap()]);
    assert!(remote.ok().contains("verified"), "{remote:?}");
    assert_eq!(s.stop("TERM").0, 0);
    Fixture {
        _tmp: tmp,
        data,
        witness,
    }
}

/// A fresh copy of the data directory for one tamper case.
fn copy(f: &Fixture) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("data");
    std::fs::create_dir(&d).unwrap();
    for name in ["dgc.db", "master.key"] {
        std::fs::copy(f.data.join(name), d.join(name)).unwrap();
    }
    (t, d)
}

fn verify(data: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(crate::BIN)
        .args(["audit", "verify", "--data-dir", data.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn sql(data: &Path, stmt: &str) {
    let c = rusqlite::Connection::open(data.join("dgc.db")).unwrap();
    c.execute_batch(stmt).unwrap();
}

#[track_caller]
fn assert_fails(data: &Path, extra: &[&str], needle: &str) {
    let (code, out, err) = verify(data, extra);
    assert_eq!(
        code, 1,
        "verification should fail\nstdout: {out}\nstderr: {err}"
    );
    assert!(
        err.contains("FAILED") && err.contains(needle),
        "expected `{needle}` in: {err}"
    );
}

#[test]
fn tampering_is_detected_and_located() {
    let f = fixture();
    let w = f.witness.to_str().unwrap();

    // Clean: verifies offline, against the witness too.
    let (code, out, err) = verify(&f.data, &["--witness", w]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("verified") && out.contains("witnessed"),
        "{out}"
    );
    let witnessed = std::fs::read_dir(&f.witness).unwrap().count();
    assert!(
        witnessed >= 2,
        "checkpoints were published to the witness dir ({witnessed})"
    );

    // Changed bytes in one record.
    let (_t, d) = copy(&f);
    sql(
        &d,
        "UPDATE audit_records SET bytes = CAST(replace(CAST(bytes AS TEXT), 'a', 'b') AS BLOB) WHERE idx = 3",
    );
    assert_fails(&d, &[], "record 3");

    // A deleted record.
    let (_t, d) = copy(&f);
    sql(&d, "DELETE FROM audit_records WHERE idx = 4");
    assert_fails(&d, &[], "record 4");

    // Two records swapped.
    let (_t, d) = copy(&f);
    sql(
        &d,
        "UPDATE audit_records SET idx = -1 WHERE idx = 2; UPDATE audit_records SET idx = 2 WHERE idx = 5; UPDATE audit_records SET idx = 5 WHERE idx = -1;",
    );
    assert_fails(&d, &[], "record 2");

    // Truncated: the last records gone, stored checkpoints still vouch for them.
    let (_t, d) = copy(&f);
    sql(
        &d,
        "DELETE FROM audit_records WHERE idx >= (SELECT MAX(idx) - 2 FROM audit_records)",
    );
    assert_fails(&d, &[], "checkpoint");

    // A checkpoint replaced by one signed with another key.
    let (_t, d) = copy(&f);
    let c = rusqlite::Connection::open(d.join("dgc.db")).unwrap();
    let (size, note): (i64, String) = c
        .query_row(
            "SELECT size, note FROM audit_checkpoints ORDER BY size LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let (_, cp) = dgc_audit::checkpoint::parse_unverified(note.as_bytes()).unwrap();
    let forger = dgc_audit::Signer::generate(dgc_audit::KeyName::new(cp.origin.clone()).unwrap());
    let forged = cp.sign(&forger).unwrap();
    c.execute(
        "UPDATE audit_checkpoints SET note = ?1 WHERE size = ?2",
        rusqlite::params![forged, size],
    )
    .unwrap();
    drop(c);
    assert_fails(&d, &[], "checkpoint");

    // Rolled back: the last records and every checkpoint that covered them removed. The database
    // alone is now self-consistent; only the witness can tell.
    let (_t, d) = copy(&f);
    sql(
        &d,
        "DELETE FROM audit_records WHERE idx >= 6; DELETE FROM audit_checkpoints WHERE size > 6;",
    );
    let (code, out, _) = verify(&d, &[]);
    assert_eq!(code, 0, "a rolled-back log is internally consistent: {out}");
    assert_fails(&d, &["--witness", w], "");

    // Pinning a different instance key: nothing verifies.
    let other =
        dgc_audit::Signer::generate(dgc_audit::KeyName::new("dgc.local/someone-else").unwrap());
    let (_t, d) = copy(&f);
    assert_fails(&d, &["--vkey", &other.verifier().to_vkey()], "");
}

/// Builds an attestation bundle the way the server will (agent + instance signatures, recorded in
/// the log, proven against a signed checkpoint).
fn bundle() -> (String, String) {
    use dgc_audit::*;
    let origin = KeyName::new("dgc.local/inst-test").unwrap();
    let inst = Signer::generate(origin.clone());
    let agent = Signer::generate(agent_key_name(&origin, "ag_1").unwrap());
    let log = Log::new(origin);
    let mut store = MemoryStorage::new();
    log.init(
        &mut store,
        "inst-test",
        &inst,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let added = Entry::AgentKeyAdded(entry::AgentKeyAdded {
        agent_id: "ag_1".into(),
        key: agent.verifier().clone(),
    });
    log.append(
        &mut store,
        &inst,
        vec![PendingRecord::new(added, time::OffsetDateTime::now_utc()).with_cosigner(&agent)],
    )
    .unwrap();
    let st = Statement::new(
        vec![
            ResourceDescriptor::sha256_of("input", b"{}"),
            ResourceDescriptor::sha256_of("output", b"ok"),
        ],
        ActionPredicate {
            instance_id: "inst-test".into(),
            agent: AgentRef {
                id: "ag_1".into(),
                key_id: agent.key_id().to_string(),
            },
            action: ActionRef {
                kind: entry::AttestationSubject::ToolCall,
                task_id: None,
                step: None,
                tool: Some("fs.read".into()),
                outcome: Some("succeeded".into()),
            },
            request_id: Some("req-1".into()),
            gate_decisions: serde_json::json!([]),
            sandbox_profile: serde_json::json!({"tier": "process"}),
            timings: Timings {
                started_at: "2026-11-25T00:00:00Z".into(),
                finished_at: "2026-11-25T00:00:00.010Z".into(),
                duration_ms: 10,
            },
            model_calls: vec![],
        },
    );
    let env = sign_attestation(&st, &agent, &inst).unwrap();
    let e = attestation_entry("att_1", &st, &env, agent.verifier(), inst.verifier());
    let a = log
        .append(
            &mut store,
            &inst,
            vec![PendingRecord::new(
                Entry::Attestation(Box::new(e)),
                time::OffsetDateTime::now_utc(),
            )],
        )
        .unwrap();
    let cp = log.checkpoint(&store, &inst).unwrap();
    let b = build_bundle(&log, &store, "att_1", &env, a.first_index, &cp.note).unwrap();
    (
        String::from_utf8(b.to_json_pretty()).unwrap(),
        inst.verifier().to_vkey(),
    )
}

#[test]
fn verify_bundle_works_offline_and_rejects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let (json, vkey) = bundle();
    let path = dir.path().join("bundle.json");
    std::fs::write(&path, &json).unwrap();
    let run = |p: &Path, vkey: &str| {
        let out = Command::new(crate::BIN)
            .args([
                "audit",
                "verify-bundle",
                p.to_str().unwrap(),
                "--vkey",
                vkey,
            ])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = run(&path, &vkey);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("attestation att_1 verified"), "{out}");
    // A different key: refused.
    let other =
        dgc_audit::Signer::generate(dgc_audit::KeyName::new("dgc.local/inst-test").unwrap())
            .verifier()
            .to_vkey();
    let (code, _, err) = run(&path, &other);
    assert_eq!(code, 1);
    assert!(err.contains("FAILED"), "{err}");
    // A changed statement: refused.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let payload = v["envelope"]["payload"].as_str().unwrap().to_string();
    v["envelope"]["payload"] = serde_json::Value::String(payload.replacen('A', "B", 1));
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, v.to_string()).unwrap();
    let (code, _, err) = run(&tampered, &vkey);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("FAILED"), "{err}");
}

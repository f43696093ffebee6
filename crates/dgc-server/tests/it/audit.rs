//! The audit log through the API: every mutation leaves a signed record, the log verifies offline
//! from what the API serves, proofs check against signed checkpoints, and a failed append means
//! the action did not happen.

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;

use crate::{TestApp, assert_error};

fn b64(s: &serde_json::Value) -> Vec<u8> {
    B64.decode(s.as_str().unwrap()).unwrap()
}

async fn populate(t: &TestApp) {
    let a = t.agent("audited").await;
    let m = t.memory(&a, "remember the audit").await;
    t.memory(&a, "and this").await;
    assert_eq!(
        t.delete(&format!("/v1/agents/{a}/memory/{m}"), &t.admin)
            .await
            .status,
        StatusCode::OK
    );
    let k = t
        .post(
            "/v1/keys",
            &t.admin,
            json!({"capabilities": ["audit.read"]}),
        )
        .await;
    let kid = k.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        t.delete(&format!("/v1/keys/{kid}"), &t.admin).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn every_mutation_is_recorded_and_the_log_verifies_offline() {
    let t = TestApp::new().await;
    populate(&t).await;
    let keys = t.get("/v1/audit/keys", &t.admin).await;
    assert_eq!(keys.status, StatusCode::OK, "{keys:?}");
    let inst = &keys.body["keys"][0];
    assert!(
        inst["name"]
            .as_str()
            .unwrap()
            .starts_with("dgc.local/inst_")
    );
    assert_eq!(inst["algorithm"], "ed25519");
    assert_eq!(b64(&inst["public_key"]).len(), 32);
    let vkey = dgc_audit::VerifierKey::parse(inst["vkey"].as_str().unwrap()).unwrap();
    assert_eq!(
        keys.body["keys"].as_array().unwrap().len(),
        2,
        "instance + one agent"
    );

    let cp = t.get("/v1/audit/checkpoint", &t.admin).await;
    assert_eq!(cp.status, StatusCode::OK);
    assert!(
        cp.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let opened = dgc_audit::open_checkpoint(
        cp.text.as_bytes(),
        vkey.name().as_str(),
        std::slice::from_ref(&vkey),
    )
    .unwrap();
    let size = opened.checkpoint.size;

    let recs = t.get("/v1/audit/records?limit=10000", &t.admin).await;
    let leaves: Vec<_> = recs.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            Ok::<_, dgc_audit::StorageError>(dgc_audit::LogLeaf::new(
                r["index"].as_u64().unwrap(),
                b64(&r["record"]),
            ))
        })
        .collect();
    assert_eq!(leaves.len() as u64, size);
    let stored = t.get("/v1/audit/checkpoints", &t.admin).await;
    let notes: Vec<Vec<u8>> = stored.body["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["note"].as_str().unwrap().as_bytes().to_vec())
        .collect();
    assert_eq!(notes.len(), 1);
    let report = dgc_audit::verify_log(
        leaves,
        notes,
        dgc_audit::VerifyOptions::new(vkey.name().clone(), vec![vkey.clone()]),
    )
    .unwrap();
    assert_eq!(report.size, size);
    assert_eq!(report.root, opened.checkpoint.root);
    let e = &report.entries;
    assert_eq!(e.get("log_init"), Some(&1));
    assert_eq!(
        e.get("api_key_issued"),
        Some(&2),
        "bootstrap admin key and the new key: {e:?}"
    );
    assert_eq!(e.get("api_key_revoked"), Some(&1));
    assert_eq!(e.get("agent_key_added"), Some(&1));
    assert_eq!(e.get("memory_write"), Some(&3), "two creates and a delete");

    // Proofs against signed checkpoints.
    let a2 = t.agent("later").await;
    t.memory(&a2, "grows the tree").await;
    let cp2 = t.get("/v1/audit/checkpoint", &t.admin).await;
    let opened2 = dgc_audit::open_checkpoint(
        cp2.text.as_bytes(),
        vkey.name().as_str(),
        std::slice::from_ref(&vkey),
    )
    .unwrap();
    let size2 = opened2.checkpoint.size;
    assert!(size2 > size);
    let c = t
        .get(
            &format!("/v1/audit/proof/consistency?from={size}&to={size2}"),
            &t.admin,
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{c:?}");
    let proof: Vec<Vec<u8>> = c.body["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(b64)
        .collect();
    dgc_audit::verify_consistency(
        size,
        size2,
        &proof,
        &opened.checkpoint.root.0,
        &opened2.checkpoint.root.0,
    )
    .unwrap();
    let i = t
        .get(
            &format!("/v1/audit/proof/inclusion?index=3&size={size2}"),
            &t.admin,
        )
        .await;
    let proof: Vec<Vec<u8>> = i.body["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(b64)
        .collect();
    dgc_audit::verify_inclusion(
        3,
        size2,
        &b64(&i.body["leaf_hash"]),
        &proof,
        &opened2.checkpoint.root.0,
    )
    .unwrap();

    // Bad proof requests are 400s.
    for bad in [
        "/v1/audit/proof/consistency?from=0&to=2",
        "/v1/audit/proof/consistency?from=5&to=2",
        "/v1/audit/proof/consistency?from=1&to=999999",
        "/v1/audit/proof/inclusion?index=999999",
        "/v1/audit/records?limit=0",
        "/v1/audit/proof/consistency?from=x&to=1",
    ] {
        assert_error(
            &t.get(bad, &t.admin).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
    }
}

#[tokio::test]
async fn audit_endpoints_need_audit_read() {
    let t = TestApp::new().await;
    let k = t.key(json!({"capabilities": ["agents.read"]})).await;
    for path in [
        "/v1/audit/checkpoint",
        "/v1/audit/keys",
        "/v1/audit/records",
        "/v1/audit/checkpoints",
    ] {
        assert_error(&t.get(path, &k).await, StatusCode::FORBIDDEN, "forbidden");
    }
    let r = t.key(json!({"capabilities": ["audit.read"]})).await;
    assert_eq!(
        t.get("/v1/audit/checkpoint", &r).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_failed_audit_append_means_the_action_did_not_happen() {
    let t = TestApp::new().await;
    let a = t.agent("a").await;
    let before = t.get("/v1/audit/records?limit=10000", &t.admin).await.body["size"].clone();
    // Swap in a signer that is not this log's instance key: every append now fails.
    let origin = t.state.instance().audit.origin.clone();
    let wrong = dgc_audit::Signer::generate(dgc_audit::KeyName::new("intruder").unwrap());
    t.state.store().set_auditor(dgc_store::Auditor {
        log: dgc_audit::Log::new(origin),
        signer: wrong,
    });
    let r = t
        .post(
            &format!("/v1/agents/{a}/memory"),
            &t.admin,
            json!({"content": "unrecordable"}),
        )
        .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not performed")
    );
    assert_error(
        &t.post(
            "/v1/keys",
            &t.admin,
            json!({"capabilities": ["agents.read"]}),
        )
        .await,
        StatusCode::SERVICE_UNAVAILABLE,
        "audit_unavailable",
    );
    assert_error(
        &t.post("/v1/agents", &t.admin, json!({"name": "x"})).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "audit_unavailable",
    );
    // Nothing was stored, and the log did not grow.
    t.state
        .store()
        .set_auditor(t.state.instance().audit.auditor());
    assert!(
        t.get(&format!("/v1/agents/{a}/memory"), &t.admin)
            .await
            .body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        t.get("/v1/agents", &t.admin).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        t.get("/v1/audit/records?limit=10000", &t.admin).await.body["size"],
        before
    );
    // Recovered: writes work again.
    assert_eq!(
        t.post(
            &format!("/v1/agents/{a}/memory"),
            &t.admin,
            json!({"content": "ok now"})
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let _ = Method::GET;
}

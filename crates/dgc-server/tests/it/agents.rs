//! Agents: create, list with cursors, read, merge-patch, delete.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::{TestApp, assert_error};

#[tokio::test]
async fn create_read_and_snapshot() {
    let t = TestApp::new().await;
    let r = t
        .post(
            "/v1/agents",
            &t.admin,
            json!({"name": "researcher", "description": "reads papers", "config": {
                "model": {"route": "default"},
                "tools": {"allow": ["fs.*", "http.fetch"], "deny": ["shell.*"]},
                "capabilities": ["fs.read", "net.http"],
                "sandbox": {"memory": "256M", "timeout": "30s", "egress": ["*.arxiv.org", "example.com:443"]},
                "skills": ["research"]
            }}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(r.headers["location"], format!("/v1/agents/{id}").as_str());
    assert_eq!(
        r.body["public_key"].as_str().unwrap().len(),
        44,
        "base64 of 32 bytes"
    );
    insta::assert_json_snapshot!("create_agent", r.body, {
        ".id" => "[agent_id]", ".public_key" => "[pubkey]", ".created_at" => "[ts]", ".updated_at" => "[ts]"
    });
    let got = t.get(&format!("/v1/agents/{id}"), &t.admin).await;
    assert_eq!(got.body, r.body);
    let skilled = t.get("/v1/agents?skill=research", &t.admin).await;
    assert_eq!(skilled.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn list_pages_with_cursor() {
    let t = TestApp::new().await;
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(t.agent(&format!("a{i}")).await);
    }
    let mut seen = vec![];
    let mut path = "/v1/agents?limit=2".to_string();
    loop {
        let r = t.get(&path, &t.admin).await;
        assert_eq!(r.status, StatusCode::OK);
        for a in r.body["data"].as_array().unwrap() {
            seen.push(a["id"].as_str().unwrap().to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/agents?limit=2&after={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    assert_error(
        &t.get("/v1/agents?limit=0", &t.admin).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(
        &t.get("/v1/agents?limit=9999", &t.admin).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(
        &t.get("/v1/agents?limit=abc", &t.admin).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(
        &t.get("/v1/agents?after=garbage", &t.admin).await,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    );
}

#[tokio::test]
async fn patch_merges_validates_and_keeps_state_on_error() {
    let t = TestApp::new().await;
    let id = t.agent("before").await;
    let path = format!("/v1/agents/{id}");
    let r = t
        .call(Method::PATCH, &path, Some(&t.admin), Some(json!({"name": "after", "config": {"sandbox": {"pids": 32}, "autonomy": "supervised"}})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["name"], "after");
    assert_eq!(r.body["config"]["sandbox"]["pids"], 32);
    assert_eq!(
        r.body["config"]["sandbox"]["memory"],
        512 << 20,
        "untouched fields keep their values"
    );
    assert_eq!(r.body["config"]["autonomy"], "supervised");
    // null removes (back to default).
    let r = t
        .call(
            Method::PATCH,
            &path,
            Some(&t.admin),
            Some(json!({"config": {"sandbox": {"pids": null}}})),
        )
        .await;
    assert_eq!(r.body["config"]["sandbox"]["pids"], 128);
    // Invalid values and unknown fields: 422 naming the field; nothing changes.
    let r = t
        .call(
            Method::PATCH,
            &path,
            Some(&t.admin),
            Some(json!({"config": {"sandbox": {"cpu": 1000}}})),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("config.sandbox.cpu")
    );
    let r = t
        .call(
            Method::PATCH,
            &path,
            Some(&t.admin),
            Some(json!({"id": "ag_x"})),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = t
        .call(
            Method::PATCH,
            &path,
            Some(&t.admin),
            Some(json!({"config": {"sandbox": {"egress": ["*"]}}})),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("config.sandbox.egress"),
        "{r:?}"
    );
    let r = t
        .call(
            Method::PATCH,
            &path,
            Some(&t.admin),
            Some(json!(["not", "an", "object"])),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let now = t.get(&path, &t.admin).await;
    assert_eq!(now.body["name"], "after");
    assert_eq!(now.body["config"]["autonomy"], "supervised");
    assert_error(
        &t.call(
            Method::PATCH,
            "/v1/agents/ag_01jd8x7k3m9q2w5e6r7t8y9v0a",
            Some(&t.admin),
            Some(json!({})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn delete_removes_agent_and_memories() {
    let t = TestApp::new().await;
    let a = t.agent("a").await;
    let keep = t.agent("keep").await;
    for i in 0..3 {
        t.memory(&a, &format!("note {i}")).await;
    }
    let kept = t.memory(&keep, "survivor").await;
    let r = t.delete(&format!("/v1/agents/{a}"), &t.admin).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["memories_deleted"], 3);
    assert_error(
        &t.get(&format!("/v1/agents/{a}"), &t.admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &t.get(&format!("/v1/agents/{a}/memory"), &t.admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &t.delete(&format!("/v1/agents/{a}"), &t.admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(
        t.get(&format!("/v1/agents/{keep}/memory/{kept}"), &t.admin)
            .await
            .status,
        StatusCode::OK
    );
    let m = t.call(Method::GET, "/metrics", None, None).await;
    assert!(m.text.contains("dgc_memories 1"), "gauge follows deletes");
}

#[tokio::test]
async fn agent_validation_errors_name_the_field() {
    let t = TestApp::new().await;
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "a".repeat(200)}), "name"),
        (
            json!({"name": "x", "config": {"tools": {"allow": ["bad glob!"]}}}),
            "config.tools.allow[0]",
        ),
        (
            json!({"name": "x", "config": {"capabilities": ["NOPE"]}}),
            "config.capabilities",
        ),
        (
            json!({"name": "x", "config": {"sandbox": {"memory": "1K"}}}),
            "config.sandbox.memory",
        ),
        (
            json!({"name": "x", "config": {"sandbox": {"timeout": "forever"}}}),
            "config.sandbox.timeout",
        ),
        (
            json!({"name": "x", "config": {"sandbox": {"tier": "vm"}}}),
            "config.sandbox.tier",
        ),
        (
            json!({"name": "x", "config": {"sandbox": {"egress": ["bad host"]}}}),
            "config.sandbox.egress",
        ),
        (
            json!({"name": "x", "config": {"autonomy": "yolo"}}),
            "config.autonomy",
        ),
        (
            json!({"name": "x", "config": {"memory": {"retrieve_top_k": 1000}}}),
            "config.memory.retrieve_top_k",
        ),
        (
            json!({"name": "x", "config": {"gates": "not an object"}}),
            "config.gates",
        ),
        (json!({"name": 5}), "name"),
    ] {
        let r = t.post("/v1/agents", &t.admin, body.clone()).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(field), "{body} → {msg}");
    }
    assert_eq!(
        t.get("/v1/agents", &t.admin).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "nothing created"
    );
}

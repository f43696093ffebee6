//! Keys and capabilities: 401 vs 403, narrowing, minting rules, scoping, revocation.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::{TestApp, assert_error};

#[tokio::test]
async fn missing_malformed_unknown_keys_are_401() {
    let t = TestApp::new().await;
    assert_error(
        &t.call(Method::GET, "/v1/agents", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &t.get("/v1/agents", "nonsense").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let unknown = format!("dgc_sk_{}", "A".repeat(43));
    assert_error(
        &t.get("/v1/agents", &unknown).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let basic = Request::builder()
        .uri("/v1/agents")
        .header("authorization", "Basic Zm9vOmJhcg==")
        .body(Body::empty())
        .unwrap();
    assert_error(
        &t.raw(basic).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // Non-ASCII garbage in the header.
    let weird = Request::builder()
        .uri("/v1/agents")
        .header("authorization", &b"Bearer \xff\xfe"[..])
        .body(Body::empty())
        .unwrap();
    assert_error(
        &t.raw(weird).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // The admin key works.
    assert_eq!(t.get("/v1/agents", &t.admin).await.status, StatusCode::OK);
}

#[tokio::test]
async fn capability_missing_is_403_and_narrowing_cannot_widen() {
    let t = TestApp::new().await;
    let agent = t.agent("a").await;
    let reader = t
        .key(json!({"capabilities": ["memory.read", "agents.read"]}))
        .await;
    let r = t
        .post(
            &format!("/v1/agents/{agent}/memory"),
            &reader,
            json!({"content": "x"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("memory.write")
    );
    assert_eq!(
        t.get(&format!("/v1/agents/{agent}/memory"), &reader)
            .await
            .status,
        StatusCode::OK
    );

    // Narrowing to a capability the key lacks is 403.
    let widen = Request::builder()
        .uri("/v1/agents")
        .header("authorization", format!("Bearer {reader}"))
        .header("x-dgc-capability", "agents.read,memory.write")
        .body(Body::empty())
        .unwrap();
    let r = t.raw(widen).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("memory.write")
    );

    // Narrowing the admin key to memory.read removes agents.manage for this request only.
    let narrowed = Request::builder()
        .method(Method::POST)
        .uri("/v1/agents")
        .header("authorization", format!("Bearer {}", t.admin))
        .header("x-dgc-capability", "memory.read")
        .body(Body::from(r#"{"name":"n"}"#))
        .unwrap();
    assert_error(&t.raw(narrowed).await, StatusCode::FORBIDDEN, "forbidden");
    let bad_header = Request::builder()
        .uri("/v1/agents")
        .header("authorization", format!("Bearer {}", t.admin))
        .header("x-dgc-capability", "Not A Capability")
        .body(Body::empty())
        .unwrap();
    assert_error(
        &t.raw(bad_header).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_eq!(
        t.post("/v1/agents", &t.admin, json!({"name": "ok"}))
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn minting_only_narrows() {
    let t = TestApp::new().await;
    let parent = t
        .key(json!({"capabilities": ["keys.manage", "memory.*"], "expires_in": "1h"}))
        .await;
    // Subset: fine, and inherits the expiry when none is given.
    let r = t
        .post(
            "/v1/keys",
            &parent,
            json!({"capabilities": ["memory.read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert!(
        r.body["expires_at"].is_string(),
        "inherits the parent's expiry"
    );
    assert_eq!(r.body["parent_id"].as_str().unwrap().len(), 30);
    // Wider capability: 403.
    let r = t
        .post(
            "/v1/keys",
            &parent,
            json!({"capabilities": ["memory.read", "agents.manage"]}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("agents.manage")
    );
    let r = t
        .post("/v1/keys", &parent, json!({"capabilities": ["*"]}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    // Later expiry: 403.
    let r = t
        .post(
            "/v1/keys",
            &parent,
            json!({"capabilities": ["memory.read"], "expires_in": "2h"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    // Bad input: 422 / 400.
    assert_error(
        &t.post("/v1/keys", &parent, json!({"capabilities": []}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &t.post("/v1/keys", &parent, json!({"capabilities": ["Bad Cap"]}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &t.post(
            "/v1/keys",
            &parent,
            json!({"capabilities": ["memory.read"], "expires_in": "soon"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &t.post(
            "/v1/keys",
            &parent,
            json!({"capabilities": ["memory.read"], "expires_in": 0}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    // A key without keys.manage cannot mint at all.
    let plain = t.key(json!({"capabilities": ["memory.read"]})).await;
    assert_error(
        &t.post("/v1/keys", &plain, json!({"capabilities": ["memory.read"]}))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
}

#[tokio::test]
async fn expired_key_is_401() {
    let t = TestApp::new().await;
    let k = t
        .key(json!({"capabilities": ["agents.read"], "expires_in": 1}))
        .await;
    assert_eq!(t.get("/v1/agents", &k).await.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = t.get("/v1/agents", &k).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn revocation_takes_effect_on_the_next_request_and_cascades() {
    let t = TestApp::new().await;
    let parent = t
        .post(
            "/v1/keys",
            &t.admin,
            json!({"capabilities": ["keys.manage", "agents.read"]}),
        )
        .await;
    let (parent_id, parent_key) = (
        parent.body["id"].as_str().unwrap().to_string(),
        parent.body["key"].as_str().unwrap().to_string(),
    );
    let child = t
        .post(
            "/v1/keys",
            &parent_key,
            json!({"capabilities": ["agents.read"]}),
        )
        .await;
    let child_key = child.body["key"].as_str().unwrap().to_string();
    // Warm the cache.
    assert_eq!(t.get("/v1/agents", &child_key).await.status, StatusCode::OK);
    assert_eq!(
        t.get("/v1/agents", &parent_key).await.status,
        StatusCode::OK
    );
    let r = t.delete(&format!("/v1/keys/{parent_id}"), &t.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["revoked"].as_array().unwrap().len(), 2);
    for k in [&parent_key, &child_key] {
        let r = t.get("/v1/agents", k).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("revoked")
        );
    }
    // Unknown and malformed ids.
    assert_error(
        &t.delete("/v1/keys/key_01jd8x7k3m9q2w5e6r7t8y9v0a", &t.admin)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &t.delete("/v1/keys/nope", &t.admin).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
}

#[tokio::test]
async fn non_admin_sees_and_revokes_only_its_own_keys() {
    let t = TestApp::new().await;
    let a = t
        .key(json!({"capabilities": ["keys.manage", "memory.read"], "name": "a"}))
        .await;
    let b = t
        .post(
            "/v1/keys",
            &t.admin,
            json!({"capabilities": ["keys.manage"], "name": "b"}),
        )
        .await;
    let b_id = b.body["id"].as_str().unwrap().to_string();
    let a_child = t
        .post(
            "/v1/keys",
            &a,
            json!({"capabilities": ["memory.read"], "name": "a-child"}),
        )
        .await;
    assert_eq!(a_child.status, StatusCode::CREATED);
    let list = t.get("/v1/keys", &a).await;
    let names: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "a-child"]);
    assert!(
        list.text.find("dgc_sk_").is_none(),
        "listing never shows secrets"
    );
    // a cannot revoke b (and cannot learn it exists).
    assert_error(
        &t.delete(&format!("/v1/keys/{b_id}"), &a).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let all = t.get("/v1/keys?limit=500", &t.admin).await;
    assert_eq!(
        all.body["data"].as_array().unwrap().len(),
        4,
        "admin sees every key"
    );
}

#[tokio::test]
async fn agent_scoped_key_sees_only_its_agents() {
    let t = TestApp::new().await;
    let a = t.agent("a").await;
    let b = t.agent("b").await;
    let mb = t.memory(&b, "b's private note").await;
    let k = t.key(json!({"capabilities": ["agents.read", "memory.*", "agents.manage", "keys.manage"], "agent_ids": [a]})).await;
    assert_eq!(
        t.get(&format!("/v1/agents/{a}"), &k).await.status,
        StatusCode::OK
    );
    for path in [
        format!("/v1/agents/{b}"),
        format!("/v1/agents/{b}/memory"),
        format!("/v1/agents/{b}/memory/{mb}"),
        format!("/v1/agents/{b}/memory?q=private"),
    ] {
        let r = t.get(&path, &k).await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
        let missing = t
            .get(&path.replace(&b, "ag_01jd8x7k3m9q2w5e6r7t8y9v0a"), &t.admin)
            .await;
        assert_eq!(
            r.body["error"]["message"], missing.body["error"]["message"],
            "same answer as a missing agent"
        );
    }
    assert_error(
        &t.post(
            &format!("/v1/agents/{b}/memory"),
            &k,
            json!({"content": "x"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &t.delete(&format!("/v1/agents/{b}"), &k).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let list = t.get("/v1/agents", &k).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["data"][0]["id"], a.as_str());
    // Scoped keys cannot create agents, nor mint keys for agents outside their scope.
    assert_error(
        &t.post("/v1/agents", &k, json!({"name": "c"})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &t.post(
            "/v1/keys",
            &k,
            json!({"capabilities": ["agents.read"], "agent_ids": [b]}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let child = t
        .post("/v1/keys", &k, json!({"capabilities": ["agents.read"]}))
        .await;
    assert_eq!(
        child.body["agent_ids"],
        json!([a]),
        "children inherit the scope"
    );
    // b is untouched.
    assert_eq!(
        t.get(&format!("/v1/agents/{b}/memory/{mb}"), &t.admin)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn keys_for_missing_agents_are_rejected() {
    let t = TestApp::new().await;
    let r = t.post("/v1/keys", &t.admin, json!({"capabilities": ["agents.read"], "agent_ids": ["ag_01jd8x7k3m9q2w5e6r7t8y9v0a"]})).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("agent_ids[0]")
    );
}

#[tokio::test]
async fn key_responses_snapshot() {
    let t = TestApp::new().await;
    let r = t
        .post(
            "/v1/keys",
            &t.admin,
            json!({"capabilities": ["memory.*", "agents.read"], "expires_in": "24h", "name": "ci"}),
        )
        .await;
    assert!(r.body["key"].as_str().unwrap().starts_with("dgc_sk_"));
    insta::assert_json_snapshot!("create_key", r.body, {
        ".id" => "[key_id]", ".parent_id" => "[key_id]", ".key" => "[secret]",
        ".created_at" => "[ts]", ".expires_at" => "[ts]"
    });
}

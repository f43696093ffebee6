//! Memories: store, list, search, links and reflections, limits.

use axum::http::StatusCode;
use serde_json::json;

use crate::{TestApp, assert_error};

#[tokio::test]
async fn store_search_show_delete() {
    let t = TestApp::new().await;
    let a = t.agent("a").await;
    let base = format!("/v1/agents/{a}/memory");
    let m1 = t.post(&base, &t.admin, json!({"content": "The deploy failed at 3am: bad config in prod", "kind": "episodic", "tags": ["ops"], "metadata": {"ticket": 42}})).await;
    assert_eq!(m1.status, StatusCode::CREATED, "{m1:?}");
    insta::assert_json_snapshot!("create_memory", m1.body, {
        ".id" => "[memory_id]", ".agent_id" => "[agent_id]", ".created_at" => "[ts]"
    });
    let id1 = m1.body["id"].as_str().unwrap().to_string();
    let id2 = t.memory(&a, "Kubernetes upgrade went fine").await;
    let refl = t.post(&base, &t.admin, json!({"content": "Night deploys fail more often", "kind": "reflection", "links": [id1, id2]})).await;
    assert_eq!(refl.status, StatusCode::CREATED, "{refl:?}");
    let rid = refl.body["id"].as_str().unwrap().to_string();

    let s = t.get(&format!("{base}?q=deploy+config"), &t.admin).await;
    assert_eq!(s.status, StatusCode::OK);
    let hits = s.body["data"].as_array().unwrap();
    assert_eq!(hits[0]["id"], id1.as_str(), "both terms rank first");
    assert!(hits.iter().all(|h| h["score"].is_number()));

    let shown = t.get(&format!("{base}/{id1}"), &t.admin).await;
    assert_eq!(shown.body["linked_from"], json!([rid]));
    assert_eq!(shown.body["metadata"]["ticket"], 42);

    let listed = t.get(&format!("{base}?kind=reflection"), &t.admin).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    let tagged = t.get(&format!("{base}?tag=ops"), &t.admin).await;
    assert_eq!(tagged.body["data"].as_array().unwrap().len(), 1);
    assert!(
        tagged.body["data"][0].get("score").is_none(),
        "no score without q"
    );

    assert_eq!(
        t.delete(&format!("{base}/{id2}"), &t.admin).await.status,
        StatusCode::OK
    );
    assert_error(
        &t.delete(&format!("{base}/{id2}"), &t.admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &t.get(&format!("{base}/{id2}"), &t.admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let s = t.get(&format!("{base}?q=kubernetes"), &t.admin).await;
    assert!(s.body["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn links_must_point_to_the_same_agent() {
    let t = TestApp::new().await;
    let a = t.agent("a").await;
    let b = t.agent("b").await;
    let mb = t.memory(&b, "b only").await;
    let r = t
        .post(
            &format!("/v1/agents/{a}/memory"),
            &t.admin,
            json!({"content": "x", "links": [mb]}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("links[0]")
    );
    let r = t
        .post(
            &format!("/v1/agents/{a}/memory"),
            &t.admin,
            json!({"content": "x", "kind": "reflection"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = t
        .post(
            &format!("/v1/agents/{a}/memory"),
            &t.admin,
            json!({"content": "x", "links": ["not-an-id"]}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        t.get(&format!("/v1/agents/{a}/memory"), &t.admin)
            .await
            .body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn size_limits_are_413() {
    let t = TestApp::new().await;
    let a = t.agent("a").await;
    let base = format!("/v1/agents/{a}/memory");
    let big = "x".repeat((1 << 20) + 1);
    assert_error(
        &t.post(&base, &t.admin, json!({"content": big})).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let meta: serde_json::Map<String, serde_json::Value> = (0..2000)
        .map(|i| (format!("k{i}"), json!("v".repeat(40))))
        .collect();
    assert_error(
        &t.post(&base, &t.admin, json!({"content": "x", "metadata": meta}))
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let huge = "y".repeat(3 << 20);
    assert_error(
        &t.post(&base, &t.admin, json!({"content": huge})).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // Exactly at the limit is fine.
    let at = "z".repeat(1 << 20);
    assert_eq!(
        t.post(&base, &t.admin, json!({"content": at})).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn search_query_is_text_never_syntax() {
    let t = TestApp::new().await;
    let a = t.agent("a").await;
    t.memory(&a, "foo bar baz \"quoted\" it's NEAR OR AND")
        .await;
    let base = format!("/v1/agents/{a}/memory");
    for q in [
        "%22foo%20OR",
        "NEAR(",
        "foo*",
        "-foo",
        "it%27s",
        "%27%3B%20DROP%20TABLE%20memories%3B--",
        "agent:ag1",
        "%7Bcontent%7D:foo",
        "foo%20AND",
        "%5Efoo",
        "a%22b",
        "((((",
        "%E2%80%AE",
        "%F0%9F%98%80%20foo",
        &"long".repeat(500),
    ] {
        let r = t.get(&format!("{base}?q={q}"), &t.admin).await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST,
            "{q}: {r:?}"
        );
    }
    for q in ["*", "-", "%22", "%28%29", "%20"] {
        let r = t.get(&format!("{base}?q={q}"), &t.admin).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
    }
    assert_error(
        &t.get(&format!("{base}?q={}", "w%20".repeat(3000)), &t.admin)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert_error(
        &t.get(&format!("{base}?kind=nope"), &t.admin).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_eq!(
        t.get(&format!("{base}?q=foo"), &t.admin).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

//! Bad input of every kind gets a clear error with the right status, and nothing stored is lost.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use dgc_server::Limits;
use serde_json::{Value, json};

use crate::{TestApp, assert_error};

fn raw_post(path: &str, key: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn malformed_bodies_and_everything_survives() {
    let t = TestApp::new().await;
    let a = t.agent("keeper").await;
    let m = t.memory(&a, "precious memory").await;
    let base = format!("/v1/agents/{a}/memory");

    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (
            b"{\"content\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            b"{\"content\": \"x\",}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (b"".to_vec(), StatusCode::BAD_REQUEST, "invalid_json"),
        (b"   ".to_vec(), StatusCode::BAD_REQUEST, "invalid_json"),
        (
            b"{\"content\": \"x\"} trailing".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            b"{\"content\": \"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            b"\xff\xfe\x00".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            b"{\"content\": \"x\", \"bogus\": 1}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            b"{\"content\": 12}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            b"{\"content\": \"\"}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            b"{\"content\": \"   \"}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            b"{\"content\": \"x\", \"kind\": \"dream\"}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            b"{\"content\": \"x\", \"tags\": [\"\"]}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            b"{\"content\": \"a\\u0000b\"}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            b"[1,2,3]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            b"null".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            format!(
                "{{\"content\": \"x\", \"metadata\": {{\"a\": {}1{}}}}}",
                "[".repeat(10_000),
                "]".repeat(10_000)
            )
            .into_bytes(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
    ];
    for (body, status, code) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).to_string();
        let r = t.raw(raw_post(&base, &t.admin, body)).await;
        assert_eq!(r.status, status, "{shown}: {r:?}");
        assert_error(&r, status, code);
    }
    let r = t.raw(raw_post(&base, &t.admin, "{\"content\": ")).await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1 column"),
        "{r:?}"
    );
    let r = t
        .raw(raw_post(
            &base,
            &t.admin,
            "{\"content\": \"x\", \"bogus\": 1}",
        ))
        .await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bogus"),
        "{r:?}"
    );

    // Non-UTF-8 in the path and query.
    // Invalid UTF-8 in the query decodes lossily to replacement characters: no searchable words.
    let r = t
        .get(&format!("/v1/agents/{a}/memory?q=%FF%FE"), &t.admin)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
    let r = t.get("/v1/agents/%FF%FE", &t.admin).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");

    // Oversized body by Content-Length and by streaming.
    let big = vec![b'x'; (2 << 20) + 10];
    assert_error(
        &t.raw(raw_post(&base, &t.admin, big)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let stream = Body::from_stream(futures_stream(3 << 20));
    assert_error(
        &t.raw(raw_post(&base, &t.admin, stream)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    // Very long strings where they are not allowed.
    let r = t
        .post("/v1/agents", &t.admin, json!({"name": "n".repeat(100_000)}))
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // Everything stored before is intact.
    let kept = t.get(&format!("{base}/{m}"), &t.admin).await;
    assert_eq!(kept.status, StatusCode::OK);
    assert_eq!(kept.body["content"], "precious memory");
    let all = t.get(&base, &t.admin).await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        t.get("/v1/agents", &t.admin).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// A chunked body with no content-length, so the limit must be enforced while reading.
struct Chunks {
    left: usize,
}

impl futures_core::Stream for Chunks {
    type Item = Result<axum::body::Bytes, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        std::task::Poll::Ready(Some(Ok(axum::body::Bytes::from(vec![b' '; n]))))
    }
}

fn futures_stream(total: usize) -> Chunks {
    Chunks { left: total }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let t = TestApp::new().await;
    let r = t.get("/v2/agents", &t.admin).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = t
        .call(Method::PUT, "/v1/agents", Some(&t.admin), Some(json!({})))
        .await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn request_ids_are_honoured_or_generated() {
    let t = TestApp::new().await;
    let req = Request::builder()
        .uri("/livez")
        .header("x-dgc-request-id", "trace-abc.123")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        t.raw(req).await.headers["x-dgc-request-id"],
        "trace-abc.123"
    );
    let req = Request::builder()
        .uri("/v1/agents")
        .header("x-dgc-request-id", "my-id-42")
        .body(Body::empty())
        .unwrap();
    let r = t.raw(req).await;
    assert_eq!(r.body["error"]["request_id"], "my-id-42");
    let bad = Request::builder()
        .uri("/livez")
        .header("x-dgc-request-id", "spaces are not ok")
        .body(Body::empty())
        .unwrap();
    let r = t.raw(bad).await;
    assert!(
        r.headers["x-dgc-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let r = t
        .raw(
            Request::builder()
                .uri("/livez")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(
        r.headers["x-dgc-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_hit_the_deadline() {
    // Another process-level writer holds the database's write lock, so a write request waits on
    // the store until its deadline passes. Reads (WAL) and /livez are unaffected.
    let t = TestApp::with_limits(Limits {
        request_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let a = t.agent("a").await;
    let blocker = rusqlite::Connection::open(t.dir.path().join("dgc.db")).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let r = t
        .post(
            &format!("/v1/agents/{a}/memory"),
            &t.admin,
            json!({"content": "waits"}),
        )
        .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "timeout");
    assert_eq!(t.get("/v1/agents", &t.admin).await.status, StatusCode::OK);
    assert_eq!(
        t.call(Method::GET, "/livez", None, None).await.status,
        StatusCode::OK
    );
    blocker.execute_batch("ROLLBACK").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_see_errors() {
    let t = std::sync::Arc::new(TestApp::new().await);
    let a = t.agent("busy").await;
    let mut tasks = vec![];
    for c in 0..32 {
        let t = t.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let mut statuses = vec![];
            for i in 0..20 {
                let r = t
                    .post(
                        &format!("/v1/agents/{a}/memory"),
                        &t.admin,
                        json!({"content": format!("client {c} write {i}")}),
                    )
                    .await;
                statuses.push((r.status, r.text));
            }
            statuses
        }));
    }
    for task in tasks {
        for (status, text) in task.await.unwrap() {
            assert_eq!(status, StatusCode::CREATED, "{text}");
            assert!(!text.contains("locked"));
        }
    }
    let mut n = 0;
    let mut path = format!("/v1/agents/{a}/memory?limit=500");
    loop {
        let r = t.get(&path, &t.admin).await;
        n += r.body["data"].as_array().unwrap().len();
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/agents/{a}/memory?limit=500&after={c}"),
            None => break,
        }
    }
    assert_eq!(n, 640);
    let v: Value = t
        .call(Method::GET, "/metrics", None, None)
        .await
        .text
        .lines()
        .find(|l| l.starts_with("dgc_memories "))
        .map(|l| json!(l.split(' ').nth(1).unwrap()))
        .unwrap();
    assert_eq!(v, json!("640"));
}

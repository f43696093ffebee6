//! HTTP integration tests: the real router (`dgc_server::app`) over a real SQLite store in a temp
//! dir, driven with `oneshot` requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod agents;
mod audit;
mod auth;
mod bad_input;
mod health;
mod memory;
mod openapi;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use dgc_server::{AppState, Limits, StateOptions};
use dgc_store::{SqliteOptions, SqliteStore, Store};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

#[allow(missing_debug_implementations)]
pub struct TestApp {
    pub app: Router,
    pub admin: String,
    pub state: AppState,
    pub dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
    pub text: String,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.text)
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_limits(Limits::default()).await
    }

    pub async fn with_limits(limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&SqliteOptions::new(dir.path().join("dgc.db"))).unwrap());
        let instance = dgc_server::bootstrap(dir.path(), store.as_ref())
            .await
            .unwrap();
        let admin = std::fs::read_to_string(instance.admin_key_path.clone().unwrap())
            .unwrap()
            .trim()
            .to_string();
        let state = AppState::new(
            store,
            instance,
            StateOptions {
                limits,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        Self {
            app: dgc_server::app(state.clone()),
            admin,
            state,
            dir,
        }
    }

    pub async fn raw(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            body,
            headers,
            text,
        }
    }

    /// A JSON request with `key` as the bearer token (None: no Authorization header).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.raw(req).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Resp {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    /// Creates an agent with the admin key and returns its id.
    pub async fn agent(&self, name: &str) -> String {
        let r = self
            .post("/v1/agents", &self.admin.clone(), json!({"name": name}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Issues a key with the admin key.
    pub async fn key(&self, body: Value) -> String {
        let r = self.post("/v1/keys", &self.admin.clone(), body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        r.body["key"].as_str().unwrap().to_string()
    }

    pub async fn memory(&self, agent: &str, content: &str) -> String {
        let r = self
            .post(
                &format!("/v1/agents/{agent}/memory"),
                &self.admin.clone(),
                json!({"content": content}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        r.body["id"].as_str().unwrap().to_string()
    }
}

/// Asserts an error response: status, code, and a request id that matches the header.
#[track_caller]
pub fn assert_error(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.body["error"]["code"], code, "{r:?}");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{r:?}"
    );
    let rid = r.body["error"]["request_id"].as_str().unwrap();
    assert_eq!(
        r.headers.get("x-dgc-request-id").unwrap().to_str().unwrap(),
        rid
    );
}

//! The OpenAPI document parses, is 3.1, and matches exactly the routes the router serves.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::TestApp;

/// Every route the product serves (method, template). Keep in sync with `api_router`.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/keys"),
    ("GET", "/v1/keys"),
    ("DELETE", "/v1/keys/{id}"),
    ("POST", "/v1/agents"),
    ("GET", "/v1/agents"),
    ("GET", "/v1/agents/{id}"),
    ("PATCH", "/v1/agents/{id}"),
    ("DELETE", "/v1/agents/{id}"),
    ("POST", "/v1/agents/{id}/memory"),
    ("GET", "/v1/agents/{id}/memory"),
    ("GET", "/v1/agents/{id}/memory/{mid}"),
    ("DELETE", "/v1/agents/{id}/memory/{mid}"),
    ("GET", "/v1/audit/checkpoint"),
    ("GET", "/v1/audit/checkpoints"),
    ("GET", "/v1/audit/keys"),
    ("GET", "/v1/audit/proof/consistency"),
    ("GET", "/v1/audit/proof/inclusion"),
    ("GET", "/v1/audit/records"),
    ("GET", "/livez"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
];

#[tokio::test]
async fn openapi_lists_exactly_the_served_routes() {
    let t = TestApp::new().await;
    let r = t.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc: Value = r.body;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, expected,
        "OpenAPI paths differ from the route list"
    );
    // Every documented route is really served: a request reaches a handler, not the fallbacks.
    for (method, path) in &expected {
        let concrete = path
            .replace("{id}", "ag_01jd8x7k3m9q2w5e6r7t8y9v0a")
            .replace("{mid}", "mem_01jd8x7k3m9q2w5e6r7t8y9v0a");
        let concrete = if path.starts_with("/v1/keys/") {
            concrete.replace("ag_", "key_")
        } else {
            concrete
        };
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let r = t.call(m, &concrete, Some(&t.admin), None).await;
        let msg = r.body["error"]["message"].as_str().unwrap_or("");
        assert!(
            !msg.starts_with("no route for") && r.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {r:?}"
        );
    }
    // /v1 operations declare request/response schemas and bearer security.
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["responses"]
                    .as_object()
                    .is_some_and(|r| r.keys().any(|k| k.starts_with('2'))),
                "{method} {path}"
            );
            assert!(op["security"].is_array(), "{method} {path} has no security");
            if method == "post" {
                assert!(
                    op["requestBody"].is_object(),
                    "{method} {path} has no request body schema"
                );
            }
        }
    }
}

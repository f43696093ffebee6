//! Health endpoints and metrics, including `promtool check metrics` on the live output.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::TestApp;

#[tokio::test]
async fn livez_readyz_need_no_key() {
    let t = TestApp::new().await;
    let r = t.call(Method::GET, "/livez", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(
        r.body,
        json!({"status": "ready", "checks": {"store_writable": "ok", "migrations": "ok"}})
    );
}

#[tokio::test]
async fn readyz_is_503_with_the_failing_check_when_the_store_is_gone() {
    let t = TestApp::new().await;
    t.state.store().close().await;
    let r = t.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
    assert_eq!(r.body["status"], "unavailable");
    assert_ne!(r.body["checks"]["store_writable"], "ok");
    // And API calls get a generic 503, not a stack trace.
    let r = t.get("/v1/agents", &t.admin).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
    assert!(
        !r.text.contains("Closed") && !r.text.contains("shutting"),
        "{r:?}"
    );
}

#[tokio::test]
async fn metrics_use_route_templates_and_pass_promtool() {
    let t = TestApp::new().await;
    let a = t.agent("m").await;
    t.memory(&a, "hello").await;
    t.get(&format!("/v1/agents/{a}"), &t.admin).await;
    t.get("/v1/agents/ag_01jd8x7k3m9q2w5e6r7t8y9v0a", &t.admin)
        .await;
    t.get("/no/such/route", &t.admin).await;
    let m = t.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(
        m.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = m.text;
    assert!(
        text.contains(
            r#"dgc_http_requests_total{method="GET",route="/v1/agents/{id}",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"dgc_http_requests_total{method="GET",route="/v1/agents/{id}",status="404"} 1"#
    ));
    assert!(text.contains(r#"route="unmatched""#));
    assert!(!text.contains(&a), "raw ids never become labels");
    assert!(text.contains("dgc_http_request_duration_seconds_bucket"));
    assert!(text.contains("dgc_memories 1"));
    assert!(text.contains("dgc_agents 1"));
    assert!(text.contains("dgc_build_info{version="));

    let promtool = which("promtool").unwrap_or_else(|| {
        panic!("promtool is required: install it with `apt-get install -y prometheus` (scripts/test does this)")
    });
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(bin))
        .find(|p| p.is_file())
}

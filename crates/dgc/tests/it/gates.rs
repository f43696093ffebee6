//! `dgc gates eval` and `dgc gates test` through the real binary.

use std::io::Write;
use std::process::{Command, Stdio};

fn eval(input: &str) -> (i32, serde_json::Value) {
    let mut child = Command::new(crate::BIN)
        .args(["gates", "eval"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v)
}

#[test]
fn eval_denies_destructive_commands_and_allows_ordinary_ones() {
    let call = |cmd: &str| {
        format!(
            r#"{{"principal": {{"capabilities": ["proc.exec"], "agent": "ag_01jd8x7k3m9q2w5e6r7t8y9v0a"}},
               "action": {{"type": "tool_call", "tool": "shell.exec", "arguments": {{"command": {cmd:?}}},
                          "annotations": {{}}, "requires": ["proc.exec"], "trusted": false}},
               "context": {{"taint": [], "steps": 0}}}}"#
        )
    };
    let (code, v) = eval(&call("sudo rm -rf --no-preserve-root /"));
    assert_eq!(code, 0);
    assert_eq!(v["decision"], "deny", "{v}");
    assert!(
        v["gates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["gate"] == "ahimsa" && g["decision"] == "deny")
    );
    let (code, v) = eval(&call("ls -la build/"));
    assert_eq!(code, 0);
    assert_eq!(v["decision"], "allow", "{v}");
    let (code, _) = eval("{not json");
    assert_eq!(code, 2, "bad input is exit 2");
}

#[test]
fn test_runs_every_example_of_a_policy_directory() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../dgc-gates/policy-example");
    let out = Command::new(crate::BIN)
        .args(["gates", "test", dir])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" 0 failed"), "{text}");
}

/// A fake OpenAI-compatible guard model on loopback answering every request with `reply`
/// (the classifier is an external service, so a local double stands in for it).
fn fake_classifier(reply: &'static str) -> (String, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Read};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", l.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let (mut s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut len = 0usize;
        let mut line = String::new();
        let mut first = String::new();
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if first.is_empty() {
                first = line.clone();
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        seen.push(first);
        seen.push(String::from_utf8(body).unwrap());
        let payload =
            serde_json::json!({"choices": [{"message": {"role": "assistant", "content": reply}}]})
                .to_string();
        write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}", payload.len()).unwrap();
        seen
    });
    (url, h)
}

fn model_output_input() -> String {
    r#"{"principal": {"capabilities": ["*"], "agent": "ag_01jd8x7k3m9q2w5e6r7t8y9v0a"},
        "action": {"type": "model_call", "route": "default"},
        "output": "Here is the summary you asked for."}"#
        .to_string()
}

fn eval_with_policy(policy: &std::path::Path, input: &str) -> serde_json::Value {
    let mut child = Command::new(crate::BIN)
        .args(["gates", "eval", "--policy", policy.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn policy_with_classifier(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let p = dir.join("gates.toml");
    std::fs::write(
        &p,
        format!(
            "[gates.content_safety]\nmode = \"enforce\"\nclassifier = {{ url = \"{url}\", model = \"llama-guard3\", timeout_ms = 2000 }}\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn content_safety_calls_the_external_classifier_over_http() {
    let dir = tempfile::tempdir().unwrap();
    // Flagged by the classifier: the output is withheld.
    let (url, server) = fake_classifier("unsafe\nS2,S10");
    let v = eval_with_policy(
        &policy_with_classifier(dir.path(), &url),
        &model_output_input(),
    );
    let seen = server.join().unwrap();
    assert!(seen[0].starts_with("POST /v1/chat/completions"), "{seen:?}");
    let req: serde_json::Value = serde_json::from_str(&seen[1]).unwrap();
    assert_eq!(req["model"], "llama-guard3");
    assert!(
        req["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("summary you asked for")
    );
    assert_eq!(v["output_scan"]["decision"]["decision"], "deny", "{v}");
    assert!(v.to_string().contains("S2, S10"), "{v}");
    // Judged safe: the output passes.
    let (url, server) = fake_classifier("safe");
    let v = eval_with_policy(
        &policy_with_classifier(dir.path(), &url),
        &model_output_input(),
    );
    server.join().unwrap();
    assert_eq!(v["output_scan"]["decision"]["decision"], "allow", "{v}");
    // Unreachable (nothing listens): the configured fallback, deny by default.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let v = eval_with_policy(
        &policy_with_classifier(dir.path(), &url),
        &model_output_input(),
    );
    assert_eq!(v["output_scan"]["decision"]["decision"], "deny", "{v}");
    assert!(v.to_string().contains("unreachable"), "{v}");
}

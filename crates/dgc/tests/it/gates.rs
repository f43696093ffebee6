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

//! `dgc gates eval` and `dgc gates test`, driven through the library entry point.

use std::io::Cursor;

use dgc_gates::cli::{GatesCmd, run_with};
use serde_json::{Value, json};

fn eval(
    input: &Value,
    policy: Option<std::path::PathBuf>,
    rego: Option<std::path::PathBuf>,
) -> (u8, String, String) {
    let mut stdin = Cursor::new(serde_json::to_vec(input).unwrap());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(
        GatesCmd::Eval {
            input: None,
            policy,
            rego,
            pretty: false,
        },
        &mut stdin,
        &mut out,
        &mut err,
    );
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn eval_prints_the_documented_shape() {
    let input = json!({
        "principal": {"capabilities": ["proc.exec"], "agent": "ag_123"},
        "action": {"type": "tool_call", "tool": "shell.exec", "arguments": {"command": "cd / && sudo rm -rf ~"},
                   "annotations": {}, "requires": ["proc.exec"], "trusted": false},
        "context": {"taint": [], "steps": 0}
    });
    let (code, out, err) = eval(&input, None, None);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"], "deny");
    let gates = v["gates"].as_array().unwrap();
    let ahimsa = gates.iter().find(|g| g["gate"] == "ahimsa").unwrap();
    assert_eq!(ahimsa["decision"], "deny");
    assert!(ahimsa["reason"].as_str().unwrap().contains("rm_root"));
    assert!(v["taint"].is_array());

    let input = json!({"principal": {"capabilities": ["*"], "agent": "ag_1"},
        "action": {"type": "tool_call", "tool": "http.fetch", "arguments": {"url": "https://x.example.com", "key": "sk_live_4eC39HqLyjWDarjtT1zdp7dc"}}});
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("gates.toml");
    std::fs::write(&toml, "[gates.egress]\nallow = [\"*.example.com\"]\n").unwrap();
    let (code, out, _) = eval(&input, Some(toml), None);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"], "redact");
    assert_eq!(v["redacted_arguments"]["key"], "[REDACTED:stripe_key]");
    assert!(
        v["taint"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "untrusted_content")
    );
}

#[test]
fn eval_with_rego_dir_and_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.rego"), "package dgc\nneeds_approval contains \"big refund\" if input.action.arguments.amount > 100\n").unwrap();
    let input = json!({"action": {"type": "tool_call", "tool": "shop.refund", "arguments": {"amount": 500}}, "principal": {"agent": "ag_1"}});
    let (code, out, err) = eval(&input, None, Some(dir.path().to_path_buf()));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"], "needs_approval");
    assert_eq!(v["approval"]["gates"][0]["reason"], "big refund");

    let input = json!({"action": {"type": "tool_call", "tool": "fs.read", "arguments": {"path": "a"}}, "output": "mail bob@corp-mail.io"});
    let (_, out, _) = eval(&input, None, None);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["output_scan"]["output"], "mail [REDACTED:email]");
}

#[test]
fn eval_rejects_bad_input_with_exit_2() {
    let mut stdin = Cursor::new(b"{\"action\": {\"type\": \"teleport\"}}".to_vec());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(
        GatesCmd::Eval {
            input: None,
            policy: None,
            rego: None,
            pretty: false,
        },
        &mut stdin,
        &mut out,
        &mut err,
    );
    assert_eq!(code, 2);
    assert!(String::from_utf8(err).unwrap().contains("invalid input"));
    let (code, _, err) = eval(
        &json!({"action": {"type": "tool_call", "tool": "x"}}),
        Some("/nonexistent/gates.toml".into()),
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/gates.toml"));
}

fn test_dir(dir: &std::path::Path) -> (u8, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(
        GatesCmd::Test {
            dir: dir.to_path_buf(),
        },
        &mut Cursor::new(Vec::new()),
        &mut out,
        &mut err,
    );
    (
        code,
        String::from_utf8(out).unwrap() + &String::from_utf8(err).unwrap(),
    )
}

#[test]
fn test_runs_examples_rego_tests_and_cases() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gates.toml"),
        r#"
[gates.tool_policy]
deny = ["shell.*"]
[[gates.tool_policy.examples]]
name = "shell denied"
expect = "deny"
input = { action = { type = "tool_call", tool = "shell.exec" } }
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("policy.rego"),
        "package dgc\ndeny contains \"no prod\" if input.action.arguments.env == \"prod\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("policy_test.rego"), "package dgc_test\nimport data.dgc\ntest_prod_denied if {\n  count(dgc.deny) == 1 with input as {\"action\": {\"arguments\": {\"env\": \"prod\"}}}\n}\n").unwrap();
    std::fs::create_dir(dir.path().join("cases")).unwrap();
    std::fs::write(dir.path().join("cases/basic.json"), serde_json::to_string(&json!([
        {"name": "prod deploy denied", "expect": "deny", "gate": "policy",
         "input": {"principal": {"capabilities": ["*"]}, "action": {"type": "tool_call", "tool": "app.configure", "arguments": {"env": "prod"}}}},
        {"name": "staging ok", "expect": "allow",
         "input": {"principal": {"capabilities": ["*"]}, "action": {"type": "tool_call", "tool": "app.configure", "arguments": {"env": "staging"}}}}
    ])).unwrap()).unwrap();
    let (code, out) = test_dir(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok    rego data.dgc_test.test_prod_denied"),
        "{out}"
    );
    assert!(out.contains("case `prod deploy denied`"));
    assert!(out.contains("tool_policy example `shell denied` (gates.toml)"));
    assert!(out.trim_end().ends_with(" passed, 0 failed"), "{out}");

    // A failing case and a failing example are reported and make the exit code 1.
    std::fs::write(dir.path().join("cases/bad.json"), serde_json::to_string(&json!({"name": "wrong", "expect": "allow",
        "input": {"principal": {"capabilities": ["*"]}, "action": {"type": "tool_call", "tool": "app.configure", "arguments": {"env": "prod"}}}})).unwrap()).unwrap();
    let (code, out) = test_dir(dir.path());
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  case `wrong`"), "{out}");
    assert!(out.trim_end().ends_with(" passed, 1 failed"), "{out}");
}

#[test]
fn shipped_example_policy_passes_its_own_tests() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy-example");
    let (code, out) = test_dir(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("rego data.dgc_test.test_prod_shell_denied"),
        "{out}"
    );
    assert!(out.contains("case `big refund asks`"), "{out}");
}

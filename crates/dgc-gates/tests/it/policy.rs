//! Policy files: parsing and validation errors, operator examples, Rego rules, and reloads that
//! keep the previous policy when the new one is invalid.

use std::time::Duration;

use dgc_gates::{DecisionKind, Policy, PolicyError, PolicyHandle, PolicySource};
use serde_json::json;

use crate::common::{Req, shell};

fn err(toml: &str) -> PolicyError {
    Policy::from_toml_str(toml, Vec::new()).expect_err("policy should be rejected")
}

#[test]
fn validation_errors_are_specific() {
    let e = err("[gates.ahimsa]\nmode = \"enforce\"\nrules = { git_force_push = \n");
    assert!(
        matches!(&e, PolicyError::Toml { message, .. } if message.contains("line")),
        "{e}"
    );
    assert!(
        err("[gates.nonsense]\n")
            .to_string()
            .contains("unknown gate `nonsense`")
    );
    assert!(
        err("[gates.ahimsa]\nmode = \"loud\"\n")
            .to_string()
            .contains("ahimsa")
    );
    assert!(
        err("[gates.ahimsa]\nrules = { rm_everything = \"allow\" }\n")
            .to_string()
            .contains("unknown rule")
    );
    assert!(
        err("[gates.egress]\nallow = [\"*\"]\n")
            .to_string()
            .contains("egress")
    );
    assert!(
        err("[gates.egress]\nallow_list = []\n")
            .to_string()
            .contains("unknown field")
    );
    assert!(err("autonomy = \"yolo\"\n").to_string().contains("yolo"));
    assert!(
        err("[gates.ahimsa]\nrules = { unanalysable = \"allow\" }\n")
            .to_string()
            .contains("fail closed")
    );
    assert!(
        err("[gates.rate_limit]\nper_key = { rate = 0, per_secs = 1, burst = 1 }\n")
            .to_string()
            .contains("positive")
    );
}

#[test]
fn operator_examples_are_checked_at_load() {
    let ok = r#"
[gates.egress]
allow = ["api.github.com"]
[[gates.egress.examples]]
name = "github allowed"
expect = "allow"
input = { action = { type = "tool_call", tool = "http.fetch", arguments = { url = "https://api.github.com/zen" } } }
[[gates.egress.examples]]
name = "others refused"
expect = "deny"
input = { action = { type = "tool_call", tool = "http.fetch", arguments = { url = "https://pypi.org/" } } }
"#;
    let p = Policy::from_toml_str(ok, Vec::new()).expect("examples pass");
    assert_eq!(p.user_examples().len(), 2);
    let bad = ok.replace("expect = \"deny\"", "expect = \"allow\"");
    let e = Policy::from_toml_str(&bad, Vec::new()).unwrap_err();
    assert!(
        matches!(&e, PolicyError::Examples { failures } if failures[0].contains("others refused")),
        "{e}"
    );
}

#[test]
fn rego_rules_decide_with_their_messages() {
    let rego = r#"package dgc

deny contains msg if {
    input.action.type == "tool_call"
    startswith(input.action.tool, "shell.")
    contains(input.action.arguments.command, "prod")
    msg := sprintf("agent %s may not touch prod", [input.principal.agent])
}

needs_approval contains "memory writes tagged pii need review" if {
    input.action.type == "memory_write"
    "pii" in input.action.tags
}

redact contains {"path": "/password", "reason": "passwords never reach tools"} if {
    input.action.arguments.password
}
"#;
    let p =
        Policy::from_value(json!({}), vec![("ops.rego".into(), rego.into())]).expect("rego loads");
    let ev = Req::new(shell("ssh prod-db1 uptime")).eval(&p);
    assert_eq!(ev.decision.decision, DecisionKind::Deny);
    assert_eq!(
        ev.decision.primary_reason().unwrap().reason,
        "agent ag_test may not touch prod"
    );
    let ev = Req::new(json!({"type": "memory_write", "content": "x", "tags": ["pii"]})).eval(&p);
    assert_eq!(ev.decision.decision, DecisionKind::NeedsApproval);
    let ev = Req::new(json!({"type": "tool_call", "tool": "site.login", "arguments": {"user": "u", "password": "pw123"}})).eval(&p);
    assert_eq!(ev.decision.decision, DecisionKind::Redact);
    assert_eq!(
        ev.decision.redacted_arguments.unwrap()["password"],
        "[REDACTED:policy]"
    );
    assert_eq!(
        Req::new(shell("ls")).eval(&p).decision.decision,
        DecisionKind::Allow
    );
}

#[test]
fn invalid_rego_reports_its_line() {
    let e = Policy::from_value(
        json!({}),
        vec![(
            "broken.rego".into(),
            "package dgc\n\ndeny contains msg if {\n  msg := \n}\n".into(),
        )],
    )
    .unwrap_err();
    match e {
        PolicyError::Rego { file, line, .. } => {
            assert_eq!(file, "broken.rego");
            assert!(line.is_some_and(|l| (3..=5).contains(&l)), "line {line:?}");
        }
        other => panic!("expected a Rego error, got {other}"),
    }
}

#[test]
fn slow_rego_is_cut_off() {
    // Slow for every input: rejected at load by the probe evaluation, in bounded time.
    let slow = "package dgc\ndeny contains i if {\n  some i in numbers.range(1, 100000)\n  some j in numbers.range(1, 100000)\n  i == 0 - j\n}\n";
    let doc = json!({"gates": {"policy": {"timeout_ms": 20}}});
    let e = Policy::from_value(doc.clone(), vec![("slow.rego".into(), slow.into())]).unwrap_err();
    assert!(e.to_string().contains("time limit"), "{e}");
    // Slow only for some inputs: loads, and those calls fail closed.
    let sometimes = slow.replace("if {\n", "if {\n  input.action.tool == \"slow\"\n");
    let p = Policy::from_value(doc, vec![("slow.rego".into(), sometimes)]).expect("loads");
    let ev = Req::new(json!({"type": "tool_call", "tool": "slow", "sandbox": "process"})).eval(&p);
    assert_eq!(ev.decision.decision, DecisionKind::Deny);
    assert!(
        crate::common::gate(&ev, "policy")
            .reason
            .contains("fail closed")
    );
}

#[test]
fn reload_keeps_the_old_policy_on_error_and_watches_files() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("gates.toml");
    let rego_dir = dir.path().join("rego");
    std::fs::create_dir(&rego_dir).unwrap();
    std::fs::write(&toml, "[gates.policy]\nrego_dir = \"rego\"\n").unwrap();
    std::fs::write(
        rego_dir.join("a.rego"),
        "package dgc\ndeny contains \"no shell\" if input.action.tool == \"shell.exec\"\n",
    )
    .unwrap();
    let h = PolicyHandle::from_source(PolicySource {
        gates_toml: toml.clone(),
        rego_dir: None,
    })
    .unwrap();
    let before = h.current();
    assert_eq!(
        Req::new(shell("ls")).eval(&before).decision.decision,
        DecisionKind::Deny
    );
    assert!(!h.reload_if_changed().unwrap(), "nothing changed");

    // A broken Rego file: reload fails with the file and line; the old policy stays.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(rego_dir.join("a.rego"), "package dgc\ndeny contains if {\n").unwrap();
    let e = h.reload_if_changed().unwrap_err();
    assert!(e.to_string().contains("a.rego"), "{e}");
    assert_eq!(
        Req::new(shell("ls")).eval(&h.current()).decision.decision,
        DecisionKind::Deny
    );
    assert!(
        !h.reload_if_changed().unwrap(),
        "a broken file is reported once"
    );

    // A broken TOML file: same.
    std::fs::write(&toml, "[gates.policy\n").unwrap();
    assert!(matches!(h.reload(), Err(PolicyError::Toml { .. })));

    // Fixed: the new policy takes over.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        &toml,
        "autonomy = \"supervised\"\n[gates.policy]\nrego_dir = \"rego\"\n",
    )
    .unwrap();
    std::fs::write(
        rego_dir.join("a.rego"),
        "package dgc\ndeny contains \"no http\" if input.action.tool == \"http.fetch\"\n",
    )
    .unwrap();
    assert!(h.reload_if_changed().unwrap());
    let now = h.current();
    assert_eq!(now.autonomy(), dgc_gates::Autonomy::Supervised);
    let ls = Req::new(shell("ls")).eval(&now);
    assert_ne!(
        ls.decision.decision,
        DecisionKind::Deny,
        "{:?}",
        ls.decision.gates
    );
}

#[test]
fn missing_files_are_clear_errors() {
    let e = Policy::load(std::path::Path::new("/nonexistent/gates.toml"), None).unwrap_err();
    assert!(matches!(e, PolicyError::Io { .. }), "{e}");
}

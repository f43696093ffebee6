//! Hostile input: megabyte arguments, deep JSON, invalid UTF-8, pathological patterns — all finish
//! without panics and with a decision (fail closed where analysis is impossible).

use dgc_gates::{DecisionKind, scan_output};
use serde_json::{Value, json};

use crate::common::{Req, builtin, shell};

#[test]
fn megabyte_arguments_are_scanned() {
    let p = builtin();
    let mut big = "lorem ipsum dolor sit amet ".repeat(40_000);
    big.push_str("AKIAZ7Q3WJ5PLMKT2HXB");
    let ev = Req::new(json!({"type": "tool_call", "tool": "fs.write", "arguments": {"path": "a.txt", "content": big}})).eval(&p);
    assert_eq!(
        ev.decision.decision,
        DecisionKind::Redact,
        "{:?}",
        ev.decision.primary_reason()
    );
    // A megabyte shell command cannot be analysed: refused.
    let ev = Req::new(shell(&format!("echo {}", "a".repeat(1 << 20)))).eval(&p);
    assert_eq!(ev.decision.decision, DecisionKind::Deny);
    assert!(
        ev.decision
            .primary_reason()
            .unwrap()
            .reason
            .contains("unanalysable")
    );
}

#[test]
fn deep_json_is_refused() {
    let p = builtin();
    let mut v = json!("leaf");
    for _ in 0..100 {
        v = json!({"a": v});
    }
    let ev = Req::new(json!({"type": "tool_call", "tool": "fs.write", "arguments": v})).eval(&p);
    assert_eq!(ev.decision.decision, DecisionKind::Deny);
    assert_eq!(ev.decision.gates[0].gate, "input_limits");
    let mut a = json!(1);
    for _ in 0..40 {
        a = json!([a]);
    }
    let ev =
        Req::new(json!({"type": "tool_call", "tool": "fs.write", "arguments": {"x": a}})).eval(&p);
    assert_eq!(ev.decision.decision, DecisionKind::Deny);
}

#[test]
fn many_strings_are_refused() {
    let p = builtin();
    let items: Vec<Value> = (0..100_001).map(|_| json!("x")).collect();
    let ev = Req::new(json!({"type": "tool_call", "tool": "fs.write", "arguments": {"xs": items}}))
        .eval(&p);
    assert_eq!(ev.decision.decision, DecisionKind::Deny);
}

#[test]
fn pathological_text_is_linear() {
    let p = builtin();
    let r = Req::new(json!({"type": "tool_call", "tool": "http.fetch"}));
    let inputs: Vec<Vec<u8>> = vec![
        // Sizes are kept at ~256 KiB so the debug-build suite stays fast; the fuzz target and the
        // 64 KiB/1 MiB benchmarks cover larger inputs in release builds.
        "ignore ".repeat(40_000).into_bytes(),
        "a@".repeat(100_000).into_bytes(),
        "4".repeat(200_000).into_bytes(),
        ("![".repeat(100_000) + "](https://x/?a=").into_bytes(),
        "-----BEGIN PRIVATE KEY-----".repeat(10_000).into_bytes(),
        "A".repeat(256 << 10).into_bytes(),
        "\u{200b}\u{e0041}\u{202e}".repeat(20_000).into_bytes(),
        (0..=255u8).cycle().take(256 << 10).collect(),
        "eyJ".repeat(80_000).into_bytes(),
        "SWdub3Jl".repeat(30_000).into_bytes(),
    ];
    for input in inputs {
        let scan = scan_output(&p, &r.req(), &input);
        assert!(!scan.decision.gates.is_empty());
    }
}

#[test]
fn pathological_shell_is_bounded() {
    let p = builtin();
    for cmd in [
        "$(".repeat(5000),
        "(".repeat(5000),
        "'".repeat(10_000),
        "\"$(`".repeat(3000),
        "a|".repeat(10_000),
        "sh -c ".repeat(2000) + "ls",
        "\\".repeat(20_001),
        ":(){ ".repeat(3000),
    ] {
        let ev = Req::new(shell(&cmd)).eval(&p);
        assert!(!ev.decision.gates.is_empty());
    }
    // Nested `sh -c` beyond the depth bound is refused rather than skipped.
    let mut cmd = "rm -rf /".to_string();
    for _ in 0..12 {
        cmd = format!("sh -c {}", shell_quote(&cmd));
    }
    assert_eq!(
        Req::new(shell(&cmd)).eval(&p).decision.decision,
        DecisionKind::Deny
    );
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

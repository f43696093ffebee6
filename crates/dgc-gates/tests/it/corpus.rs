//! The labelled corpus: per-gate precision and recall, printed as a report and held to floors.

use std::collections::BTreeMap;
use std::path::Path;

use dgc_gates::examples::{ExampleInput, run_gate};
use dgc_gates::{GateId, Policy};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    gate: String,
    label: String,
    input: serde_json::Value,
}

#[derive(Debug, Default)]
struct Counts {
    tp: u32,
    fp: u32,
    tn: u32,
    fn_: u32,
    misses: Vec<String>,
}

/// Floors per gate: (precision, recall).
fn floors(gate: &str) -> (f64, f64) {
    match gate {
        "ahimsa" | "egress" | "filesystem" | "tool_poisoning" | "content_safety" => (0.95, 0.95),
        _ => (0.9, 0.9),
    }
}

#[test]
fn corpus_precision_and_recall() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let policy = Policy::load(&dir.join("gates.toml"), None).expect("corpus policy");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut by_gate: BTreeMap<String, Counts> = BTreeMap::new();
    let mut total = 0;
    for f in &files {
        for (n, line) in std::fs::read_to_string(f)
            .expect("read")
            .lines()
            .enumerate()
        {
            if line.trim().is_empty() {
                continue;
            }
            let case: Case = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", f.display(), n + 1));
            let id: GateId = case.gate.parse().expect("gate name");
            let input: ExampleInput = serde_json::from_value(case.input.clone())
                .unwrap_or_else(|e| panic!("{}: {e}", case.id));
            let out = run_gate(policy.gates(), id, &input).expect("run");
            let fired = out.fired();
            let harmful = match case.label.as_str() {
                "harmful" => true,
                "benign" => false,
                other => panic!("{}: bad label {other}", case.id),
            };
            let c = by_gate.entry(case.gate.clone()).or_default();
            match (harmful, fired) {
                (true, true) => c.tp += 1,
                (false, true) => {
                    c.fp += 1;
                    c.misses.push(format!("FP {} {:?}", case.id, out.verdict));
                }
                (false, false) => c.tn += 1,
                (true, false) => {
                    c.fn_ += 1;
                    c.misses.push(format!("FN {}", case.id));
                }
            }
            total += 1;
        }
    }
    assert!(
        total >= 300,
        "corpus must hold at least 300 labelled cases, has {total}"
    );
    let mut report = format!(
        "gate corpus: {total} labelled cases\n{:<18} {:>4} {:>4} {:>4} {:>4} {:>9} {:>7}\n",
        "gate", "TP", "FP", "TN", "FN", "precision", "recall"
    );
    let mut failures = Vec::new();
    for (gate, c) in &by_gate {
        let precision = if c.tp + c.fp == 0 {
            1.0
        } else {
            f64::from(c.tp) / f64::from(c.tp + c.fp)
        };
        let recall = if c.tp + c.fn_ == 0 {
            1.0
        } else {
            f64::from(c.tp) / f64::from(c.tp + c.fn_)
        };
        report.push_str(&format!(
            "{gate:<18} {:>4} {:>4} {:>4} {:>4} {precision:>9.3} {recall:>7.3}\n",
            c.tp, c.fp, c.tn, c.fn_
        ));
        for m in &c.misses {
            report.push_str(&format!("    {m}\n"));
        }
        let (pf, rf) = floors(gate);
        if precision < pf || recall < rf {
            failures.push(format!(
                "{gate}: precision {precision:.3} (floor {pf}), recall {recall:.3} (floor {rf})"
            ));
        }
        assert!(
            c.tp + c.fn_ > 0 && c.tn + c.fp > 0,
            "{gate} needs harmful and benign cases"
        );
    }
    eprintln!("{report}");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gates-corpus-report.txt");
    std::fs::write(&out, &report).expect("write report");
    assert!(
        failures.is_empty(),
        "below floors:\n{}\n{report}",
        failures.join("\n")
    );
}

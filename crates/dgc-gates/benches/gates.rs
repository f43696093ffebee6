//! Gate pipeline benchmarks: all 22 gates on a typical small tool call (criterion + a p50/p99/p99.9
//! latency loop), a 64 KiB output scan (µs and MB/s), and Rego evaluation cost per call.
//!
//! `cargo bench -p dgc-gates --bench gates`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use dgc_gates::{
    Action, GateRequest, Policy, Principal, StateSnapshot, TaskContext, evaluate, scan_output,
};
use serde_json::json;

const REGO: &str = r#"package dgc

deny contains msg if {
    input.action.type == "tool_call"
    startswith(input.action.tool, "shell.")
    some word in ["terraform", "kubectl", "helm"]
    contains(input.action.arguments.command, word)
    msg := sprintf("%s is reserved for the platform team", [word])
}

needs_approval contains "refunds over 100 need review" if {
    input.action.tool == "shop.refund"
    input.action.arguments.amount > 100
}

redact contains "/password" if input.action.arguments.password
"#;

struct Fixture {
    principal: Principal,
    action: Action,
    context: TaskContext,
    state: StateSnapshot,
}

impl Fixture {
    fn typical() -> Self {
        let principal = serde_json::from_value(json!({"capabilities": ["fs.*", "proc.exec", "net.http", "memory.*"], "agent": "ag_bench", "key_id": "key_bench"})).unwrap();
        let action = serde_json::from_value(json!({
            "type": "tool_call", "tool": "shell.exec", "requires": ["proc.exec"], "sandbox": "process",
            "arguments": {"command": "cd src && grep -rn 'TODO' --include='*.rs' . | head -n 20", "cwd": "/workspace", "timeout_secs": 30}
        }))
        .unwrap();
        let context = TaskContext {
            task_id: Some("tk_bench".into()),
            steps: 7,
            started_at_ms: 1_800_000_000_000,
            now_ms: 1_800_000_030_000,
            recent_calls: (0..8).map(|i| format!("{i:032x}")).collect(),
            ..TaskContext::default()
        };
        Self {
            principal,
            action,
            context,
            state: StateSnapshot::default(),
        }
    }

    fn req(&self) -> GateRequest<'_> {
        GateRequest {
            principal: &self.principal,
            action: &self.action,
            context: &self.context,
            state: &self.state,
        }
    }
}

/// ~64 KiB of mixed prose, code and logs with a few emails and no secrets.
fn output_64k() -> String {
    let chunk = "The deployment finished at 12:04 UTC. Contact ops@acme-corp.io if the dashboard stays red.\n\
        fn main() { let x = compute(42); println!(\"{x}\"); } // see https://docs.example.com/guide?page=2\n\
        2026-11-24T12:04:05Z INFO request_id=3f2b8c1e-9d4a-4f6b-8e2c-7a1d5b9c0e3f status=200 latency_ms=12\n\
        Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.\n";
    let mut s = String::with_capacity(66 * 1024);
    while s.len() < 64 * 1024 {
        s.push_str(chunk);
    }
    s.truncate(64 * 1024);
    s
}

fn policies() -> (Policy, Policy) {
    let plain = Policy::builtin().unwrap();
    let rego = Policy::from_value(json!({}), vec![("bench.rego".into(), REGO.into())]).unwrap();
    (plain, rego)
}

fn benches(c: &mut Criterion) {
    let (plain, rego) = policies();
    let f = Fixture::typical();
    assert_eq!(
        evaluate(&plain, &f.req()).decision.decision,
        dgc_gates::DecisionKind::Allow
    );
    assert_eq!(evaluate(&rego, &f.req()).decision.gates.len(), 22);

    let mut g = c.benchmark_group("pipeline");
    g.bench_function("typical_tool_call_22_gates", |b| {
        b.iter(|| black_box(evaluate(&plain, black_box(&f.req()))));
    });
    g.bench_function("typical_tool_call_22_gates_with_rego", |b| {
        b.iter(|| black_box(evaluate(&rego, black_box(&f.req()))));
    });
    g.finish();

    let out = output_64k();
    let mut g = c.benchmark_group("output_scan");
    g.throughput(Throughput::Bytes(out.len() as u64));
    g.bench_function("64KiB_text", |b| {
        b.iter(|| black_box(scan_output(&plain, &f.req(), black_box(out.as_bytes()))));
    });
    g.finish();

    // The Rego gate alone: input document construction + three rule evaluations.
    let mut g = c.benchmark_group("rego");
    let gates = rego.gates();
    let taint = Default::default();
    let leaves = Vec::new();
    g.bench_function("policy_gate_eval", |b| {
        b.iter(|| {
            let cx = dgc_gates::gates::Cx {
                req: f.req(),
                taint: &taint,
                leaves: &leaves,
                phase: dgc_gates::gates::Phase::Action,
                autonomy: rego.autonomy(),
                cache: &dgc_gates::gates::GateCache::default(),
            };
            black_box(gates.check(dgc_gates::GateId::Policy, &cx))
        });
    });
    g.finish();
}

/// Per-call latency distribution (criterion reports means/medians, the target is a p99).
fn percentiles(name: &str, n: usize, mut call: impl FnMut()) {
    for _ in 0..n / 10 {
        call();
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        call();
        samples.push(t.elapsed());
    }
    samples.sort_unstable();
    let pct = |p: f64| {
        samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6
    };
    println!(
        "latency {name}: n={n} p50={:.2}µs p90={:.2}µs p99={:.2}µs p99.9={:.2}µs max={:.2}µs",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        samples[samples.len() - 1].as_secs_f64() * 1e6
    );
}

/// Mean time per gate, from the `elapsed_us` the decisions record.
fn breakdown(policy: &Policy, f: &Fixture, n: usize) {
    let mut sums: Vec<(String, f64)> = Vec::new();
    for _ in 0..n {
        let ev = evaluate(policy, &f.req());
        for g in &ev.decision.gates {
            match sums.iter_mut().find(|(name, _)| *name == g.gate) {
                Some((_, s)) => *s += g.elapsed_us,
                None => sums.push((g.gate.clone(), g.elapsed_us)),
            }
        }
    }
    let total: f64 = sums.iter().map(|(_, s)| s).sum::<f64>() / n as f64;
    let parts: Vec<String> = sums
        .iter()
        .map(|(g, s)| format!("{g}={:.2}", s / n as f64))
        .collect();
    println!("per-gate mean µs (sum {total:.2}): {}", parts.join(" "));
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let (plain, rego) = policies();
    let f = Fixture::typical();
    breakdown(&plain, &f, 20_000);
    breakdown(&rego, &f, 5_000);
    percentiles("pipeline/typical_tool_call_22_gates", 100_000, || {
        black_box(evaluate(&plain, black_box(&f.req())));
    });
    percentiles(
        "pipeline/typical_tool_call_22_gates_with_rego",
        50_000,
        || {
            black_box(evaluate(&rego, black_box(&f.req())));
        },
    );
    let out = output_64k();
    percentiles("output_scan/64KiB_text", 1_000, || {
        black_box(scan_output(&plain, &f.req(), black_box(out.as_bytes())));
    });
    // Baseline measured in the same run: serialising the action to JSON, the floor any
    // decision record pays.
    percentiles("baseline/serde_json_to_string(action)", 100_000, || {
        black_box(serde_json::to_string(black_box(&f.action)).unwrap());
    });
}

//! `dgc gates …`: `eval` judges one action given as JSON and prints the decision; `test` runs
//! every gate's and policy's examples in a directory and reports failures.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::examples::{ExampleResult, run_embedded, run_user};
use crate::gates::content_safety::{ClassifierConfig, ClassifierOutcome};
use crate::model::{Action, GateRequest, Principal, StateSnapshot, TaskContext};
use crate::policy::{Policy, PolicyError, read_rego_dir};

/// Largest `--input` document accepted.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// `dgc gates` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum GatesCmd {
    /// Evaluate one action (JSON from --input or stdin) and print the decision as JSON.
    Eval {
        /// Input file; `-` or absent reads stdin.
        #[arg(long)]
        input: Option<PathBuf>,
        /// A gates.toml policy (defaults when absent).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// A directory of .rego modules for the `policy` gate.
        #[arg(long)]
        rego: Option<PathBuf>,
        /// Pretty-print the JSON.
        #[arg(long)]
        pretty: bool,
    },
    /// Run every gate's embedded examples, the examples in DIR/gates.toml, the Rego `test_*`
    /// rules in DIR/*.rego and the cases in DIR/cases/*.json; report failures.
    Test {
        /// Directory holding gates.toml, *.rego and cases/.
        dir: PathBuf,
    },
}

/// Exit codes: 0 ok, 1 test failures, 2 bad input or policy.
pub fn run(cmd: GatesCmd) -> ExitCode {
    let stdin = std::io::stdin();
    let code = run_with(
        cmd,
        &mut stdin.lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}

/// Calls an external content classifier (the runtime's HTTP client); see
/// [`crate::classifier_job`].
pub type Classify<'a> = &'a mut dyn FnMut(&ClassifierConfig, &str) -> ClassifierOutcome;

/// [`run`] with explicit streams, for tests and embedding. This crate does no network I/O: a
/// configured content classifier counts as unreachable here (its fallback applies); the `dgc`
/// binary passes an HTTP client through [`run_with_classifier`].
pub fn run_with(
    cmd: GatesCmd,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mut none = |_: &ClassifierConfig, _: &str| ClassifierOutcome::Unreachable {
        error: "this build has no classifier client".into(),
    };
    run_with_classifier(cmd, stdin, out, err, &mut none)
}

/// [`run_with`], calling `classify` when the policy configures an external classifier.
pub fn run_with_classifier(
    cmd: GatesCmd,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
    classify: Classify<'_>,
) -> u8 {
    let r = match cmd {
        GatesCmd::Eval {
            input,
            policy,
            rego,
            pretty,
        } => eval(
            input.as_deref(),
            policy.as_deref(),
            rego.as_deref(),
            pretty,
            stdin,
            out,
            classify,
        ),
        GatesCmd::Test { dir } => test(&dir, out),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            2
        }
    }
}

/// The `eval` input document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalInput {
    #[serde(default)]
    pub principal: Principal,
    pub action: Action,
    #[serde(default)]
    pub context: TaskContext,
    #[serde(default)]
    pub state: StateSnapshot,
    /// Optional output to scan as if the action had produced it.
    #[serde(default)]
    pub output: Option<String>,
}

fn load_policy(policy: Option<&Path>, rego: Option<&Path>) -> Result<Policy, String> {
    match (policy, rego) {
        (Some(p), r) => Policy::load(p, r).map_err(|e| e.to_string()),
        (None, Some(r)) => {
            let sources = read_rego_dir(r).map_err(|e| e.to_string())?;
            Policy::from_value(json!({}), sources).map_err(|e| e.to_string())
        }
        (None, None) => Policy::builtin().map_err(|e| e.to_string()),
    }
}

fn read_input(input: Option<&Path>, stdin: &mut dyn Read) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    match input {
        Some(p) if p != Path::new("-") => {
            let f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
            f.take(MAX_INPUT_BYTES + 1)
                .read_to_end(&mut buf)
                .map_err(|e| format!("{}: {e}", p.display()))?;
        }
        _ => {
            stdin
                .take(MAX_INPUT_BYTES + 1)
                .read_to_end(&mut buf)
                .map_err(|e| format!("stdin: {e}"))?;
        }
    }
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!("input is larger than {MAX_INPUT_BYTES} bytes"));
    }
    Ok(buf)
}

fn eval(
    input: Option<&Path>,
    policy: Option<&Path>,
    rego: Option<&Path>,
    pretty: bool,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    classify: Classify<'_>,
) -> Result<u8, String> {
    let policy = load_policy(policy, rego)?;
    let bytes = read_input(input, stdin)?;
    let doc: EvalInput =
        serde_json::from_slice(&bytes).map_err(|e| format!("invalid input: {e}"))?;
    let mut context = doc.context;
    if context.now_ms == 0 {
        context.now_ms = crate::cli_now_ms();
    }
    let mut state = doc.state;
    {
        let probe = GateRequest {
            principal: &doc.principal,
            action: &doc.action,
            context: &context,
            state: &state,
        };
        if let Some((cfg, text)) = crate::classifier_job(&policy, &probe, doc.output.as_deref()) {
            state.classifier = Some(classify(&cfg, &text));
        }
    }
    let req = GateRequest {
        principal: &doc.principal,
        action: &doc.action,
        context: &context,
        state: &state,
    };
    let ev = crate::evaluate(&policy, &req);
    let mut v = serde_json::to_value(&ev.decision).map_err(|e| e.to_string())?;
    if !ev.updates.is_empty() {
        v["state_updates"] = serde_json::to_value(&ev.updates).map_err(|e| e.to_string())?;
    }
    if let Some(o) = &doc.output {
        let scan = crate::scan_output(&policy, &req, o.as_bytes());
        v["output_scan"] = json!({
            "decision": scan.decision,
            "output": scan.output,
        });
    }
    let text = if pretty {
        serde_json::to_string_pretty(&v)
    } else {
        serde_json::to_string(&v)
    }
    .map_err(|e| e.to_string())?;
    writeln!(out, "{text}").map_err(|e| e.to_string())?;
    Ok(0)
}

/// A case in `DIR/cases/*.json`: the full pipeline on an input, with the expected decision.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    input: Value,
    /// `allow`, `deny`, `needs_approval`, `redact`.
    expect: String,
    /// Optionally, the gate whose verdict must be the deciding one.
    #[serde(default)]
    gate: Option<String>,
}

fn test(dir: &Path, out: &mut dyn Write) -> Result<u8, String> {
    if !dir.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    let toml_path = dir.join("gates.toml");
    let mut sources = read_rego_dir(dir).map_err(|e| e.to_string())?;
    let policy = if toml_path.exists() {
        let text = std::fs::read_to_string(&toml_path)
            .map_err(|e| format!("{}: {e}", toml_path.display()))?;
        let table: toml::Table = toml::from_str(&text)
            .map_err(|e| format!("{}: invalid TOML: {e}", toml_path.display()))?;
        let doc = serde_json::to_value(table).map_err(|e| e.to_string())?;
        if let Some(d) = doc
            .pointer("/gates/policy/rego_dir")
            .and_then(Value::as_str)
        {
            sources.extend(read_rego_dir(&dir.join(d)).map_err(|e| e.to_string())?);
        }
        Policy::from_value_unchecked(doc, sources)
    } else {
        Policy::from_value_unchecked(json!({}), sources)
    }
    .map_err(|e: PolicyError| e.to_string())?;

    let mut results: Vec<ExampleResult> = run_embedded();
    results.extend(run_user(&policy));
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut report =
        |ok: bool, what: String, detail: &str, out: &mut dyn Write| -> Result<(), String> {
            if ok {
                passed += 1;
                writeln!(out, "ok    {what}").map_err(|e| e.to_string())
            } else {
                failed += 1;
                writeln!(out, "FAIL  {what}: {detail}").map_err(|e| e.to_string())
            }
        };
    for r in &results {
        report(
            r.passed,
            format!("{} example `{}` ({})", r.gate, r.name, r.source),
            &r.detail,
            out,
        )?;
    }
    for (pkg, rule) in policy.gates().policy.tests() {
        match policy.gates().policy.run_test(pkg, rule) {
            Ok(ok) => report(
                ok,
                format!("rego {pkg}.{rule}"),
                "evaluated to false or undefined",
                out,
            )?,
            Err(e) => report(false, format!("rego {pkg}.{rule}"), &e, out)?,
        }
    }
    let cases_dir = dir.join("cases");
    if cases_dir.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&cases_dir)
            .map_err(|e| format!("{}: {e}", cases_dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            let cases: Vec<Case> = match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(a)) => serde_json::from_value(Value::Array(a)),
                Ok(v) => serde_json::from_value(v).map(|c| vec![c]),
                Err(e) => Err(e),
            }
            .map_err(|e| format!("{}: {e}", f.display()))?;
            for c in cases {
                let what = format!(
                    "case `{}` ({})",
                    c.name,
                    f.file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default()
                );
                let r = run_case(&policy, &c);
                report(
                    r.is_ok(),
                    what,
                    r.as_ref().err().map_or("", String::as_str),
                    out,
                )?;
            }
        }
    }
    writeln!(out, "{passed} passed, {failed} failed").map_err(|e| e.to_string())?;
    Ok(u8::from(failed > 0))
}

fn run_case(policy: &Policy, c: &Case) -> Result<(), String> {
    let input: EvalInput =
        serde_json::from_value(c.input.clone()).map_err(|e| format!("bad input: {e}"))?;
    let req = GateRequest {
        principal: &input.principal,
        action: &input.action,
        context: &input.context,
        state: &input.state,
    };
    let ev = crate::evaluate(policy, &req);
    let got = ev.decision.decision.as_str();
    if got != c.expect {
        let why = ev
            .decision
            .primary_reason()
            .map(|g| format!(" ({}: {})", g.gate, g.reason))
            .unwrap_or_default();
        return Err(format!("expected {}, got {got}{why}", c.expect));
    }
    if let Some(g) = &c.gate
        && ev.decision.primary_reason().is_none_or(|r| r.gate != *g)
    {
        return Err(format!("expected gate {g} to decide"));
    }
    Ok(())
}

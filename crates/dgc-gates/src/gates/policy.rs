//! Gate 22 `policy`: operator rules in Rego (OPA-compatible, evaluated in-process by `regorus`).
//! Rules in package `dgc` produce decisions: `data.dgc.deny`, `data.dgc.needs_approval` and
//! `data.dgc.redact` are sets whose elements are the messages (for `redact`: JSON pointers into
//! the arguments, or `{"path", "reason"}` objects). Evaluation is bounded by a timer; any error
//! fails closed (deny). The input document is described in `docs/gates.md`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Cx, Example, GateOut, Span, ex};
use crate::decision::{ApprovalClass, Verdict};

/// An inline Rego module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Module {
    pub name: String,
    pub source: String,
}

/// Configuration (`[gates.policy]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory of `.rego` files, relative to `gates.toml` (the CLI's `--rego` overrides it).
    pub rego_dir: Option<String>,
    /// Inline modules.
    pub modules: Vec<Module>,
    /// The `data` document rules can read.
    pub data: Value,
    /// Evaluation time limit per call. Default 50 ms.
    pub timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rego_dir: None,
            modules: Vec::new(),
            data: json!({}),
            timeout_ms: 50,
        }
    }
}

/// Why a Rego policy was rejected; `message` carries regorus' `file:line:col` diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct RegoError {
    pub file: String,
    pub line: Option<u32>,
    pub message: String,
}

/// Extracts the first `:LINE:` after the file name in a regorus diagnostic.
fn line_of(file: &str, msg: &str) -> Option<u32> {
    let at = msg.find(file)? + file.len();
    let rest = msg[at..].strip_prefix(':')?;
    rest.split(':').next()?.trim().parse().ok()
}

#[derive(Debug)]
pub struct Gate {
    engine: Option<regorus::Engine>,
    /// Engines ready for reuse: cloning the prepared engine per call costs more than the
    /// evaluation itself, and an engine is safe to reuse with a new input.
    pool: std::sync::Mutex<Vec<regorus::Engine>>,
    rules: [bool; 3],
    /// `(package, test rule)` pairs found in the modules, for `dgc gates test`.
    tests: Vec<(String, String)>,
}

const RULES: [&str; 3] = ["deny", "needs_approval", "redact"];
/// Most idle engines kept per policy.
const POOL_MAX: usize = 16;

impl Clone for Gate {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            pool: std::sync::Mutex::new(Vec::new()),
            rules: self.rules,
            tests: self.tests.clone(),
        }
    }
}

impl Gate {
    /// Builds the engine from inline modules plus `sources` (`(file name, text)` from `rego_dir`).
    pub fn with_sources(cfg: &Config, sources: &[(String, String)]) -> Result<Self, RegoError> {
        let all: Vec<(String, String)> = cfg
            .modules
            .iter()
            .map(|m| (m.name.clone(), m.source.clone()))
            .chain(sources.iter().cloned())
            .collect();
        if all.is_empty() {
            return Ok(Self {
                engine: None,
                pool: std::sync::Mutex::new(Vec::new()),
                rules: [false; 3],
                tests: Vec::new(),
            });
        }
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(false);
        engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
            limit: Duration::from_millis(cfg.timeout_ms.clamp(1, 10_000)),
            check_interval: std::num::NonZeroU32::MIN,
        });
        let test_re = regex::Regex::new(r"(?m)^(test_[A-Za-z0-9_]+)\b").map_err(|e| RegoError {
            file: String::new(),
            line: None,
            message: e.to_string(),
        })?;
        let mut tests = Vec::new();
        let mut has_dgc = false;
        for (file, text) in &all {
            let pkg = engine.add_policy(file.clone(), text.clone()).map_err(|e| {
                let message = e.to_string();
                RegoError {
                    file: file.clone(),
                    line: line_of(file, &message),
                    message,
                }
            })?;
            has_dgc |= pkg == "data.dgc";
            for c in test_re.captures_iter(text) {
                let name = c[1].to_string();
                if !tests.iter().any(|(p, n)| *p == pkg && *n == name) {
                    tests.push((pkg.clone(), name));
                }
            }
        }
        if !cfg.data.is_null() && cfg.data != json!({}) {
            engine
                .add_data(regorus::Value::from(cfg.data.clone()))
                .map_err(|e| RegoError {
                    file: "data".into(),
                    line: None,
                    message: e.to_string(),
                })?;
        }
        let mut rules = [false; 3];
        if has_dgc {
            for (i, r) in RULES.iter().enumerate() {
                rules[i] = all.iter().any(|(_, t)| declares(t, r));
            }
        }
        // Evaluate once with an empty input so rules that cannot evaluate fail at load.
        let mut probe = engine.clone();
        probe.set_input(regorus::Value::new_object());
        for (i, r) in RULES.iter().enumerate() {
            if rules[i] {
                probe
                    .eval_rule(format!("data.dgc.{r}"))
                    .map_err(|e| RegoError {
                        file: "policy".into(),
                        line: None,
                        message: format!("data.dgc.{r} does not evaluate: {e}"),
                    })?;
            }
        }
        Ok(Self {
            engine: Some(engine),
            pool: std::sync::Mutex::new(Vec::new()),
            rules,
            tests,
        })
    }

    pub fn new(cfg: &Config) -> Result<Self, String> {
        Self::with_sources(cfg, &[]).map_err(|e| e.to_string())
    }

    pub fn is_loaded(&self) -> bool {
        self.engine.is_some()
    }

    pub fn tests(&self) -> &[(String, String)] {
        &self.tests
    }

    /// Runs one Rego test rule; `Ok(true)` when it holds.
    pub fn run_test(&self, pkg: &str, rule: &str) -> Result<bool, String> {
        let Some(engine) = &self.engine else {
            return Err("no policy loaded".into());
        };
        let mut e = engine.clone();
        e.set_input(regorus::Value::new_object());
        let v = e
            .eval_rule(format!("{pkg}.{rule}"))
            .map_err(|e| e.to_string())?;
        Ok(v == regorus::Value::from(true))
    }

    /// The Rego input document for this call.
    pub fn input(cx: &Cx<'_>) -> Value {
        let p = cx.req.principal;
        json!({
            "principal": {"agent": p.agent, "key_id": p.key_id, "capabilities": p.capabilities},
            "action": serde_json::to_value(cx.req.action).unwrap_or(Value::Null),
            "context": serde_json::to_value(cx.req.context).unwrap_or(Value::Null),
            "taint": cx.taint,
            "autonomy": cx.autonomy,
            "phase": match cx.phase { super::Phase::Action => "action", super::Phase::Output(_) => "output" },
            "output": match cx.phase { super::Phase::Output(o) => Value::String(o.to_string()), super::Phase::Action => Value::Null },
        })
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let Some(engine) = &self.engine else {
            return GateOut::allow();
        };
        if !self.rules.iter().any(|r| *r) {
            return GateOut::allow();
        }
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut e = pooled.unwrap_or_else(|| engine.clone());
        e.set_input(regorus::Value::from(Self::input(cx)));
        let mut results: [Vec<Value>; 3] = Default::default();
        for (i, r) in RULES.iter().enumerate() {
            if !self.rules[i] {
                continue;
            }
            match e.eval_rule(format!("data.dgc.{r}")) {
                Ok(v) => results[i] = to_items(&v),
                Err(err) => {
                    // The engine is dropped, not pooled: its state after an error is unknown.
                    return GateOut::deny(format!(
                        "policy evaluation failed (fail closed): {}",
                        crate::text::excerpt(&err.to_string(), 200)
                    ));
                }
            }
        }
        if let Ok(mut p) = self.pool.lock()
            && p.len() < POOL_MAX
        {
            p.push(e);
        }
        let msg = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Object(o) => o
                .get("msg")
                .or_else(|| o.get("reason"))
                .and_then(Value::as_str)
                .map_or_else(|| v.to_string(), String::from),
            other => other.to_string(),
        };
        if !results[0].is_empty() {
            return GateOut::deny(results[0].iter().map(msg).collect::<Vec<_>>().join("; "));
        }
        if !results[1].is_empty() {
            return GateOut::approve(
                ApprovalClass::Policy,
                results[1].iter().map(msg).collect::<Vec<_>>().join("; "),
            );
        }
        if !results[2].is_empty() {
            let mut spans = Vec::new();
            let mut reasons = Vec::new();
            for item in &results[2] {
                let (path, reason) = match item {
                    Value::String(p) => (p.clone(), format!("redact {p}")),
                    Value::Object(o) => (
                        o.get("path")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        o.get("reason")
                            .and_then(Value::as_str)
                            .map_or_else(|| "policy redaction".into(), String::from),
                    ),
                    _ => continue,
                };
                let path = if path.is_empty() || path.starts_with('/') {
                    path
                } else {
                    format!("/{path}")
                };
                for (li, leaf) in cx.leaves.iter().enumerate() {
                    if leaf.pointer == path
                        || leaf.pointer.starts_with(&format!("{path}/"))
                        || (cx.is_output() && path.is_empty())
                    {
                        spans.push(Span {
                            leaf: li,
                            start: 0,
                            end: leaf.text.len(),
                            kind: "policy",
                        });
                    }
                }
                reasons.push(reason);
            }
            let mut out = GateOut::from(Verdict::Redact(reasons.join("; ")));
            out.spans = spans;
            return out;
        }
        GateOut::allow()
    }
}

/// Does the module text declare rule `name` (as `name contains`, `name[`, `name if`, `name :=`)?
fn declares(text: &str, name: &str) -> bool {
    // Over-approximate: any line starting with the name counts (`deny contains …`, `deny if`,
    // a head split across lines, `default deny := …`). Evaluating an extra rule is harmless;
    // missing one would silently ignore an operator's rule.
    text.lines().any(|l| {
        let l = l.trim_start();
        let l = l.strip_prefix("default").map_or(l, str::trim_start);
        l.strip_prefix(name).is_some_and(|rest| {
            rest.is_empty()
                || rest
                    .starts_with(|c: char| c.is_whitespace() || matches!(c, '[' | ':' | '=' | '{'))
        })
    })
}

fn to_items(v: &regorus::Value) -> Vec<Value> {
    if *v == regorus::Value::Undefined {
        return Vec::new();
    }
    match v
        .to_json_str()
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
    {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => Vec::new(),
        Some(Value::Bool(false)) => Vec::new(),
        Some(other) => vec![other],
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "rego deny",
        true,
        Some("deny"),
        r#"{"config":{"modules":[{"name":"t.rego","source":"package dgc\ndeny contains msg if {\n  input.action.tool == \"shell.exec\"\n  msg := \"no shell on weekends\"\n}\n"}]},"action":{"type":"tool_call","tool":"shell.exec","arguments":{"command":"ls"}}}"#,
    ),
    ex(
        "rego needs approval",
        true,
        Some("needs_approval"),
        r#"{"config":{"modules":[{"name":"t.rego","source":"package dgc\nneeds_approval contains \"large transfer\" if input.action.arguments.amount > 100\n"}]},"action":{"type":"tool_call","tool":"bank.transfer","arguments":{"amount":500}}}"#,
    ),
    ex(
        "rego redact",
        true,
        Some("redact"),
        r#"{"config":{"modules":[{"name":"t.rego","source":"package dgc\nredact contains \"/password\" if input.action.arguments.password\n"}]},"action":{"type":"tool_call","tool":"login","arguments":{"user":"a","password":"hunter2"}}}"#,
    ),
    ex(
        "rego not matching",
        false,
        None,
        r#"{"config":{"modules":[{"name":"t.rego","source":"package dgc\ndeny contains msg if {\n  input.action.tool == \"shell.exec\"\n  msg := \"no shell\"\n}\n"}]},"action":{"type":"tool_call","tool":"fs.read","arguments":{"path":"a"}}}"#,
    ),
    ex(
        "no policy loaded",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"shell.exec","arguments":{"command":"ls"}}}"#,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_declarations_are_found_in_any_layout() {
        assert!(declares("package dgc\ndeny contains m if { true }", "deny"));
        assert!(declares(
            "package dgc\n  deny\n    contains m if { true }",
            "deny"
        ));
        assert!(declares("default redact := set()", "redact"));
        assert!(!declares("denylist := [1]", "deny"));
        assert!(!declares("x := deny", "deny"));
    }

    #[test]
    fn invalid_policy_reports_line() {
        let cfg = Config {
            modules: vec![Module {
                name: "bad.rego".into(),
                source: "package dgc\n\ndeny contains msg if {\n  input.x ==\n}\n".into(),
            }],
            ..Config::default()
        };
        let err = Gate::with_sources(&cfg, &[]).unwrap_err();
        assert!(err.line.is_some(), "{err:?}");
        assert!(err.message.contains("bad.rego"), "{err:?}");
    }
}

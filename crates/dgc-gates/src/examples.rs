//! Runs gate examples: the embedded match/not-match examples of every gate (against the gate's
//! defaults plus the example's `config` overlay) and the operator's examples in `gates.toml`
//! (against the loaded policy). Used at policy load and by `dgc gates test`.

use std::collections::BTreeSet;

use dgc_types::CapabilitySet;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::decision::Verdict;
use crate::gates::{Cx, Example, GateId, GateOut, Gates, Phase, action_leaves};
use crate::model::{Action, GateRequest, Principal, StateSnapshot, TaskContext};
use crate::policy::{Autonomy, Policy, compile_gates};
use crate::text::string_leaves;

/// The shape of an example's `input`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleInput {
    pub action: Action,
    #[serde(default)]
    pub principal: Option<Principal>,
    #[serde(default)]
    pub context: Option<TaskContext>,
    #[serde(default)]
    pub state: Option<StateSnapshot>,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub config: Option<Value>,
}

/// One example's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleResult {
    pub gate: GateId,
    pub name: String,
    pub source: &'static str,
    pub passed: bool,
    pub detail: String,
}

impl ExampleResult {
    pub fn describe(&self) -> String {
        format!(
            "{} example `{}` ({}): {}",
            self.gate, self.name, self.source, self.detail
        )
    }
}

/// Defaults for example principals and contexts.
pub fn example_principal() -> Principal {
    Principal {
        capabilities: CapabilitySet::all(),
        key_id: Some("key_example".into()),
        agent: "ag_example".into(),
    }
}

/// Runs one gate on an example input with `gates`.
pub fn run_gate(gates: &Gates, id: GateId, input: &ExampleInput) -> Result<GateOut, String> {
    let principal = input.principal.clone().unwrap_or_else(example_principal);
    let mut context = input.context.clone().unwrap_or_default();
    let fp = crate::fingerprint(&input.action);
    for c in &mut context.recent_calls {
        if c == "@fp" {
            c.clone_from(&fp);
        }
    }
    let state = input.state.clone().unwrap_or_default();
    let req = GateRequest {
        principal: &principal,
        action: &input.action,
        context: &context,
        state: &state,
    };
    let leaves = match (&input.output, &input.action) {
        (Some(o), _) => vec![crate::text::Leaf {
            pointer: String::new(),
            key: "output",
            text: o.as_str(),
        }],
        (None, Action::ToolCall(t)) => {
            string_leaves(&t.arguments, 64, 100_000).map_err(|e| format!("{e:?}"))?
        }
        (None, a) => action_leaves(a),
    };
    let taint: BTreeSet<_> = context.taint.clone();
    let phase = match &input.output {
        Some(o) => Phase::Output(o),
        None => Phase::Action,
    };
    let cx = Cx {
        req,
        taint: &taint,
        leaves: &leaves,
        phase,
        autonomy: Autonomy::Guarded,
        cache: &crate::gates::GateCache::default(),
    };
    Ok(gates.check(id, &cx))
}

fn judge(out: &GateOut, fires: bool, decision: Option<&str>) -> Result<(), String> {
    let got = out.verdict.kind().as_str();
    if out.fired() != fires {
        return Err(format!(
            "expected the gate to {}, got {got}{}",
            if fires { "fire" } else { "allow without taint" },
            match &out.verdict {
                Verdict::Deny(r) | Verdict::Redact(r) | Verdict::NeedsApproval(_, r) =>
                    format!(" ({r})"),
                Verdict::Allow if !out.taint.is_empty() => format!(" with taint {:?}", out.taint),
                Verdict::Allow => String::new(),
            }
        ));
    }
    if let Some(d) = decision
        && d != got
    {
        return Err(format!("expected {d}, got {got}"));
    }
    Ok(())
}

fn default_gates() -> Result<Gates, String> {
    compile_gates(&json!({}), &[])
        .map(|(g, _, _)| g)
        .map_err(|e| e.to_string())
}

fn run_one(base: &Gates, id: GateId, ex: &Example) -> Result<(), String> {
    let input: ExampleInput =
        serde_json::from_str(ex.input).map_err(|e| format!("bad example input: {e}"))?;
    let owned;
    let gates = match &input.config {
        None => base,
        Some(cfg) => {
            let doc = json!({ id.as_str(): cfg });
            owned = compile_gates(&doc, &[])
                .map(|(g, _, _)| g)
                .map_err(|e| format!("bad example config: {e}"))?;
            &owned
        }
    };
    let out = run_gate(gates, id, &input)?;
    judge(&out, ex.fires, ex.decision)
}

/// Every gate's embedded examples.
pub fn run_embedded() -> Vec<ExampleResult> {
    let base = match default_gates() {
        Ok(g) => g,
        Err(e) => {
            return vec![ExampleResult {
                gate: GateId::Policy,
                name: "defaults compile".into(),
                source: "embedded",
                passed: false,
                detail: e,
            }];
        }
    };
    let mut out = Vec::new();
    for id in GateId::ALL {
        for ex in id.examples() {
            let r = run_one(&base, id, ex);
            out.push(ExampleResult {
                gate: id,
                name: ex.name.to_string(),
                source: "embedded",
                passed: r.is_ok(),
                detail: r.err().unwrap_or_else(|| "ok".into()),
            });
        }
    }
    out
}

/// The operator's examples, against the policy's own gates.
pub fn run_user(policy: &Policy) -> Vec<ExampleResult> {
    policy
        .user_examples()
        .iter()
        .map(|(id, ex)| {
            let r = (|| {
                let input: ExampleInput = serde_json::from_value(ex.input.clone())
                    .map_err(|e| format!("bad example input: {e}"))?;
                if input.config.is_some() {
                    return Err(
                        "operator examples run against the policy; remove `config`".to_string()
                    );
                }
                let out = run_gate(policy.gates(), *id, &input)?;
                match ex.expect.as_str() {
                    "match" => judge(&out, true, None),
                    "no_match" => judge(&out, false, None),
                    d @ ("allow" | "deny" | "needs_approval" | "redact") => {
                        let got = out.verdict.kind().as_str();
                        if got == d {
                            Ok(())
                        } else {
                            Err(format!("expected {d}, got {got}"))
                        }
                    }
                    other => Err(format!("unknown expectation `{other}`")),
                }
            })();
            ExampleResult {
                gate: *id,
                name: ex.name.clone(),
                source: "gates.toml",
                passed: r.is_ok(),
                detail: r.err().unwrap_or_else(|| "ok".into()),
            }
        })
        .collect()
}

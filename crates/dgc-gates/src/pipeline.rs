//! The pipeline: runs the gates in order under their modes, combines verdicts (strictest wins, a
//! deny short-circuits), applies autonomy and approvals, redacts, and produces the decision record
//! plus a [`GatedAction`] when the action may run. Also the output-side scan and approval resume.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::Value;
use sha2::Digest;

use crate::decision::{
    ApprovalAnswer, ApprovalItem, ApprovalRequest, Decision, DecisionKind, Evaluation, GateRecord,
    GatedAction, Mode, Outcome, Redaction, StateUpdate, Verdict,
};
use crate::gates::{Cx, GateId, Phase, Span, action_leaves};
use crate::model::{Action, GateRequest, Taint};
use crate::policy::Policy;
use crate::text::{Leaf, WalkError, canonical_json, redact_spans, string_leaves};

/// sha256 (hex) of the canonical JSON of an action: the provenance digest in every decision.
pub fn action_digest(action: &Action) -> String {
    let v = serde_json::to_value(action).unwrap_or(Value::Null);
    let mut s = String::new();
    canonical_json(&v, &mut s);
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// A short stable fingerprint of "the same call with the same arguments", for loop detection.
/// The runtime appends it to `TaskContext::recent_calls` after each call.
pub fn fingerprint(action: &Action) -> String {
    let mut s = String::from(action.kind());
    s.push('\0');
    s.push_str(action.target_name());
    s.push('\0');
    match action {
        Action::ToolCall(t) => canonical_json(&t.arguments, &mut s),
        other => canonical_json(&serde_json::to_value(other).unwrap_or(Value::Null), &mut s),
    }
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..16])
}

/// Judges an action before it runs.
pub fn evaluate(policy: &Policy, req: &GateRequest<'_>) -> Evaluation {
    run(policy, req, None)
}

/// Resumes a `needs_approval` decision with a human's answer. The action must be the one the
/// request was made for (same digest) and the request must not have expired (`context.now_ms`).
/// An approval re-runs the pipeline with the approved gates' `needs_approval` verdicts waived, so
/// state is re-checked and a deny still denies; a denial or expiry denies.
pub fn resume(
    policy: &Policy,
    req: &GateRequest<'_>,
    request: &ApprovalRequest,
    answer: &ApprovalAnswer,
) -> Evaluation {
    let digest = action_digest(req.action);
    let refuse = |reason: String| {
        let record = GateRecord {
            gate: "approval".into(),
            decision: DecisionKind::Deny,
            reason,
            mode: Mode::Enforce,
            elapsed_us: 0.0,
            approval_class: None,
            taint: Vec::new(),
            waived: None,
        };
        Evaluation {
            decision: Decision {
                decision: DecisionKind::Deny,
                gates: vec![record],
                taint: req.context.taint.clone(),
                redacted_arguments: None,
                redactions: Vec::new(),
                action_digest: digest.clone(),
                autonomy: policy.autonomy(),
                approval: None,
            },
            outcome: Outcome::Denied,
            updates: Vec::new(),
        }
    };
    if digest != request.action_digest {
        return refuse("the approval was given for a different action".into());
    }
    if req.context.now_ms > request.expires_at_ms {
        return refuse(format!(
            "the approval request expired at {} ms",
            request.expires_at_ms
        ));
    }
    match answer {
        ApprovalAnswer::Deny { by, reason } => refuse(format!(
            "denied by {by}{}",
            reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )),
        ApprovalAnswer::Approve { by } => run(policy, req, Some((by.as_str(), &request.gates))),
    }
}

/// One gate run's effective contribution.
struct Acc {
    records: Vec<GateRecord>,
    taint: BTreeSet<Taint>,
    spans: Vec<Span>,
    updates: Vec<StateUpdate>,
    approvals: Vec<ApprovalItem>,
    worst: DecisionKind,
    cache: crate::gates::GateCache,
}

fn limits_denial(
    policy: &Policy,
    req: &GateRequest<'_>,
    digest: String,
    reason: String,
) -> Evaluation {
    let record = GateRecord {
        gate: "input_limits".into(),
        decision: DecisionKind::Deny,
        reason,
        mode: Mode::Enforce,
        elapsed_us: 0.0,
        approval_class: None,
        taint: Vec::new(),
        waived: None,
    };
    Evaluation {
        decision: Decision {
            decision: DecisionKind::Deny,
            gates: vec![record],
            taint: req.context.taint.clone(),
            redacted_arguments: None,
            redactions: Vec::new(),
            action_digest: digest,
            autonomy: policy.autonomy(),
            approval: None,
        },
        outcome: Outcome::Denied,
        updates: Vec::new(),
    }
}

fn run(
    policy: &Policy,
    req: &GateRequest<'_>,
    approved: Option<(&str, &[ApprovalItem])>,
) -> Evaluation {
    let digest = action_digest(req.action);
    let lim = policy.limits();
    let leaves: Vec<Leaf<'_>> = match req.action {
        Action::ToolCall(t) => match string_leaves(&t.arguments, lim.max_depth, lim.max_strings) {
            Ok(l) => l,
            Err(WalkError::TooDeep(d)) => {
                return limits_denial(
                    policy,
                    req,
                    digest,
                    format!("arguments nest deeper than {d} levels"),
                );
            }
            Err(WalkError::TooMany(n)) => {
                return limits_denial(
                    policy,
                    req,
                    digest,
                    format!("arguments hold more than {n} strings"),
                );
            }
        },
        other => action_leaves(other),
    };
    let mut acc = Acc {
        records: Vec::with_capacity(22),
        taint: req.context.taint.clone(),
        spans: Vec::new(),
        updates: Vec::new(),
        approvals: Vec::new(),
        worst: DecisionKind::Allow,
        cache: crate::gates::GateCache::default(),
    };
    for id in GateId::ACTION_ORDER {
        if run_gate(policy, id, req, &leaves, Phase::Action, approved, &mut acc) {
            break;
        }
    }
    finish(policy, req, digest, &leaves, acc)
}

/// Runs one gate and folds its verdict in; returns true when a deny short-circuits.
fn run_gate(
    policy: &Policy,
    id: GateId,
    req: &GateRequest<'_>,
    leaves: &[Leaf<'_>],
    phase: Phase<'_>,
    approved: Option<(&str, &[ApprovalItem])>,
    acc: &mut Acc,
) -> bool {
    let mode = policy.mode(id);
    if mode == Mode::Off {
        acc.records.push(GateRecord {
            gate: id.as_str().into(),
            decision: DecisionKind::Allow,
            reason: "gate is off".into(),
            mode,
            elapsed_us: 0.0,
            approval_class: None,
            taint: Vec::new(),
            waived: None,
        });
        return false;
    }
    let started = Instant::now();
    let out = {
        let cx = Cx {
            req: *req,
            taint: &acc.taint,
            leaves,
            phase,
            autonomy: policy.autonomy(),
            cache: &acc.cache,
        };
        policy.gates().check(id, &cx)
    };
    let elapsed_us = (started.elapsed().as_nanos() as f64 / 10.0).round() / 100.0;
    let (kind, reason, class) = match &out.verdict {
        Verdict::Allow => (
            DecisionKind::Allow,
            out.note.clone().unwrap_or_default(),
            None,
        ),
        Verdict::Deny(r) => (DecisionKind::Deny, r.clone(), None),
        Verdict::NeedsApproval(c, r) => (DecisionKind::NeedsApproval, r.clone(), Some(*c)),
        Verdict::Redact(r) => (DecisionKind::Redact, r.clone(), None),
    };
    let mut record = GateRecord {
        gate: id.as_str().into(),
        decision: kind,
        reason,
        mode,
        elapsed_us,
        approval_class: class,
        taint: out.taint.clone(),
        waived: None,
    };
    if mode == Mode::Monitor {
        acc.records.push(record);
        return false;
    }
    acc.taint.extend(out.taint.iter().copied());
    acc.updates.extend(out.updates);
    let mut effective = kind;
    if let Verdict::NeedsApproval(class, reason) = &out.verdict {
        let approved_here = approved.and_then(|(by, items)| {
            items
                .iter()
                .any(|i| i.gate == id.as_str() && i.class == *class)
                .then_some(by)
        });
        if let Some(by) = approved_here {
            record.waived = Some(format!("approved by {by}"));
            effective = DecisionKind::Allow;
        } else if !policy.autonomy().asks(*class) {
            record.waived = Some(format!(
                "approval waived by autonomy level {}",
                policy.autonomy().as_str()
            ));
            effective = DecisionKind::Allow;
        } else {
            acc.approvals.push(ApprovalItem {
                gate: id.as_str().into(),
                class: *class,
                reason: reason.clone(),
            });
        }
    }
    if effective == DecisionKind::Redact {
        acc.spans.extend(out.spans);
    }
    acc.worst = acc.worst.max(effective);
    acc.records.push(record);
    effective == DecisionKind::Deny
}

/// Applies spans to the action's text fields; returns the redacted action and the list.
fn redact_action(action: &Action, leaves: &[Leaf<'_>], spans: &[Span]) -> (Action, Vec<Redaction>) {
    let mut by_leaf: BTreeMap<usize, Vec<(usize, usize, &'static str)>> = BTreeMap::new();
    for s in spans {
        by_leaf
            .entry(s.leaf)
            .or_default()
            .push((s.start, s.end, s.kind));
    }
    let mut out = action.clone();
    let mut list = Vec::new();
    for (li, mut sp) in by_leaf {
        let Some(leaf) = leaves.get(li) else { continue };
        let new_text = redact_spans(leaf.text, &mut sp);
        let mut kinds: Vec<&str> = sp.iter().map(|s| s.2).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for k in kinds {
            list.push(Redaction {
                path: leaf.pointer.clone(),
                kind: k.to_string(),
            });
        }
        match &mut out {
            Action::ToolCall(t) => {
                if let Some(v) = t.arguments.pointer_mut(&leaf.pointer) {
                    *v = Value::String(new_text);
                }
            }
            Action::ModelCall(m) if leaf.pointer == "/prompt" => m.prompt = new_text,
            Action::MemoryWrite(m) if leaf.pointer == "/content" => m.content = new_text,
            Action::Delegation(d) if leaf.pointer == "/input" => d.input = new_text,
            Action::OutboundMessage(o) if leaf.pointer == "/body" => o.body = new_text,
            Action::OutboundMessage(o) if leaf.pointer == "/destination" => {
                o.destination = new_text;
            }
            _ => {}
        }
    }
    (out, list)
}

/// A one-line human-readable description of the action, built from the redacted action.
pub fn summarize(principal_agent: &str, action: &Action) -> String {
    let who = if principal_agent.is_empty() {
        "An agent"
    } else {
        principal_agent
    };
    match action {
        Action::ToolCall(t) => {
            let mut args = String::new();
            canonical_json(&t.arguments, &mut args);
            format!(
                "{who} wants to call `{}` ({}{}) with arguments {}",
                t.tool,
                format_args!("risk {}", t.risk.as_str()),
                if t.server.is_some() {
                    if t.trusted {
                        ", trusted server"
                    } else {
                        ", untrusted server"
                    }
                } else {
                    ""
                },
                crate::text::excerpt(&args, 400)
            )
        }
        Action::ModelCall(m) => format!(
            "{who} wants to call model route `{}` (~{} tokens)",
            m.route, m.estimated_tokens
        ),
        Action::MemoryWrite(m) => format!(
            "{who} wants to write a {} memory: {}",
            m.kind,
            crate::text::excerpt(&m.content, 200)
        ),
        Action::Delegation(d) => format!(
            "{who} wants to delegate to `{}`: {}",
            d.target_agent,
            crate::text::excerpt(&d.input, 200)
        ),
        Action::OutboundMessage(o) => format!(
            "{who} wants to send a {} message to {}: {}",
            o.channel,
            crate::text::excerpt(&o.destination, 120),
            crate::text::excerpt(&o.body, 200)
        ),
    }
}

fn finish(
    policy: &Policy,
    req: &GateRequest<'_>,
    digest: String,
    leaves: &[Leaf<'_>],
    acc: Acc,
) -> Evaluation {
    let (action, redactions) = if acc.spans.is_empty() || acc.worst == DecisionKind::Deny {
        (req.action.clone(), Vec::new())
    } else {
        redact_action(req.action, leaves, &acc.spans)
    };
    let redacted_arguments = match (&action, redactions.is_empty()) {
        (Action::ToolCall(t), false) => Some(t.arguments.clone()),
        _ => None,
    };
    let mut decision = Decision {
        decision: acc.worst,
        gates: acc.records,
        taint: acc.taint,
        redacted_arguments,
        redactions,
        action_digest: digest,
        autonomy: policy.autonomy(),
        approval: None,
    };
    let outcome = match acc.worst {
        DecisionKind::Deny => Outcome::Denied,
        DecisionKind::NeedsApproval => {
            let request = ApprovalRequest {
                gates: acc.approvals,
                summary: summarize(&req.principal.agent, &action),
                action_digest: decision.action_digest.clone(),
                expires_at_ms: req.context.now_ms.saturating_add(policy.approval_ttl_ms()),
            };
            decision.approval = Some(request.clone());
            Outcome::NeedsApproval(request)
        }
        DecisionKind::Allow | DecisionKind::Redact => Outcome::Allowed(Box::new(GatedAction::new(
            action,
            decision.clone(),
            req.principal.agent.clone(),
            req.context.task_id.clone(),
        ))),
    };
    let updates = if matches!(outcome, Outcome::Allowed(_)) {
        acc.updates
    } else {
        Vec::new()
    };
    Evaluation {
        decision,
        outcome,
        updates,
    }
}

/// The result of scanning a tool's or model's output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputScan {
    pub decision: Decision,
    /// The output to pass on (redacted/truncated), or `None` when it must be withheld.
    pub output: Option<String>,
    /// True when the bytes were not valid UTF-8 (they were decoded lossily before scanning).
    pub lossy: bool,
}

/// Judges an output after execution: `output_limit`, `secrets_dlp`, `pii`, `prompt_injection`
/// (→ `untrusted_content` taint) and `content_safety` (model outputs). `req.action` is the action
/// that produced the output.
pub fn scan_output(policy: &Policy, req: &GateRequest<'_>, output: &[u8]) -> OutputScan {
    let digest = action_digest(req.action);
    let decoded = String::from_utf8_lossy(output);
    let lossy = matches!(decoded, std::borrow::Cow::Owned(_));
    let mut text: String = decoded.into_owned();
    let mut acc = Acc {
        records: Vec::with_capacity(5),
        taint: req.context.taint.clone(),
        spans: Vec::new(),
        updates: Vec::new(),
        approvals: Vec::new(),
        worst: DecisionKind::Allow,
        cache: crate::gates::GateCache::default(),
    };
    for id in GateId::OUTPUT_ORDER {
        // output_limit may replace the text; later gates scan the bounded text.
        let replacement = if id == GateId::OutputLimit && policy.mode(id) == Mode::Enforce {
            let leaves = [Leaf {
                pointer: String::new(),
                key: "output",
                text: &text,
            }];
            let cx = Cx {
                req: *req,
                taint: &acc.taint,
                leaves: &leaves,
                phase: Phase::Output(&text),
                autonomy: policy.autonomy(),
                cache: &acc.cache,
            };
            policy.gates().output_limit.check(&cx).replace_output
        } else {
            None
        };
        let leaves = [Leaf {
            pointer: String::new(),
            key: "output",
            text: &text,
        }];
        let stop = run_gate(
            policy,
            id,
            req,
            &leaves,
            Phase::Output(&text),
            None,
            &mut acc,
        );
        if let Some(r) = replacement {
            text = r;
        }
        if stop {
            break;
        }
    }
    if lossy && let Some(first) = acc.records.first_mut() {
        first.reason = format!(
            "{} (output was not valid UTF-8; decoded lossily)",
            first.reason
        )
        .trim()
        .to_string();
    }
    // Output-side approvals cannot pause a finished call: they withhold the output like a deny.
    let withhold = acc.worst >= DecisionKind::NeedsApproval;
    let mut redactions = Vec::new();
    let out_text = if withhold {
        None
    } else if acc.spans.is_empty() {
        Some(text)
    } else {
        let mut sp: Vec<(usize, usize, &'static str)> =
            acc.spans.iter().map(|s| (s.start, s.end, s.kind)).collect();
        let mut kinds: Vec<&str> = sp.iter().map(|s| s.2).collect();
        kinds.sort_unstable();
        kinds.dedup();
        redactions = kinds
            .into_iter()
            .map(|k| Redaction {
                path: String::new(),
                kind: k.into(),
            })
            .collect();
        Some(redact_spans(&text, &mut sp))
    };
    OutputScan {
        decision: Decision {
            decision: acc.worst,
            gates: acc.records,
            taint: acc.taint,
            redacted_arguments: None,
            redactions,
            action_digest: digest,
            autonomy: policy.autonomy(),
            approval: None,
        },
        output: out_text,
        lossy,
    }
}

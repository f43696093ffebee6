//! Verdicts, the wire-format decision record, approval requests and [`GatedAction`] — the
//! proof-carrying value that only this crate can construct.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Action, Taint};

/// The four outcomes, ordered from most to least permissive; `max` is "strictest wins".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Allow,
    Redact,
    NeedsApproval,
    Deny,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Allow => "allow",
            DecisionKind::Redact => "redact",
            DecisionKind::NeedsApproval => "needs_approval",
            DecisionKind::Deny => "deny",
        }
    }
}

impl fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a gate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The verdict counts.
    #[default]
    Enforce,
    /// The verdict is recorded but the action passes.
    Monitor,
    /// The gate does not run.
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
            Mode::Off => "off",
        }
    }
}

/// Why a human is asked; autonomy levels decide which classes actually ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalClass {
    /// Ordinary consent (side effects, spend above threshold, writes outside the workspace).
    Consent,
    /// Possibly destructive (ahimsa).
    Destructive,
    /// Irreversible without a checkpoint (reversibility).
    Irreversible,
    /// Private data + untrusted content + external communication.
    Trifecta,
    /// A budget would be exceeded.
    OverBudget,
    /// The operator's own rules (consent tool list, Rego `needs_approval`): asks unless autonomous.
    Policy,
}

impl ApprovalClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalClass::Consent => "consent",
            ApprovalClass::Destructive => "destructive",
            ApprovalClass::Irreversible => "irreversible",
            ApprovalClass::Trifecta => "trifecta",
            ApprovalClass::OverBudget => "over_budget",
            ApprovalClass::Policy => "policy",
        }
    }
}

/// A redaction applied to the action's arguments or to an output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    /// JSON pointer into the arguments (`/headers/authorization`), or `""` for outputs.
    pub path: String,
    /// Detector that matched (`aws_access_key`, `email`, `policy`), never the value.
    pub kind: String,
}

/// What one gate decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Allow,
    Deny(String),
    NeedsApproval(ApprovalClass, String),
    Redact(String),
}

impl Verdict {
    pub fn kind(&self) -> DecisionKind {
        match self {
            Verdict::Allow => DecisionKind::Allow,
            Verdict::Deny(_) => DecisionKind::Deny,
            Verdict::NeedsApproval(..) => DecisionKind::NeedsApproval,
            Verdict::Redact(_) => DecisionKind::Redact,
        }
    }
}

/// One gate's entry in a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateRecord {
    pub gate: String,
    /// What the gate decided (in monitor mode: what it would have decided).
    pub decision: DecisionKind,
    pub reason: String,
    pub mode: Mode,
    pub elapsed_us: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_class: Option<ApprovalClass>,
    /// Taint the gate added (or, in monitor mode, would have added).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taint: Vec<Taint>,
    /// Set when an autonomy level or a resumed approval waived this gate's `needs_approval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waived: Option<String>,
}

/// The wire format of a decision, used in API responses, steps and audit records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub decision: DecisionKind,
    pub gates: Vec<GateRecord>,
    /// The task's taint after this action.
    pub taint: BTreeSet<Taint>,
    /// Arguments after redaction (present when something was redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_arguments: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redactions: Vec<Redaction>,
    /// sha256 of the canonical action JSON before redaction (provenance, `satya`).
    pub action_digest: String,
    /// The autonomy level the decision was made under.
    pub autonomy: crate::policy::Autonomy,
    /// Set for `needs_approval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRequest>,
}

impl Decision {
    /// The first deny (or approval) reason, for error messages.
    pub fn primary_reason(&self) -> Option<&GateRecord> {
        self.gates
            .iter()
            .filter(|g| g.mode == Mode::Enforce && g.waived.is_none())
            .max_by_key(|g| g.decision)
            .filter(|g| g.decision != DecisionKind::Allow)
    }
}

/// A request for a human decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Gates (and classes) asking, with their reasons.
    pub gates: Vec<ApprovalItem>,
    /// A human-readable one-paragraph summary of the action.
    pub summary: String,
    /// The action's digest: an approval only resumes this exact action.
    pub action_digest: String,
    /// Milliseconds since epoch after which the request counts as denied.
    pub expires_at_ms: u64,
}

/// One gate's reason for asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalItem {
    pub gate: String,
    pub class: ApprovalClass,
    pub reason: String,
}

/// A human's answer to an [`ApprovalRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum ApprovalAnswer {
    Approve {
        by: String,
    },
    Deny {
        by: String,
        #[serde(default)]
        reason: Option<String>,
    },
}

/// An update to externally persisted state, applied by the runtime only if the action proceeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StateUpdate {
    /// Set a GCRA bucket's theoretical arrival time (µs since epoch).
    RateLimit { bucket: String, tat_us: u64 },
    /// Add to the agent's usage today.
    AgentDayUsage {
        tokens: u64,
        cost_usd: f64,
        tool_calls: u64,
    },
    /// Pin a tool's description hash (trust on first use).
    PinDescription { tool: String, sha256: String },
}

/// An action that passed the gates. Only this crate can construct one; the sandbox and tool
/// runtime accept nothing else. Deliberately neither `Clone` nor `Deserialize`.
#[derive(Debug)]
pub struct GatedAction {
    action: Action,
    decision: Decision,
    agent: String,
    task_id: Option<String>,
}

impl GatedAction {
    pub(crate) fn new(
        action: Action,
        decision: Decision,
        agent: String,
        task_id: Option<String>,
    ) -> Self {
        Self {
            action,
            decision,
            agent,
            task_id,
        }
    }

    /// The action to execute, with redactions applied.
    pub fn action(&self) -> &Action {
        &self.action
    }

    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    pub fn agent(&self) -> &str {
        &self.agent
    }

    pub fn task_id(&self) -> Option<&str> {
        self.task_id.as_deref()
    }

    /// Consumes the proof, e.g. once the sandbox has taken the action.
    pub fn into_parts(self) -> (Action, Decision) {
        (self.action, self.decision)
    }
}

/// What the caller does next.
#[derive(Debug)]
pub enum Outcome {
    /// Run it (possibly redacted).
    Allowed(Box<GatedAction>),
    /// Ask a human; resume with [`crate::resume`].
    NeedsApproval(ApprovalRequest),
    Denied,
}

/// The pipeline's result: the decision record, what to do, and state updates to persist if the
/// action proceeds.
#[derive(Debug)]
pub struct Evaluation {
    pub decision: Decision,
    pub outcome: Outcome,
    pub updates: Vec<StateUpdate>,
}

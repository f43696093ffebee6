//! Gate 4 `consent`: actions marked consent-required — by operator policy (tool globs), by the
//! `consentRequired` annotation, by spend above a threshold, by writes outside the workspace, or
//! (under `supervised` autonomy) any action with side effects — wait for a human.

use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, ex, glob_set};
use crate::decision::ApprovalClass;
use crate::model::{Action, RiskClass};
use crate::policy::Autonomy;

/// Configuration (`[gates.consent]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Tools that always need consent (operator policy; asks unless `autonomous`). Default empty.
    pub tools: Vec<String>,
    /// Spend (USD) above which a single action needs consent. Default 1.0.
    pub spend_threshold_usd: f64,
    /// Risk class at or above which a tool call needs consent. Default `critical`.
    pub risk_at_least: RiskClass,
    /// Writes outside the agent's writable roots need consent. Default true.
    pub writes_outside_workspace: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            tools: Vec::new(),
            spend_threshold_usd: 1.0,
            risk_at_least: RiskClass::Critical,
            writes_outside_workspace: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    cfg: Config,
    tools: globset::GlobSet,
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        if !cfg.spend_threshold_usd.is_finite() || cfg.spend_threshold_usd < 0.0 {
            return Err("spend_threshold_usd must be a non-negative number".into());
        }
        Ok(Self {
            cfg: cfg.clone(),
            tools: glob_set(&cfg.tools, "tools")?,
        })
    }

    pub fn check(&self, cx: &Cx<'_>, fs: &super::filesystem::Gate) -> GateOut {
        let a = cx.action();
        if let Action::ToolCall(t) = a {
            if self.tools.is_match(&t.tool) {
                return GateOut::approve(
                    ApprovalClass::Policy,
                    format!("operator policy requires consent for `{}`", t.tool),
                );
            }
            if t.annotations.consent_required == Some(true) {
                return GateOut::approve(
                    ApprovalClass::Policy,
                    format!("`{}` is annotated consent-required", t.tool),
                );
            }
            if t.risk >= self.cfg.risk_at_least {
                return GateOut::approve(
                    ApprovalClass::Consent,
                    format!("`{}` has risk class {}", t.tool, t.risk.as_str()),
                );
            }
        }
        let spend = match a {
            Action::ToolCall(t) => t.cost_usd.unwrap_or(0.0),
            Action::ModelCall(m) => m.estimated_cost_usd,
            _ => 0.0,
        };
        if spend > self.cfg.spend_threshold_usd {
            return GateOut::approve(
                ApprovalClass::Consent,
                format!(
                    "spend ${spend:.2} is above the ${:.2} consent threshold",
                    self.cfg.spend_threshold_usd
                ),
            );
        }
        if self.cfg.writes_outside_workspace
            && let Some(p) = fs.writes_outside_workspace(a)
        {
            return GateOut::approve(
                ApprovalClass::Consent,
                format!(
                    "write to `{}` outside the workspace",
                    crate::text::excerpt(&p, 120)
                ),
            );
        }
        if cx.autonomy == Autonomy::Supervised && has_side_effects(a) {
            return GateOut::approve(
                ApprovalClass::Consent,
                format!("supervised agent: {} has side effects", a.target_name()),
            );
        }
        GateOut::allow()
    }
}

/// Anything but a trusted read-only tool call or a model call.
fn has_side_effects(a: &Action) -> bool {
    match a {
        Action::ToolCall(t) => !(t.trusted && t.annotations.read_only_hint == Some(true)),
        Action::ModelCall(_) => false,
        _ => true,
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "operator-listed tool",
        true,
        Some("needs_approval"),
        r#"{"config":{"tools":["payments.*"]},"action":{"type":"tool_call","tool":"payments.refund"}}"#,
    ),
    ex(
        "spend above threshold",
        true,
        Some("needs_approval"),
        r#"{"action":{"type":"tool_call","tool":"api.render","cost_usd":3.5}}"#,
    ),
    ex(
        "critical risk",
        true,
        Some("needs_approval"),
        r#"{"action":{"type":"tool_call","tool":"prod.deploy","risk":"critical"}}"#,
    ),
    ex(
        "write outside workspace",
        true,
        Some("needs_approval"),
        r#"{"action":{"type":"tool_call","tool":"fs.write","arguments":{"path":"/srv/shared/notes.txt","content":"x"}}}"#,
    ),
    ex(
        "ordinary workspace write",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.write","arguments":{"path":"notes.txt","content":"x"}}}"#,
    ),
    ex(
        "cheap model call",
        false,
        None,
        r#"{"action":{"type":"model_call","route":"default","estimated_cost_usd":0.01}}"#,
    ),
];

//! Gate 5 `reversibility`: irreversible actions — destructive commands and annotations, outbound
//! messages, tools listed as irreversible, destructive non-idempotent trusted tools — need a
//! workspace checkpoint first, or a human's consent. When a checkpoint exists the decision
//! records it as the undo information.

use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, ex, glob_set};
use crate::decision::ApprovalClass;
use crate::model::Action;

/// Configuration (`[gates.reversibility]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Tools whose effects cannot be undone by a workspace checkpoint (they always ask).
    /// Default: payments, email and message sending, deploys.
    pub irreversible_tools: Vec<String>,
    /// Outbound messages are irreversible. Default true.
    pub outbound_messages: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            irreversible_tools: [
                "payments.*",
                "*.transfer*",
                "email.send*",
                "sms.send*",
                "*.deploy*",
                "*.publish*",
            ]
            .map(String::from)
            .to_vec(),
            outbound_messages: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    cfg: Config,
    irreversible: globset::GlobSet,
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        Ok(Self {
            cfg: cfg.clone(),
            irreversible: glob_set(&cfg.irreversible_tools, "irreversible_tools")?,
        })
    }

    pub fn check(&self, cx: &Cx<'_>, ahimsa: &super::ahimsa::Gate) -> GateOut {
        let a = cx.action();
        // Effects outside the workspace: a checkpoint cannot undo them.
        let external = match a {
            Action::OutboundMessage(o) if self.cfg.outbound_messages => {
                Some(format!("outbound {} message", o.channel))
            }
            Action::ToolCall(t) if self.irreversible.is_match(&t.tool) => {
                Some(format!("`{}` is irreversible", t.tool))
            }
            _ => None,
        };
        if let Some(why) = external {
            return GateOut::approve(
                ApprovalClass::Irreversible,
                format!("{why}; no checkpoint can undo it"),
            );
        }
        // Local destruction: fine with a checkpoint to roll back to.
        let local = match a {
            Action::ToolCall(t) => {
                let hits = ahimsa.cached_hits(cx);
                let rule = hits
                    .iter()
                    .find(|h| h.rule != "untrusted_tool")
                    .map(|h| h.rule);
                rule.map(str::to_string).or_else(|| {
                    (t.trusted
                        && t.annotations.destructive_hint == Some(true)
                        && t.annotations.idempotent_hint != Some(true))
                    .then(|| "destructive, non-idempotent tool".to_string())
                })
            }
            _ => None,
        };
        match (local, &cx.req.context.checkpoint) {
            (None, _) => GateOut::allow(),
            (Some(why), Some(cp)) => {
                let mut out = GateOut::allow();
                out.note = Some(format!("{why}; undo: roll back to checkpoint {cp}"));
                out
            }
            (Some(why), None) => GateOut::approve(
                ApprovalClass::Irreversible,
                format!("irreversible without a workspace checkpoint ({why})"),
            ),
        }
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "payment",
        true,
        Some("needs_approval"),
        r#"{"action":{"type":"tool_call","tool":"payments.charge","arguments":{"amount":10}}}"#,
    ),
    ex(
        "destructive without checkpoint",
        true,
        Some("needs_approval"),
        r#"{"action":{"type":"tool_call","tool":"fs.delete","trusted":true,"annotations":{"destructiveHint":true}}}"#,
    ),
    ex(
        "email",
        true,
        Some("needs_approval"),
        r#"{"action":{"type":"outbound_message","channel":"email","destination":"a@b.example.com","body":"x"}}"#,
    ),
    ex(
        "destructive with checkpoint",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.delete","trusted":true,"annotations":{"destructiveHint":true}},"context":{"checkpoint":"cp_1"}}"#,
    ),
    ex(
        "read",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.read","arguments":{"path":"a"}}}"#,
    ),
];

//! Gate 3 `satya` (truth): fails closed when the action cannot be recorded in the audit log,
//! attaches provenance (the action digest in every decision), and denies tools whose pinned
//! description changed.

use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, ex};
use crate::model::Action;

/// Configuration (`[gates.satya]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Deny when the snapshot says the audit log is unavailable. Default true.
    pub require_audit: bool,
    /// Deny a tool whose description hash differs from its pin. Default true.
    pub enforce_pins: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            require_audit: true,
            enforce_pins: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    cfg: Config,
}

/// sha256 hex of a tool description, the value pinned in [`crate::StateSnapshot::pinned_descriptions`].
pub fn description_hash(description: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(description.as_bytes()))
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        Ok(Self { cfg: cfg.clone() })
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        if self.cfg.require_audit && !cx.req.state.audit_ok() {
            return GateOut::deny(
                "the audit log cannot record this action; refusing (fail closed)",
            );
        }
        if self.cfg.enforce_pins
            && let Action::ToolCall(t) = cx.action()
            && let Some(desc) = &t.description
            && let Some(pin) = cx.req.state.pinned_descriptions.get(&t.tool)
            && *pin != description_hash(desc)
        {
            return GateOut::deny(format!(
                "the description of `{}` changed since it was pinned; re-approve the tool",
                t.tool
            ));
        }
        GateOut::allow()
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "audit unavailable",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"fs.read"},"state":{"audit_available":false}}"#,
    ),
    ex(
        "changed description",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"mcp.x.y","description":"new text"},"state":{"pinned_descriptions":{"mcp.x.y":"00"}}}"#,
    ),
    ex(
        "audit available, no pin",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"mcp.x.y","description":"Returns the time."},"state":{"audit_available":true}}"#,
    ),
];

//! Gate 7 `tool_policy`: the agent's allow/deny globs over tool names (deny wins).

use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, ex, glob_set};
use crate::model::Action;

/// Configuration (`[gates.tool_policy]`, usually per agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Tools the agent may call. Default `["*"]`.
    pub allow: Vec<String>,
    /// Tools the agent may never call; wins over `allow`. Default empty.
    pub deny: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            allow: vec!["*".into()],
            deny: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    allow: globset::GlobSet,
    deny: globset::GlobSet,
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        Ok(Self {
            allow: glob_set(&cfg.allow, "allow")?,
            deny: glob_set(&cfg.deny, "deny")?,
        })
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let Action::ToolCall(t) = cx.action() else {
            return GateOut::allow();
        };
        if self.deny.is_match(&t.tool) {
            return GateOut::deny(format!("tool `{}` is on the agent's deny list", t.tool));
        }
        if !self.allow.is_match(&t.tool) {
            return GateOut::deny(format!(
                "tool `{}` is not on the agent's allow list",
                t.tool
            ));
        }
        GateOut::allow()
    }
}

/// Examples may carry a `config` overlay; without one they run under the defaults.
pub const EXAMPLES: &[Example] = &[
    ex(
        "any tool under defaults",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.read"}}"#,
    ),
    ex(
        "denied glob wins",
        true,
        Some("deny"),
        r#"{"config":{"allow":["*"],"deny":["shell.*"]},"action":{"type":"tool_call","tool":"shell.exec"}}"#,
    ),
    ex(
        "not on allow list",
        true,
        Some("deny"),
        r#"{"config":{"allow":["fs.*"]},"action":{"type":"tool_call","tool":"http.fetch"}}"#,
    ),
    ex(
        "on allow list",
        false,
        None,
        r#"{"config":{"allow":["fs.*","mcp.time.*"]},"action":{"type":"tool_call","tool":"mcp.time.now"}}"#,
    ),
];

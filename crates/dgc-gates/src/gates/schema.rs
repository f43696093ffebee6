//! Gate 8 `schema`: a tool call's arguments validate against the tool's JSON Schema.

use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, ex};
use crate::model::Action;

/// Configuration (`[gates.schema]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Deny tool calls whose tool declares no schema. Default false.
    pub require_schema: bool,
    /// Most validation errors quoted in the reason. Default 3.
    pub max_errors: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            require_schema: false,
            max_errors: 3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    cfg: Config,
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        Ok(Self {
            cfg: Config {
                max_errors: cfg.max_errors.clamp(1, 20),
                ..cfg.clone()
            },
        })
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let Action::ToolCall(t) = cx.action() else {
            return GateOut::allow();
        };
        match &t.schema {
            None if self.cfg.require_schema => {
                GateOut::deny(format!("tool `{}` declares no input schema", t.tool))
            }
            None => GateOut::allow(),
            Some(s) => {
                let errors = s.errors(&t.arguments, self.cfg.max_errors);
                if errors.is_empty() {
                    GateOut::allow()
                } else {
                    GateOut::deny(format!(
                        "arguments do not match the tool's schema: {}",
                        errors.join("; ")
                    ))
                }
            }
        }
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "missing required",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"fs.read","schema":{"type":"object","required":["path"],"properties":{"path":{"type":"string"}}},"arguments":{}}}"#,
    ),
    ex(
        "wrong type",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"fs.read","schema":{"type":"object","properties":{"path":{"type":"string"}}},"arguments":{"path":7}}}"#,
    ),
    ex(
        "no schema required",
        true,
        Some("deny"),
        r#"{"config":{"require_schema":true},"action":{"type":"tool_call","tool":"fs.read"}}"#,
    ),
    ex(
        "valid",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.read","schema":{"type":"object","required":["path"],"properties":{"path":{"type":"string","pattern":"^[a-z/]+$"}},"additionalProperties":false},"arguments":{"path":"/workspace/a"}}}"#,
    ),
];

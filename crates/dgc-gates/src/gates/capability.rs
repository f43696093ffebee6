//! Gate 6 `capability`: the caller's effective capabilities (key grants narrowed by
//! `X-DGC-Capability`) cover every capability the action requires.

use std::collections::BTreeMap;

use dgc_types::Capability;
use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, ex};
use crate::model::Action;

/// Configuration (`[gates.capability]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Capabilities implied by the action type, on top of a tool's `requires`.
    /// Default: `memory_write → memory.write`, `delegation → tasks.submit`.
    pub implied: BTreeMap<String, Vec<String>>,
}

impl Default for Config {
    fn default() -> Self {
        let mut implied = BTreeMap::new();
        implied.insert("memory_write".to_string(), vec!["memory.write".to_string()]);
        implied.insert("delegation".to_string(), vec!["tasks.submit".to_string()]);
        Self { implied }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    implied: BTreeMap<String, Vec<Capability>>,
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        let mut implied = BTreeMap::new();
        for (kind, caps) in &cfg.implied {
            if ![
                "tool_call",
                "model_call",
                "memory_write",
                "delegation",
                "outbound_message",
            ]
            .contains(&kind.as_str())
            {
                return Err(format!("implied: unknown action type `{kind}`"));
            }
            let parsed = caps
                .iter()
                .map(|c| Capability::parse(c).map_err(|e| format!("implied.{kind}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            implied.insert(kind.clone(), parsed);
        }
        Ok(Self { implied })
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let have = &cx.req.principal.capabilities;
        let mut missing = Vec::new();
        if let Action::ToolCall(t) = cx.action() {
            for r in &t.requires {
                match Capability::parse(r) {
                    Ok(c) if have.allows(&c) => {}
                    Ok(_) => missing.push(r.clone()),
                    // A tool declaring a malformed capability can never be satisfied: fail closed.
                    Err(e) => {
                        return GateOut::deny(format!("tool declares an invalid capability: {e}"));
                    }
                }
            }
        }
        if let Some(caps) = self.implied.get(cx.action().kind()) {
            missing.extend(
                caps.iter()
                    .filter(|c| !have.allows(c))
                    .map(|c| c.to_string()),
            );
        }
        if missing.is_empty() {
            GateOut::allow()
        } else {
            GateOut::deny(format!("missing capabilities: {}", missing.join(", ")))
        }
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "exec without proc.exec",
        true,
        Some("deny"),
        r#"{"principal":{"capabilities":["fs.read"]},"action":{"type":"tool_call","tool":"shell.exec","requires":["proc.exec"]}}"#,
    ),
    ex(
        "wildcard grant covers",
        false,
        None,
        r#"{"principal":{"capabilities":["fs.*"]},"action":{"type":"tool_call","tool":"fs.read","requires":["fs.read"]}}"#,
    ),
    ex(
        "memory write needs memory.write",
        true,
        Some("deny"),
        r#"{"principal":{"capabilities":["memory.read"]},"action":{"type":"memory_write","content":"x"}}"#,
    ),
    ex(
        "exact grant",
        false,
        None,
        r#"{"principal":{"capabilities":["proc.exec"]},"action":{"type":"tool_call","tool":"shell.exec","requires":["proc.exec"]}}"#,
    ),
];

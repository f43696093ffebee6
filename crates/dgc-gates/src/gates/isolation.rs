//! Gate 19 `isolation`: each risk class and capability needs a minimum sandbox tier
//! (`proc.exec` never runs unsandboxed; an operator may require gVisor).

use std::collections::BTreeMap;

use dgc_types::{Capability, SandboxTier};
use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, ex};
use crate::model::{Action, RiskClass};

/// A tier requirement: `none` (in-process is fine) or a sandbox tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MinTier {
    None,
    Wasm,
    Process,
    Gvisor,
}

impl MinTier {
    pub fn as_str(self) -> &'static str {
        match self {
            MinTier::None => "none",
            MinTier::Wasm => "wasm",
            MinTier::Process => "process",
            MinTier::Gvisor => "gvisor",
        }
    }

    fn satisfied_by(self, t: Option<SandboxTier>) -> bool {
        match (self, t) {
            (MinTier::None, _) => true,
            (_, None) => false,
            (MinTier::Wasm, Some(_)) => true,
            (MinTier::Process, Some(t)) => t >= SandboxTier::Process,
            (MinTier::Gvisor, Some(t)) => t >= SandboxTier::Gvisor,
        }
    }
}

/// Configuration (`[gates.isolation]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Minimum tier per risk class. Default: low `none`, medium `none`, high `process`,
    /// critical `process`.
    pub by_risk: BTreeMap<RiskClass, MinTier>,
    /// Minimum tier per required capability (wildcards allowed). Default:
    /// `proc.exec → process`, `fs.write → wasm`.
    pub by_capability: BTreeMap<String, MinTier>,
    /// Raise every sandboxed requirement to gVisor. Default false.
    pub require_gvisor: bool,
}

impl Default for Config {
    fn default() -> Self {
        let by_risk = [
            (RiskClass::Low, MinTier::None),
            (RiskClass::Medium, MinTier::None),
            (RiskClass::High, MinTier::Process),
            (RiskClass::Critical, MinTier::Process),
        ]
        .into_iter()
        .collect();
        let by_capability = [
            ("proc.exec".to_string(), MinTier::Process),
            ("fs.write".to_string(), MinTier::Wasm),
        ]
        .into_iter()
        .collect();
        Self {
            by_risk,
            by_capability,
            require_gvisor: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    by_risk: BTreeMap<RiskClass, MinTier>,
    by_capability: Vec<(Capability, MinTier)>,
    require_gvisor: bool,
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        let by_capability = cfg
            .by_capability
            .iter()
            .map(|(c, t)| {
                Capability::parse(c)
                    .map(|c| (c, *t))
                    .map_err(|e| format!("by_capability: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            by_risk: cfg.by_risk.clone(),
            by_capability,
            require_gvisor: cfg.require_gvisor,
        })
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let Action::ToolCall(t) = cx.action() else {
            return GateOut::allow();
        };
        let mut need = self.by_risk.get(&t.risk).copied().unwrap_or(MinTier::None);
        let mut why = format!("risk class {}", t.risk.as_str());
        for r in &t.requires {
            let Ok(cap) = Capability::parse(r) else {
                continue;
            };
            for (pat, tier) in &self.by_capability {
                if pat.covers(&cap) && *tier > need {
                    need = *tier;
                    why = format!("capability {r}");
                }
            }
        }
        if self.require_gvisor && need > MinTier::None {
            need = MinTier::Gvisor;
            why.push_str(" (operator requires gvisor)");
        }
        if need.satisfied_by(t.sandbox) {
            GateOut::allow()
        } else {
            let have = t.sandbox.map_or("unsandboxed".to_string(), |s| {
                format!("{s:?}").to_lowercase()
            });
            GateOut::deny(format!(
                "{why} needs at least the {} tier, but the call would run {have}",
                need.as_str()
            ))
        }
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "exec unsandboxed",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"shell.exec","requires":["proc.exec"],"sandbox":null}}"#,
    ),
    ex(
        "exec in wasm",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"shell.exec","requires":["proc.exec"],"sandbox":"wasm"}}"#,
    ),
    ex(
        "exec in process tier",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"shell.exec","requires":["proc.exec"],"sandbox":"process"}}"#,
    ),
    ex(
        "gvisor required",
        true,
        Some("deny"),
        r#"{"config":{"require_gvisor":true},"action":{"type":"tool_call","tool":"shell.exec","requires":["proc.exec"],"sandbox":"process"}}"#,
    ),
    ex(
        "low risk read in-process",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"memory.search","risk":"low","requires":["memory.read"],"sandbox":null}}"#,
    ),
];

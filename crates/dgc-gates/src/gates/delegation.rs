//! Gate 20 `delegation`: cross-agent delegation — the target advertises the capability asked of
//! it, the child's capabilities are a subset of the parent's, and the chain stays shallow.

use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, ex};
use crate::model::Action;

/// Configuration (`[gates.delegation]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Deepest delegation chain (the new child's depth). Default 3.
    pub max_depth: u32,
    /// Agents this agent may delegate to (globs). Default `["*"]`.
    pub targets: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_depth: 3,
            targets: vec!["*".into()],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    max_depth: u32,
    targets: globset::GlobSet,
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        Ok(Self {
            max_depth: cfg.max_depth,
            targets: super::glob_set(&cfg.targets, "targets")?,
        })
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let Action::Delegation(d) = cx.action() else {
            return GateOut::allow();
        };
        if d.target_agent == cx.req.principal.agent {
            return GateOut::deny("an agent cannot delegate to itself");
        }
        if !self.targets.is_match(&d.target_agent) {
            return GateOut::deny(format!(
                "delegation to `{}` is not allowed for this agent",
                d.target_agent
            ));
        }
        let depth = cx.req.context.delegation_depth + 1;
        if depth > self.max_depth {
            return GateOut::deny(format!(
                "delegation depth {depth} exceeds {}",
                self.max_depth
            ));
        }
        if let Some(cap) = &d.capability
            && !d.target_advertises.allows_str(cap)
        {
            return GateOut::deny(format!("`{}` does not advertise `{cap}`", d.target_agent));
        }
        let parent = &cx.req.principal.capabilities;
        if !parent.is_superset_of(&d.child_capabilities) {
            let missing: Vec<String> = parent
                .missing_from(&d.child_capabilities)
                .iter()
                .map(|c| c.to_string())
                .collect();
            return GateOut::deny(format!(
                "child capabilities exceed the parent's: {}",
                missing.join(", ")
            ));
        }
        GateOut::allow()
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "child wider than parent",
        true,
        Some("deny"),
        r#"{"principal":{"agent":"ag_a","capabilities":["fs.read"]},"action":{"type":"delegation","target_agent":"ag_b","child_capabilities":["fs.*"]}}"#,
    ),
    ex(
        "target does not advertise",
        true,
        Some("deny"),
        r#"{"principal":{"agent":"ag_a","capabilities":["*"]},"action":{"type":"delegation","target_agent":"ag_b","capability":"net.http","target_advertises":["fs.read"]}}"#,
    ),
    ex(
        "too deep",
        true,
        Some("deny"),
        r#"{"principal":{"agent":"ag_a","capabilities":["*"]},"action":{"type":"delegation","target_agent":"ag_b"},"context":{"delegation_depth":3}}"#,
    ),
    ex(
        "narrowed child",
        false,
        None,
        r#"{"principal":{"agent":"ag_a","capabilities":["fs.*","net.http"]},"action":{"type":"delegation","target_agent":"ag_b","capability":"fs.read","target_advertises":["fs.read"],"child_capabilities":["fs.read"]}}"#,
    ),
];

//! Gate 2 `vyavasthit` (natural order): keeps a task inside its declared bounds — steps, tool
//! calls, delegation depth, wall-clock time — and stops loops (the same call, same arguments,
//! repeated).

use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, ex};
use crate::model::Action;

/// Configuration (`[gates.vyavasthit]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Most steps (any action) per task. Default 200.
    pub max_steps: u64,
    /// Most tool calls per task. Default 100.
    pub max_tool_calls: u64,
    /// Deepest delegation chain. Default 4.
    pub max_delegation_depth: u32,
    /// Wall-clock budget per task in seconds. Default 3600.
    pub max_wall_clock_secs: u64,
    /// Deny when the same call (tool + arguments) already appears this many times among the
    /// task's recent calls. Default 3 (the fourth identical call is denied). 0 disables.
    pub loop_threshold: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_steps: 200,
            max_tool_calls: 100,
            max_delegation_depth: 4,
            max_wall_clock_secs: 3600,
            loop_threshold: 3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    cfg: Config,
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        if cfg.max_steps == 0 || cfg.max_tool_calls == 0 || cfg.max_wall_clock_secs == 0 {
            return Err(
                "max_steps, max_tool_calls and max_wall_clock_secs must be positive".into(),
            );
        }
        Ok(Self { cfg: cfg.clone() })
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let c = cx.req.context;
        let cfg = &self.cfg;
        if c.steps >= cfg.max_steps {
            return GateOut::deny(format!("task reached its step limit ({})", cfg.max_steps));
        }
        let is_tool = matches!(cx.action(), Action::ToolCall(_));
        if is_tool && c.used.tool_calls >= cfg.max_tool_calls {
            return GateOut::deny(format!(
                "task reached its tool-call limit ({})",
                cfg.max_tool_calls
            ));
        }
        let depth = c.delegation_depth + u32::from(matches!(cx.action(), Action::Delegation(_)));
        if depth > cfg.max_delegation_depth {
            return GateOut::deny(format!(
                "delegation depth {depth} exceeds {}",
                cfg.max_delegation_depth
            ));
        }
        if c.started_at_ms > 0 && c.now_ms > c.started_at_ms {
            let elapsed = (c.now_ms - c.started_at_ms) / 1000;
            if elapsed >= cfg.max_wall_clock_secs {
                return GateOut::deny(format!(
                    "task ran {elapsed}s, over its wall-clock budget of {}s",
                    cfg.max_wall_clock_secs
                ));
            }
        }
        if cfg.loop_threshold > 0 && !c.recent_calls.is_empty() {
            let fp = crate::fingerprint(cx.action());
            let n = c.recent_calls.iter().filter(|f| **f == fp).count();
            if n >= cfg.loop_threshold {
                return GateOut::deny(format!(
                    "loop detected: the same {} call with the same arguments ran {n} times",
                    cx.action().target_name()
                ));
            }
        }
        GateOut::allow()
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "step limit",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"fs.read"},"context":{"steps":200}}"#,
    ),
    ex(
        "tool-call limit",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"fs.read"},"context":{"used":{"tool_calls":100}}}"#,
    ),
    ex(
        "wall clock",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"fs.read"},"context":{"started_at_ms":1000,"now_ms":3601000}}"#,
    ),
    ex(
        "delegation depth",
        true,
        Some("deny"),
        r#"{"action":{"type":"delegation","target_agent":"ag_b"},"context":{"delegation_depth":4}}"#,
    ),
    ex(
        "loop",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"fs.read","arguments":{"path":"a"}},"context":{"recent_calls":["@fp","@fp","@fp"]}}"#,
    ),
    ex(
        "within bounds",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.read","arguments":{"path":"a"}},"context":{"steps":3,"recent_calls":["@fp"]}}"#,
    ),
];

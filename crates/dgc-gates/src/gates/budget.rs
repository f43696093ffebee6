//! Gate 17 `budget`: token, cost and tool-call budgets per task and per agent per day. Usage is
//! read from the task context and the snapshot; the increment comes back as a state update.

use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, ex};
use crate::decision::{ApprovalClass, StateUpdate};
use crate::model::{Action, Usage};

/// Limits on one scope; `None` = unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
    pub tool_calls: Option<u64>,
}

/// What happens when a budget would be exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExceed {
    /// Ask a human (an `over_budget` approval). Default.
    #[default]
    NeedsApproval,
    Deny,
}

/// Configuration (`[gates.budget]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Per task. Default 200k tokens, $5, 100 tool calls.
    pub task: Limits,
    /// Per agent per UTC day. Default 2M tokens, $50, 2000 tool calls.
    pub agent_day: Limits,
    pub on_exceed: OnExceed,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            task: Limits {
                tokens: Some(200_000),
                cost_usd: Some(5.0),
                tool_calls: Some(100),
            },
            agent_day: Limits {
                tokens: Some(2_000_000),
                cost_usd: Some(50.0),
                tool_calls: Some(2000),
            },
            on_exceed: OnExceed::NeedsApproval,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    cfg: Config,
}

/// What this action would add.
fn cost_of(a: &Action) -> Usage {
    match a {
        Action::ToolCall(t) => Usage {
            tokens: 0,
            cost_usd: t.cost_usd.unwrap_or(0.0).max(0.0),
            tool_calls: 1,
        },
        Action::ModelCall(m) => Usage {
            tokens: m.estimated_tokens,
            cost_usd: m.estimated_cost_usd.max(0.0),
            tool_calls: 0,
        },
        _ => Usage::default(),
    }
}

fn over(scope: &str, used: &Usage, add: &Usage, l: &Limits) -> Option<String> {
    if let Some(max) = l.tokens
        && add.tokens > 0
        && used.tokens.saturating_add(add.tokens) > max
    {
        return Some(format!(
            "{scope} token budget {max} would be exceeded ({} used + {})",
            used.tokens, add.tokens
        ));
    }
    if let Some(max) = l.cost_usd
        && add.cost_usd > 0.0
        && used.cost_usd + add.cost_usd > max
    {
        return Some(format!(
            "{scope} cost budget ${max:.2} would be exceeded (${:.4} used + ${:.4})",
            used.cost_usd, add.cost_usd
        ));
    }
    if let Some(max) = l.tool_calls
        && add.tool_calls > 0
        && used.tool_calls.saturating_add(add.tool_calls) > max
    {
        return Some(format!("{scope} tool-call budget {max} would be exceeded"));
    }
    None
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        for l in [&cfg.task, &cfg.agent_day] {
            if l.cost_usd.is_some_and(|c| !c.is_finite() || c < 0.0) {
                return Err("cost_usd must be a non-negative number".into());
            }
        }
        Ok(Self { cfg: cfg.clone() })
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let add = cost_of(cx.action());
        if !add.cost_usd.is_finite() {
            return GateOut::deny("the action's cost estimate is not a finite number");
        }
        let reason = over("task", &cx.req.context.used, &add, &self.cfg.task).or_else(|| {
            over(
                "agent daily",
                &cx.req.state.agent_day,
                &add,
                &self.cfg.agent_day,
            )
        });
        let mut out = match (reason, self.cfg.on_exceed) {
            (None, _) => GateOut::allow(),
            (Some(r), OnExceed::Deny) => GateOut::deny(r),
            (Some(r), OnExceed::NeedsApproval) => GateOut::approve(ApprovalClass::OverBudget, r),
        };
        if add != Usage::default() {
            out.updates.push(StateUpdate::AgentDayUsage {
                tokens: add.tokens,
                cost_usd: add.cost_usd,
                tool_calls: add.tool_calls,
            });
        }
        out
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "task tokens exhausted",
        true,
        Some("needs_approval"),
        r#"{"action":{"type":"model_call","route":"default","estimated_tokens":5000},"context":{"used":{"tokens":199000}}}"#,
    ),
    ex(
        "daily cost exhausted",
        true,
        Some("needs_approval"),
        r#"{"action":{"type":"tool_call","tool":"api.pay","cost_usd":2.0},"state":{"agent_day":{"cost_usd":49.5}}}"#,
    ),
    ex(
        "deny mode",
        true,
        Some("deny"),
        r#"{"config":{"on_exceed":"deny"},"action":{"type":"tool_call","tool":"fs.read"},"context":{"used":{"tool_calls":100}}}"#,
    ),
    ex(
        "within budget",
        false,
        None,
        r#"{"action":{"type":"model_call","route":"default","estimated_tokens":5000},"context":{"used":{"tokens":1000}}}"#,
    ),
];

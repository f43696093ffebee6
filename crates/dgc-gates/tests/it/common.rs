//! Shared helpers: building requests from JSON and evaluating them.

use dgc_gates::{Action, Evaluation, GateRequest, Policy, Principal, StateSnapshot, TaskContext};
use serde_json::{Value, json};

pub const NOW: u64 = 1_800_000_000_000;

pub struct Req {
    pub principal: Principal,
    pub action: Action,
    pub context: TaskContext,
    pub state: StateSnapshot,
}

impl Req {
    pub fn new(action: Value) -> Self {
        Self::with(
            json!({"capabilities": ["*"], "agent": "ag_test", "key_id": "key_test"}),
            action,
            json!({}),
        )
    }

    pub fn with(principal: Value, action: Value, context: Value) -> Self {
        let mut context: TaskContext = serde_json::from_value(context).expect("context");
        if context.now_ms == 0 {
            context.now_ms = NOW;
        }
        Self {
            principal: serde_json::from_value(principal).expect("principal"),
            action: serde_json::from_value(action).expect("action"),
            context,
            state: StateSnapshot::default(),
        }
    }

    pub fn req(&self) -> GateRequest<'_> {
        GateRequest {
            principal: &self.principal,
            action: &self.action,
            context: &self.context,
            state: &self.state,
        }
    }

    pub fn eval(&self, p: &Policy) -> Evaluation {
        dgc_gates::evaluate(p, &self.req())
    }
}

pub fn builtin() -> Policy {
    Policy::builtin().expect("builtin policy")
}

pub fn policy(toml: &str) -> Policy {
    Policy::from_toml_str(toml, Vec::new()).expect("policy")
}

pub fn shell(cmd: &str) -> Value {
    json!({"type": "tool_call", "tool": "shell.exec", "requires": ["proc.exec"], "arguments": {"command": cmd}})
}

pub fn gate<'a>(ev: &'a Evaluation, name: &str) -> &'a dgc_gates::GateRecord {
    ev.decision
        .gates
        .iter()
        .find(|g| g.gate == name)
        .unwrap_or_else(|| panic!("gate {name} did not run: {:?}", ev.decision.gates))
}

//! The fuzz entry point, shared by the cargo-fuzz target (`fuzz/fuzz_targets/pipeline.rs`) and
//! the corpus-replay integration test: any byte string goes through the pipeline as a JSON input
//! document and as raw shell/SQL/URL/path/output text. It must never panic.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::cli::EvalInput;
use crate::model::{Action, GateRequest, Principal, StateSnapshot, TaskContext, ToolCall};
use crate::policy::Policy;

const REGO: &str = "package dgc\n\
deny contains msg if {\n  input.action.tool == \"fuzz.deny\"\n  msg := sprintf(\"%v\", [input.action.arguments])\n}\n\
redact contains \"/secret\" if input.action.arguments.secret\n";

fn policy() -> Option<&'static Policy> {
    static P: OnceLock<Option<Policy>> = OnceLock::new();
    P.get_or_init(|| {
        let doc = json!({"gates": {"content_safety": {"mode": "enforce"}, "egress": {"allow": ["*.example.com"]}}});
        Policy::from_value(doc, vec![("fuzz.rego".into(), REGO.into())]).ok()
    })
    .as_ref()
}

/// Runs `data` through every entry point.
pub fn run(data: &[u8]) {
    let Some(p) = policy() else { return };
    if let Ok(input) = serde_json::from_slice::<EvalInput>(data) {
        let req = GateRequest {
            principal: &input.principal,
            action: &input.action,
            context: &input.context,
            state: &input.state,
        };
        let ev = crate::evaluate(p, &req);
        let _ = serde_json::to_string(&ev.decision);
        if let Some(o) = &input.output {
            let _ = crate::scan_output(p, &req, o.as_bytes());
        }
        return;
    }
    let text = String::from_utf8_lossy(data).into_owned();
    let principal = Principal {
        capabilities: dgc_types::CapabilitySet::all(),
        key_id: Some("key_fuzz".into()),
        agent: "ag_fuzz".into(),
    };
    let context = TaskContext {
        now_ms: 1_800_000_000_000,
        ..TaskContext::default()
    };
    let state = StateSnapshot::default();
    let calls: [(&str, Value); 5] = [
        ("shell.exec", json!({"command": text})),
        ("db.query", json!({"query": text})),
        ("http.fetch", json!({"url": text})),
        ("fs.read", json!({"path": text})),
        (
            "fuzz.deny",
            json!({"secret": text, "nested": {"x": [text]}}),
        ),
    ];
    for (tool, args) in calls {
        let action = Action::ToolCall(ToolCall::new(tool, args));
        let req = GateRequest {
            principal: &principal,
            action: &action,
            context: &context,
            state: &state,
        };
        let _ = crate::evaluate(p, &req);
    }
    let model = Action::ModelCall(crate::model::ModelCall {
        route: "default".into(),
        prompt: text,
        ..Default::default()
    });
    let req = GateRequest {
        principal: &principal,
        action: &model,
        context: &context,
        state: &state,
    };
    let _ = crate::evaluate(p, &req);
    let _ = crate::scan_output(p, &req, data);
}

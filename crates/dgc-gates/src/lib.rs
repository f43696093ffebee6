//! DGC's gate pipeline: 22 pure, fast checks over every agent action (tool call, model call,
//! memory write, delegation, outbound message) before it runs, and over outputs after.
//!
//! The pipeline is a pure function of (principal, action, task context, policy, state snapshot):
//! no I/O, no clock reads for decisions, microseconds per call. Rate-limit and budget state come
//! in through [`StateSnapshot`] and leave as [`StateUpdate`]s. An action that passed is a
//! [`GatedAction`], which only this crate can construct; the sandbox accepts nothing else.
//!
//! Entry points: [`evaluate`] (before execution), [`scan_output`] (after), [`resume`] (an
//! approval's answer), [`Policy`]/[`PolicyHandle`] (load, override, reload) and [`cli`].
#![forbid(unsafe_code)]

pub mod cli;
pub mod decision;
pub mod examples;
#[doc(hidden)]
pub mod fuzzing;
pub mod gates;
pub mod model;
pub mod pipeline;
pub mod policy;
pub mod schema;
pub mod shell;
pub mod text;

pub use decision::{
    ApprovalAnswer, ApprovalClass, ApprovalItem, ApprovalRequest, Decision, DecisionKind,
    Evaluation, GateRecord, GatedAction, Mode, Outcome, Redaction, StateUpdate, Verdict,
};
pub use gates::GateId;
pub use gates::content_safety::{
    ClassifierConfig, ClassifierOutcome, classifier_job, classifier_request,
    parse_classifier_response,
};
pub use gates::secrets_dlp::SecretValues;
pub use model::{
    Action, Delegation, GateRequest, MemoryWrite, ModelCall, OutboundMessage, Principal, RiskClass,
    StateSnapshot, Taint, TaskContext, ToolAnnotations, ToolCall, Usage,
};
pub use pipeline::{
    OutputScan, action_digest, evaluate, fingerprint, resume, scan_output, summarize,
};
pub use policy::{AgentOverrides, Autonomy, Policy, PolicyError, PolicyHandle, PolicySource};
pub use schema::{SchemaError, ToolSchema};

/// Wall-clock "now" for the CLI only (the library never reads the clock for decisions).
fn cli_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn policy_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::Policy>();
        assert_send_sync::<crate::PolicyHandle>();
    }

    #[test]
    fn embedded_examples_pass() {
        let failures: Vec<String> = crate::examples::run_embedded()
            .into_iter()
            .filter(|r| !r.passed)
            .map(|r| r.describe())
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

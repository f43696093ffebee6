//! The pipeline's inputs: who acts (principal), what they want to do (action), the task so far
//! (context) and the externally persisted state the pure pipeline reads (snapshot).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use dgc_types::{CapabilitySet, SandboxTier};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::ToolSchema;

/// Who is acting: the effective capabilities after `X-DGC-Capability` narrowing, the key and agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    #[serde(default)]
    pub capabilities: CapabilitySet,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub agent: String,
}

/// Taint labels a task accumulates; they only ever grow within a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Taint {
    /// The task has read private data: memory, secrets, workspace files, PII or credentials.
    PrivateData,
    /// The task has read content an attacker may control (web pages, untrusted tools, injections).
    UntrustedContent,
}

impl Taint {
    pub fn as_str(self) -> &'static str {
        match self {
            Taint::PrivateData => "private_data",
            Taint::UntrustedContent => "untrusted_content",
        }
    }
}

/// How risky a tool is, as declared by its registration; drives `isolation` and `consent`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RiskClass {
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl RiskClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskClass::Low => "low",
            RiskClass::Medium => "medium",
            RiskClass::High => "high",
            RiskClass::Critical => "critical",
        }
    }
}

/// MCP-style tool annotations (`readOnlyHint`, `destructiveHint`, …). Only believed for trusted
/// servers; see the `ahimsa` gate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    #[serde(default, alias = "read_only", alias = "readOnly")]
    pub read_only_hint: Option<bool>,
    #[serde(default, alias = "destructive")]
    pub destructive_hint: Option<bool>,
    #[serde(default, alias = "idempotent")]
    pub idempotent_hint: Option<bool>,
    #[serde(default, alias = "open_world", alias = "openWorld")]
    pub open_world_hint: Option<bool>,
    /// DGC extension: the tool always needs a human's consent.
    #[serde(default, alias = "consent_required")]
    pub consent_required: Option<bool>,
}

/// A call of a registered tool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// Namespaced tool name: `shell.exec`, `fs.read`, `mcp.<server>.<tool>`, …
    pub tool: String,
    #[serde(default)]
    pub arguments: Value,
    #[serde(default)]
    pub annotations: ToolAnnotations,
    /// Capabilities the tool requires.
    #[serde(default)]
    pub requires: Vec<String>,
    #[serde(default)]
    pub risk: RiskClass,
    /// Whether the tool's server (MCP) is trusted; built-in tools have `server: None`.
    #[serde(default)]
    pub trusted: bool,
    /// The MCP server the tool belongs to, when it is not a built-in tool.
    #[serde(default)]
    pub server: Option<String>,
    /// The tool's current description (scanned and pinned by `tool_poisoning`).
    #[serde(default)]
    pub description: Option<String>,
    /// The tool's input schema, compiled once when the tool is registered.
    #[serde(default)]
    pub schema: Option<Arc<ToolSchema>>,
    /// The sandbox tier the call will run in. Absent = `process` (DGC's default tier); `null` =
    /// in-process, unsandboxed (built-in tools such as `memory.search`).
    #[serde(default = "default_tier")]
    pub sandbox: Option<SandboxTier>,
    /// Estimated spend of this call in USD (paid APIs), for `consent` and `budget`.
    #[serde(default)]
    pub cost_usd: Option<f64>,
}

fn default_tier() -> Option<SandboxTier> {
    Some(SandboxTier::default())
}

impl Default for ToolCall {
    fn default() -> Self {
        Self::new("", Value::Null)
    }
}

impl ToolCall {
    /// A call with defaults: medium risk, untrusted, no server, process tier.
    pub fn new(tool: impl Into<String>, arguments: Value) -> Self {
        Self {
            tool: tool.into(),
            arguments,
            annotations: ToolAnnotations::default(),
            requires: Vec::new(),
            risk: RiskClass::default(),
            trusted: false,
            server: None,
            description: None,
            schema: None,
            sandbox: default_tier(),
            cost_usd: None,
        }
    }
}

/// A model (LLM) call through the router.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCall {
    pub route: String,
    /// The prompt text (or its last user/tool turn) scanned for injections and secrets.
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub estimated_tokens: u64,
    #[serde(default)]
    pub estimated_cost_usd: f64,
}

/// A write to the agent's memory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryWrite {
    #[serde(default)]
    pub kind: String,
    pub content: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Delegating a sub-task to another agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delegation {
    pub target_agent: String,
    /// Capabilities the target agent advertises.
    #[serde(default)]
    pub target_advertises: CapabilitySet,
    /// The capability the delegated task needs from the target.
    #[serde(default)]
    pub capability: Option<String>,
    /// Capabilities the child task would run with.
    #[serde(default)]
    pub child_capabilities: CapabilitySet,
    #[serde(default)]
    pub input: String,
}

/// A message leaving DGC (webhook, email, chat).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundMessage {
    pub channel: String,
    /// URL or address of the destination.
    pub destination: String,
    #[serde(default)]
    pub body: String,
}

/// Everything an agent can do, each judged by the same pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    ToolCall(ToolCall),
    ModelCall(ModelCall),
    MemoryWrite(MemoryWrite),
    Delegation(Delegation),
    OutboundMessage(OutboundMessage),
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::ToolCall(_) => "tool_call",
            Action::ModelCall(_) => "model_call",
            Action::MemoryWrite(_) => "memory_write",
            Action::Delegation(_) => "delegation",
            Action::OutboundMessage(_) => "outbound_message",
        }
    }

    pub fn tool(&self) -> Option<&ToolCall> {
        match self {
            Action::ToolCall(t) => Some(t),
            _ => None,
        }
    }

    /// A short name for summaries, fingerprints and rate-limit buckets.
    pub fn target_name(&self) -> &str {
        match self {
            Action::ToolCall(t) => &t.tool,
            Action::ModelCall(m) => &m.route,
            Action::MemoryWrite(_) => "memory.write",
            Action::Delegation(d) => &d.target_agent,
            Action::OutboundMessage(o) => &o.channel,
        }
    }
}

/// Resources a task (or agent-day) has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Usage {
    pub tokens: u64,
    pub cost_usd: f64,
    pub tool_calls: u64,
}

/// What the task has done so far. Supplied by the task runtime.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskContext {
    pub task_id: Option<String>,
    pub steps: u64,
    pub taint: BTreeSet<Taint>,
    /// Usage of this task so far (tokens, cost, tool calls).
    pub used: Usage,
    pub delegation_depth: u32,
    /// Task start, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// "Now", milliseconds since the Unix epoch (the pipeline never reads a clock for decisions).
    pub now_ms: u64,
    /// Fingerprints ([`crate::fingerprint`]) of the task's most recent calls, oldest first.
    pub recent_calls: Vec<String>,
    /// A workspace checkpoint exists that this action could be rolled back to.
    pub checkpoint: Option<String>,
}

/// Externally persisted state the pipeline reads; updates come back in [`crate::StateUpdate`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateSnapshot {
    /// GCRA theoretical arrival times (µs since epoch) by bucket (`key:…`, `agent:…`, `tool:…`).
    pub rate_limits: BTreeMap<String, u64>,
    /// The agent's usage today.
    pub agent_day: Usage,
    /// Pinned description hashes (sha256 hex) by tool name.
    pub pinned_descriptions: BTreeMap<String, String>,
    /// Whether the audit log can record this action (`satya` fails closed when it cannot).
    pub audit_available: Option<bool>,
    /// The external content classifier's verdict on the text being checked, when configured.
    pub classifier: Option<crate::gates::content_safety::ClassifierOutcome>,
    /// DGC's stored secret values, as a compiled matcher (never serialised).
    #[serde(skip)]
    pub secrets: Option<Arc<crate::gates::secrets_dlp::SecretValues>>,
}

impl StateSnapshot {
    pub fn audit_ok(&self) -> bool {
        self.audit_available.unwrap_or(true)
    }
}

/// One pipeline call's inputs.
#[derive(Debug, Clone, Copy)]
pub struct GateRequest<'a> {
    pub principal: &'a Principal,
    pub action: &'a Action,
    pub context: &'a TaskContext,
    pub state: &'a StateSnapshot,
}

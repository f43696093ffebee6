//! Agents: their configuration (validated once, field by field, so a bad config is a 422 naming the
//! field) and the shape the API returns.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::capability::CapabilitySet;
use crate::duration::DurationSpec;
use crate::egress::HostPattern;
use crate::ids::AgentId;
use crate::sandbox::SandboxTier;
use crate::size::ByteSize;
use crate::validate::{FieldError, check_text};

/// Most tool globs in an allow or deny list.
pub const MAX_TOOL_GLOBS: usize = 256;
/// Most egress entries per agent.
pub const MAX_EGRESS_ENTRIES: usize = 256;
/// Largest serialized `gates` override object.
pub const MAX_GATES_JSON_BYTES: usize = 64 * 1024;

/// How much a human is asked before an agent acts (the gates decide what "asks" means).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Autonomy {
    /// Every consent-class action waits for a human.
    Supervised,
    /// Only destructive, irreversible, trifecta and over-budget actions ask.
    #[default]
    Guarded,
    /// Nothing asks; denies still deny and waived approvals are audited.
    Autonomous,
}

/// Which model route the agent thinks through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A route name from `[[router.routes]]`, or `provider:model`.
    pub route: String,
}

/// Tool allow/deny globs over namespaced tool names (`fs.*`, `mcp.git.*`). Deny wins.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolPolicy {
    /// Globs of tools the agent may call. Empty means every tool its keys allow.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Globs of tools the agent may never call.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Where the agent's tool calls run and with what limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSandbox {
    /// `process` (default), `gvisor` or `wasm`.
    #[serde(default)]
    #[schema(value_type = String, example = "process")]
    pub tier: SandboxTier,
    /// Memory limit for one sandboxed process tree.
    #[serde(default = "default_memory")]
    pub memory: ByteSize,
    /// Maximum number of processes/threads.
    #[serde(default = "default_pids")]
    pub pids: u32,
    /// CPU quota in cores (0.1–64).
    #[serde(default = "default_cpu")]
    pub cpu: f64,
    /// Wall-clock limit for one tool call.
    #[serde(default = "default_timeout")]
    pub timeout: DurationSpec,
    /// Maximum bytes of output captured per call.
    #[serde(default = "default_output")]
    pub output: ByteSize,
    /// Whether the agent's workspace directory is writable.
    #[serde(default = "yes")]
    pub workspace_writable: bool,
    /// Destinations the sandbox may reach through the egress proxy (`host[:port]`, `*.example.com`).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub egress: Vec<HostPattern>,
}

fn default_memory() -> ByteSize {
    ByteSize(512 << 20)
}
fn default_pids() -> u32 {
    128
}
fn default_cpu() -> f64 {
    1.0
}
fn default_timeout() -> DurationSpec {
    DurationSpec(std::time::Duration::from_secs(60))
}
fn default_output() -> ByteSize {
    ByteSize(1 << 20)
}
fn yes() -> bool {
    true
}

impl Default for AgentSandbox {
    fn default() -> Self {
        Self {
            tier: SandboxTier::default(),
            memory: default_memory(),
            pids: default_pids(),
            cpu: default_cpu(),
            timeout: default_timeout(),
            output: default_output(),
            workspace_writable: true,
            egress: Vec::new(),
        }
    }
}

/// Memory behaviour for the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemorySettings {
    /// Replicate this agent's memories to sibling instances (sync bus).
    #[serde(default)]
    pub sync: bool,
    /// How many memories the agent loop retrieves into context.
    #[serde(default = "default_top_k")]
    pub retrieve_top_k: u32,
    /// Store an episodic memory of each finished task.
    #[serde(default)]
    pub record_tasks: bool,
}

fn default_top_k() -> u32 {
    8
}

impl Default for MemorySettings {
    fn default() -> Self {
        Self {
            sync: false,
            retrieve_top_k: default_top_k(),
            record_tasks: false,
        }
    }
}

/// An agent's configuration. Every field is optional on input; the stored config has defaults filled.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub tools: ToolPolicy,
    /// Capability ceiling: the agent never acts with more, whatever key calls it. Absent: no ceiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub capabilities: Option<CapabilitySet>,
    /// Per-agent gate policy overrides (modes and settings per gate); validated by the gate engine.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub gates: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub sandbox: AgentSandbox,
    #[serde(default)]
    pub memory: MemorySettings,
    #[serde(default)]
    pub autonomy: Autonomy,
    /// What the agent advertises it can do, for delegation (`GET /v1/agents?skill=`).
    #[serde(default)]
    pub skills: Vec<String>,
}

impl AgentConfig {
    /// Semantic checks serde cannot express. Field paths are relative to the agent object.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(m) = &self.model {
            check_text("config.model.route", &m.route, 1, 200)?;
        }
        if let Some(p) = &self.system_prompt {
            check_text("config.system_prompt", p, 0, 64 * 1024)?;
        }
        for (field, globs) in [
            ("config.tools.allow", &self.tools.allow),
            ("config.tools.deny", &self.tools.deny),
        ] {
            if globs.len() > MAX_TOOL_GLOBS {
                return Err(FieldError::new(
                    field,
                    format!("at most {MAX_TOOL_GLOBS} entries"),
                ));
            }
            for (i, g) in globs.iter().enumerate() {
                let f = format!("{field}[{i}]");
                check_text(&f, g, 1, 200)?;
                if !g.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'*' | b'?')
                }) {
                    return Err(FieldError::new(
                        f,
                        "tool globs use letters, digits, `._-` and the wildcards `*` and `?`",
                    ));
                }
                globset::Glob::new(g).map_err(|e| FieldError::new(f, e.to_string()))?;
            }
        }
        let gates_len = serde_json::to_string(&self.gates)
            .map(|s| s.len())
            .unwrap_or(usize::MAX);
        if gates_len > MAX_GATES_JSON_BYTES {
            return Err(FieldError::new(
                "config.gates",
                format!("at most {MAX_GATES_JSON_BYTES} bytes of JSON"),
            ));
        }
        let s = &self.sandbox;
        if s.memory.0 < (16 << 20) || s.memory.0 > (64u64 << 30) {
            return Err(FieldError::new(
                "config.sandbox.memory",
                "must be between 16M and 64G",
            ));
        }
        if s.pids == 0 || s.pids > 65_536 {
            return Err(FieldError::new(
                "config.sandbox.pids",
                "must be between 1 and 65536",
            ));
        }
        if !(s.cpu.is_finite() && (0.01..=256.0).contains(&s.cpu)) {
            return Err(FieldError::new(
                "config.sandbox.cpu",
                "must be between 0.01 and 256 cores",
            ));
        }
        let t = s.timeout.as_duration();
        if t.is_zero() || t > std::time::Duration::from_secs(24 * 3600) {
            return Err(FieldError::new(
                "config.sandbox.timeout",
                "must be between 1s and 24h",
            ));
        }
        if s.output.0 == 0 || s.output.0 > (256 << 20) {
            return Err(FieldError::new(
                "config.sandbox.output",
                "must be between 1 byte and 256M",
            ));
        }
        if s.egress.len() > MAX_EGRESS_ENTRIES {
            return Err(FieldError::new(
                "config.sandbox.egress",
                format!("at most {MAX_EGRESS_ENTRIES} entries"),
            ));
        }
        if self.memory.retrieve_top_k > 100 {
            return Err(FieldError::new(
                "config.memory.retrieve_top_k",
                "must be at most 100",
            ));
        }
        if self.skills.len() > 64 {
            return Err(FieldError::new("config.skills", "at most 64 skills"));
        }
        for (i, sk) in self.skills.iter().enumerate() {
            check_text(&format!("config.skills[{i}]"), sk, 1, 100)?;
        }
        Ok(())
    }
}

/// `POST /v1/agents`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub config: AgentConfig,
}

impl CreateAgent {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_agent_fields(&self.name, self.description.as_deref(), &self.config)
    }
}

/// The editable part of an agent; `PATCH` applies a JSON merge patch (RFC 7386) to this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub config: AgentConfig,
}

impl AgentSpec {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_agent_fields(&self.name, self.description.as_deref(), &self.config)
    }
}

fn validate_agent_fields(
    name: &str,
    description: Option<&str>,
    config: &AgentConfig,
) -> Result<(), FieldError> {
    check_text("name", name, 1, 128)?;
    if let Some(d) = description {
        check_text("description", d, 0, 4096)?;
    }
    config.validate()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Active,
    Disabled,
}

/// An agent as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    pub id: AgentId,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub config: AgentConfig,
    pub status: AgentStatus,
    /// The agent's Ed25519 public key, base64 of the 32 raw bytes.
    pub public_key: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl Agent {
    pub fn spec(&self) -> AgentSpec {
        AgentSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            config: self.config.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_and_unknown_fields_fail() {
        let c: CreateAgent = serde_json::from_str(r#"{"name":"a"}"#).unwrap();
        c.validate().unwrap();
        assert_eq!(c.config.sandbox.pids, 128);
        assert!(serde_json::from_str::<CreateAgent>(r#"{"name":"a","nme":1}"#).is_err());
        assert!(
            serde_json::from_str::<CreateAgent>(
                r#"{"name":"a","config":{"sandbox":{"memry":"1G"}}}"#
            )
            .is_err()
        );
    }

    #[test]
    fn semantic_validation_names_the_field() {
        let c: CreateAgent =
            serde_json::from_str(r#"{"name":"a","config":{"sandbox":{"cpu":0}}}"#).unwrap();
        assert_eq!(c.validate().unwrap_err().field, "config.sandbox.cpu");
        let c: CreateAgent = serde_json::from_str(
            r#"{"name":"a","config":{"tools":{"allow":["fs.*","bad glob"]}}}"#,
        )
        .unwrap();
        assert_eq!(c.validate().unwrap_err().field, "config.tools.allow[1]");
        let c: CreateAgent = serde_json::from_str(r#"{"name":""}"#).unwrap();
        assert_eq!(c.validate().unwrap_err().field, "name");
        assert!(
            serde_json::from_str::<CreateAgent>(
                r#"{"name":"a","config":{"sandbox":{"egress":["*.com"]}}}"#
            )
            .is_err()
        );
    }
}

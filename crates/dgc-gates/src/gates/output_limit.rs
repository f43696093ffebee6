//! Gate 18 `output_limit`: caps output size (truncating with a marker) and, before execution,
//! the size of the arguments an action may carry.

use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, Phase, ex};
use crate::decision::Verdict;
use crate::text::truncate_bytes;

/// Configuration (`[gates.output_limit]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Largest output passed on; longer outputs are truncated with a marker. Default 1 MiB.
    pub max_output_bytes: usize,
    /// Largest total text in an action's arguments. Default 4 MiB.
    pub max_argument_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_output_bytes: 1 << 20,
            max_argument_bytes: 4 << 20,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    cfg: Config,
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        if cfg.max_output_bytes < 64 || cfg.max_argument_bytes < 64 {
            return Err("limits must be at least 64 bytes".into());
        }
        Ok(Self { cfg: cfg.clone() })
    }

    pub fn max_output_bytes(&self) -> usize {
        self.cfg.max_output_bytes
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        match cx.phase {
            Phase::Output(text) => {
                if text.len() <= self.cfg.max_output_bytes {
                    return GateOut::allow();
                }
                let kept = truncate_bytes(text, self.cfg.max_output_bytes);
                let dropped = text.len() - kept.len();
                let mut out = GateOut::from(Verdict::Redact(format!(
                    "output truncated from {} to {} bytes",
                    text.len(),
                    kept.len()
                )));
                out.replace_output = Some(format!(
                    "{kept}\n[… {dropped} bytes truncated by dgc output_limit]"
                ));
                out
            }
            Phase::Action => {
                let total: usize = cx.leaves.iter().map(|l| l.text.len()).sum();
                if total > self.cfg.max_argument_bytes {
                    GateOut::deny(format!(
                        "arguments carry {total} bytes of text, over the {} byte limit",
                        self.cfg.max_argument_bytes
                    ))
                } else {
                    GateOut::allow()
                }
            }
        }
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "long output truncated",
        true,
        Some("redact"),
        r#"{"config":{"max_output_bytes":64},"action":{"type":"tool_call","tool":"fs.read"},"output":"0123456789012345678901234567890123456789012345678901234567890123456789"}"#,
    ),
    ex(
        "short output",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.read"},"output":"hello"}"#,
    ),
    ex(
        "oversized arguments",
        true,
        Some("deny"),
        r#"{"config":{"max_argument_bytes":64},"action":{"type":"tool_call","tool":"fs.write","arguments":{"content":"0123456789012345678901234567890123456789012345678901234567890123456789"}}}"#,
    ),
];

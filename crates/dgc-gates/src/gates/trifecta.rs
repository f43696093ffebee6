//! Gate 14 `trifecta`: once a task holds private data AND has read untrusted content, any external
//! communication (network writes, outbound messages, open-world tools) needs a human's consent —
//! Simon Willison's "lethal trifecta". The gate also adds the taint labels that reading private
//! sources and untrusted sources implies.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Cx, Example, GateOut, ex, glob_set};
use crate::decision::ApprovalClass;
use crate::model::{Action, Taint};

/// Configuration (`[gates.trifecta]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Tools whose results are private data (taint `private_data` when called).
    pub private_sources: Vec<String>,
    /// Tools whose results are attacker-controllable (taint `untrusted_content` when called).
    pub untrusted_sources: Vec<String>,
    /// Tools that communicate externally on every call.
    pub external_tools: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            private_sources: [
                "memory.*",
                "fs.read*",
                "fs.list*",
                "fs.search*",
                "secrets.*",
                "db.*",
                "mcp.*.read_file",
                "mcp.*.read_*",
            ]
            .map(String::from)
            .to_vec(),
            untrusted_sources: [
                "http.fetch",
                "http.get",
                "web.*",
                "browser.*",
                "search.*",
                "email.read*",
                "mcp.*.fetch*",
            ]
            .map(String::from)
            .to_vec(),
            external_tools: [
                "http.post",
                "http.put",
                "http.request",
                "email.send*",
                "slack.*",
                "webhook.*",
                "sms.*",
                "mcp.*.send*",
                "mcp.*.post*",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    private_sources: globset::GlobSet,
    untrusted_sources: globset::GlobSet,
    external_tools: globset::GlobSet,
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        Ok(Self {
            private_sources: glob_set(&cfg.private_sources, "private_sources")?,
            untrusted_sources: glob_set(&cfg.untrusted_sources, "untrusted_sources")?,
            external_tools: glob_set(&cfg.external_tools, "external_tools")?,
        })
    }

    /// Does this action send data out of DGC? `Some(why)` if so.
    pub fn external(&self, action: &Action) -> Option<String> {
        match action {
            Action::OutboundMessage(o) => Some(format!("outbound {} message", o.channel)),
            Action::ToolCall(t) => {
                if self.external_tools.is_match(&t.tool) {
                    return Some(format!("`{}` communicates externally", t.tool));
                }
                let net = t
                    .requires
                    .iter()
                    .any(|r| r == "net.http" || r.starts_with("net."));
                if net {
                    let method = t
                        .arguments
                        .get("method")
                        .and_then(Value::as_str)
                        .unwrap_or("GET")
                        .to_ascii_uppercase();
                    let has_body = ["body", "data", "json", "form"]
                        .iter()
                        .any(|k| t.arguments.get(k).is_some_and(|v| !v.is_null()));
                    let url = t.arguments.get("url").and_then(Value::as_str).unwrap_or("");
                    if !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS") || has_body {
                        return Some(format!("{method} request with a body"));
                    }
                    if url.contains('?') {
                        return Some("request carries a query string".into());
                    }
                }
                let open_world = t.annotations.open_world_hint == Some(true)
                    || (!t.trusted && t.server.is_some());
                let read_only = t.trusted && t.annotations.read_only_hint == Some(true);
                (open_world && !read_only).then(|| format!("`{}` is an open-world tool", t.tool))
            }
            _ => None,
        }
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let mut out = GateOut::allow();
        let mut implied: Vec<Taint> = Vec::new();
        if let Action::ToolCall(t) = cx.action() {
            if self.private_sources.is_match(&t.tool) {
                implied.push(Taint::PrivateData);
            }
            if self.untrusted_sources.is_match(&t.tool) || (!t.trusted && t.server.is_some()) {
                implied.push(Taint::UntrustedContent);
            }
        }
        let has = |t: Taint| cx.taint.contains(&t);
        if has(Taint::PrivateData)
            && has(Taint::UntrustedContent)
            && let Some(why) = self.external(cx.action())
        {
            out = GateOut::approve(
                ApprovalClass::Trifecta,
                format!("task holds private data and untrusted content; {why}"),
            );
        }
        for t in implied {
            out = out.with_taint(t);
        }
        out
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "post after private+untrusted",
        true,
        Some("needs_approval"),
        r#"{"action":{"type":"tool_call","tool":"http.request","requires":["net.http"],"arguments":{"url":"https://x.example.com","method":"POST","body":"hi"}},"context":{"taint":["private_data","untrusted_content"]}}"#,
    ),
    ex(
        "outbound message",
        true,
        Some("needs_approval"),
        r#"{"action":{"type":"outbound_message","channel":"email","destination":"a@b.example.com","body":"hi"},"context":{"taint":["private_data","untrusted_content"]}}"#,
    ),
    ex(
        "fetch taints untrusted",
        true,
        Some("allow"),
        r#"{"action":{"type":"tool_call","tool":"http.fetch","arguments":{"url":"https://news.example.com"}}}"#,
    ),
    ex(
        "only private data",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"http.request","requires":["net.http"],"arguments":{"url":"https://x.example.com","method":"POST","body":"hi"}},"context":{"taint":["private_data"]}}"#,
    ),
    ex(
        "both taints, local write",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.write","arguments":{"path":"a.txt","content":"x"}},"context":{"taint":["private_data","untrusted_content"]}}"#,
    ),
];

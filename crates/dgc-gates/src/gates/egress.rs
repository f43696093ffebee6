//! Gate 9 `egress`: every network destination an action names (URLs and host arguments, URLs in
//! shell commands, outbound message destinations) matches the agent's allowlist. Host matching is
//! `dgc_types::egress` (the same normaliser the sandbox proxy uses). IP literals — including
//! private, loopback and link-local ranges and obfuscated forms like `0x7f.1` — are refused unless
//! the allowlist names that exact address.

use std::net::IpAddr;

use dgc_types::EgressAllowlist;
use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, ex, glob_set};
use crate::model::Action;

/// Configuration (`[gates.egress]`, usually per agent from its sandbox profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Allowed destinations (`api.example.com`, `*.example.com:443`, `10.0.0.5`). Default empty:
    /// no egress at all.
    pub allow: EgressAllowlist,
    /// URL schemes that may be used. Default `http`, `https`, `ws`, `wss`.
    pub schemes: Vec<String>,
    /// Tools whose command arguments are scanned for URLs (shell tools). Default `shell.*`, `*.exec`.
    pub command_tools: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            allow: EgressAllowlist::default(),
            schemes: ["http", "https", "ws", "wss"].map(String::from).to_vec(),
            command_tools: ["shell.*", "*.exec", "*.bash", "*.run_command"]
                .map(String::from)
                .to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    cfg: Config,
    command_tools: globset::GlobSet,
    url_re: regex::Regex,
}

/// Argument keys whose value is a URL (a bare `host/path` is read as `https://host/path`).
const URL_KEYS: [&str; 12] = [
    "url",
    "uri",
    "href",
    "endpoint",
    "base_url",
    "baseurl",
    "webhook",
    "webhook_url",
    "callback_url",
    "target_url",
    "link",
    "proxy",
];
/// Argument keys whose value is a host (optionally `host:port`).
const HOST_KEYS: [&str; 3] = ["host", "hostname", "domain"];

/// Private, loopback, link-local, CGNAT, multicast, unspecified and documentation ranges.
pub fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v) => {
            let o = v.octets();
            v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        let url_re = regex::Regex::new(r#"(?i)(?-u:\b)[a-z][a-z0-9+.-]{1,15}://[^\s'"<>`)]+"#)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            cfg: cfg.clone(),
            command_tools: glob_set(&cfg.command_tools, "command_tools")?,
            url_re,
        })
    }

    /// Checks one destination; `Err(reason)` when refused.
    fn check_url(&self, raw: &str) -> Result<(), String> {
        let parsed = url::Url::parse(raw.trim())
            .map_err(|e| format!("unparseable URL `{}`: {e}", crate::text::excerpt(raw, 80)))?;
        let scheme = parsed.scheme();
        if !self.cfg.schemes.iter().any(|s| s == scheme) {
            return Err(format!("scheme `{scheme}` is not allowed"));
        }
        let port = parsed.port_or_known_default().unwrap_or(0);
        match parsed.host() {
            None => Err(format!(
                "URL `{}` has no host",
                crate::text::excerpt(raw, 80)
            )),
            Some(url::Host::Domain(d)) => self.check_host(d, port),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip), port),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip), port),
        }
    }

    fn check_ip(&self, ip: IpAddr, port: u16) -> Result<(), String> {
        let ip = ip.to_canonical();
        if self.cfg.allow.names_ip(ip, port) {
            return Ok(());
        }
        if is_private(ip) {
            Err(format!(
                "{ip} is a private/loopback/link-local address and is not explicitly allowlisted"
            ))
        } else {
            Err(format!("IP literal {ip} is not explicitly allowlisted"))
        }
    }

    fn check_host(&self, host: &str, port: u16) -> Result<(), String> {
        let host = host.trim();
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return self.check_ip(ip, port);
        }
        match dgc_types::normalize_host(host) {
            Err(e) => Err(format!("destination refused: {e}")),
            Ok(h) if self.cfg.allow.0.iter().any(|p| p.matches_host(&h, port)) => Ok(()),
            Ok(h) => Err(format!("{h}:{port} is not on the agent's egress allowlist")),
        }
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let mut refusals: Vec<String> = Vec::new();
        let scan_commands = cx
            .action()
            .tool()
            .is_some_and(|t| self.command_tools.is_match(&t.tool));
        for leaf in cx.leaves {
            let key = leaf.key.to_ascii_lowercase();
            let text = leaf.text.trim();
            if URL_KEYS.contains(&key.as_str()) {
                if text.contains("://") {
                    if let Err(r) = self.check_url(text) {
                        refusals.push(r);
                    }
                } else if !text.is_empty()
                    && let Err(r) = self.check_url(&format!("https://{text}"))
                {
                    refusals.push(r);
                }
            } else if HOST_KEYS.contains(&key.as_str()) && !text.is_empty() {
                let (h, port) = match text.rsplit_once(':') {
                    Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
                        (h, p.parse().unwrap_or(443))
                    }
                    _ => (text, 443),
                };
                if let Err(r) = self.check_host(h, port) {
                    refusals.push(r);
                }
            } else if scan_commands && matches!(key.as_str(), "command" | "cmd" | "script") {
                for m in self.url_re.find_iter(leaf.text).take(64) {
                    if let Err(r) = self.check_url(m.as_str()) {
                        refusals.push(r);
                    }
                }
            }
            if refusals.len() >= 3 {
                break;
            }
        }
        if let Action::OutboundMessage(o) = cx.action()
            && !o.destination.contains("://")
            && o.destination.contains('@')
        {
            // An email address: its domain is the destination.
            if let Some((_, domain)) = o.destination.rsplit_once('@')
                && let Err(r) = self.check_host(domain, 25)
            {
                refusals.push(r);
            }
        }
        if refusals.is_empty() {
            GateOut::allow()
        } else {
            GateOut::deny(refusals.join("; "))
        }
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "not allowlisted",
        true,
        Some("deny"),
        r#"{"config":{"allow":["api.example.com"]},"action":{"type":"tool_call","tool":"http.fetch","arguments":{"url":"https://evil.example.net/x"}}}"#,
    ),
    ex(
        "metadata ip",
        true,
        Some("deny"),
        r#"{"config":{"allow":["*.example.com"]},"action":{"type":"tool_call","tool":"http.fetch","arguments":{"url":"http://169.254.169.254/latest/meta-data/"}}}"#,
    ),
    ex(
        "hex loopback",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"http.fetch","arguments":{"url":"http://0x7f.1:8080/"}}}"#,
    ),
    ex(
        "userinfo trick",
        true,
        Some("deny"),
        r#"{"config":{"allow":["api.example.com"]},"action":{"type":"tool_call","tool":"http.fetch","arguments":{"url":"https://api.example.com@evil.net/"}}}"#,
    ),
    ex(
        "curl in shell",
        true,
        Some("deny"),
        r#"{"config":{"allow":["api.example.com"]},"action":{"type":"tool_call","tool":"shell.exec","arguments":{"command":"curl -s https://pastebin.com/raw/x | head"}}}"#,
    ),
    ex(
        "file scheme",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"http.fetch","arguments":{"url":"file:///etc/passwd"}}}"#,
    ),
    ex(
        "allowlisted subdomain",
        false,
        None,
        r#"{"config":{"allow":["*.example.com"]},"action":{"type":"tool_call","tool":"http.fetch","arguments":{"url":"https://API.Example.com./v1"}}}"#,
    ),
    ex(
        "named private ip",
        false,
        None,
        r#"{"config":{"allow":["10.0.0.5:8080"]},"action":{"type":"tool_call","tool":"http.fetch","arguments":{"url":"http://10.0.0.5:8080/health"}}}"#,
    ),
    ex(
        "no destination",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.read","arguments":{"path":"/workspace/a.txt"}}}"#,
    ),
];

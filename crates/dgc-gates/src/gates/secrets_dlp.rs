//! Gate 11 `secrets_dlp`: finds credentials in arguments and outputs — known key formats (AWS,
//! GitHub, GitLab, OpenAI, Anthropic, Slack, Stripe, Google, PEM private keys, JWTs, DGC's own
//! `dgc_sk_`/`whsec_`), a generic high-entropy rule, and exact matches of DGC's stored secret
//! values (Aho-Corasick) — and redacts or denies. Matched values never appear in reasons,
//! decisions or logs: only the detector name and the JSON pointer do.

use std::fmt;

use aho_corasick::AhoCorasick;
use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, Span, ex};
use crate::decision::Verdict;
use crate::model::Taint;
use crate::text::entropy;

/// DGC's stored secret values, compiled for multi-pattern search. Its `Debug` never shows values.
pub struct SecretValues {
    ac: Option<AhoCorasick>,
    names: Vec<String>,
}

impl SecretValues {
    /// Values shorter than 8 bytes are skipped: they would match ordinary text.
    pub fn new<I, N, V>(items: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: AsRef<[u8]>,
    {
        let mut names = Vec::new();
        let mut values: Vec<Vec<u8>> = Vec::new();
        for (n, v) in items {
            if v.as_ref().len() >= 8 {
                names.push(n.into());
                values.push(v.as_ref().to_vec());
            }
        }
        let ac = if values.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(&values)
                .ok()
        };
        Self { ac, names }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn find(&self, text: &str) -> Vec<(usize, usize, &str)> {
        let Some(ac) = &self.ac else {
            return Vec::new();
        };
        ac.find_iter(text)
            .map(|m| {
                (
                    m.start(),
                    m.end(),
                    self.names
                        .get(m.pattern().as_usize())
                        .map_or("", String::as_str),
                )
            })
            .collect()
    }
}

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretValues({} values: {})",
            self.names.len(),
            self.names.join(", ")
        )
    }
}

/// What to do when something is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFind {
    /// Replace the match with `[REDACTED:<detector>]`.
    Redact,
    Deny,
    /// Record and taint only.
    Flag,
}

/// Configuration (`[gates.secrets_dlp]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// In action arguments. Default `redact`.
    pub on_argument: OnFind,
    /// In tool/model outputs. Default `redact`.
    pub on_output: OnFind,
    /// A DGC-stored secret value in arguments (exfiltration). Default `deny`.
    pub on_registered_value: OnFind,
    /// Enable the generic high-entropy rule. Default true.
    pub generic_entropy: bool,
    /// Bits per character a generic token needs. Default 4.0.
    pub min_entropy: f64,
    /// Shortest generic token considered. Default 24.
    pub min_length: usize,
    /// Detectors to disable by name.
    pub disabled: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            on_argument: OnFind::Redact,
            on_output: OnFind::Redact,
            on_registered_value: OnFind::Deny,
            generic_entropy: true,
            min_entropy: 4.0,
            min_length: 24,
            disabled: Vec::new(),
        }
    }
}

/// Known formats: (detector, regex).
pub const DETECTORS: &[(&str, &str)] = &[
    ("aws_access_key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    (
        "aws_secret_key",
        r#"(?i)aws.{0,20}secret.{0,20}[=:]\s*["']?[A-Za-z0-9/+]{40}\b"#,
    ),
    (
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
    ),
    (
        "gitlab_token",
        r"\bgl(?:pat|dt|ptt|rt)-[A-Za-z0-9_-]{20,}\b",
    ),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_-]{32,}"),
    (
        "openai_key",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}",
    ),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    (
        "slack_webhook",
        r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,}",
    ),
    (
        "stripe_key",
        r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b",
    ),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    (
        "private_key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ),
    ("dgc_api_key", r"\bdgc_sk_[A-Za-z0-9_-]{16,}"),
    ("dgc_webhook_secret", r"\bwhsec_[A-Za-z0-9+/=_-]{16,}"),
];

/// Lowercased fragments that mark documentation placeholders rather than live credentials.
const PLACEHOLDERS: [&str; 12] = [
    "example",
    "xxxxxx",
    "your_",
    "your-",
    "yourkey",
    "placeholder",
    "redacted",
    "changeme",
    "dummy",
    "<",
    "...",
    "000000",
];

fn is_placeholder(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    if PLACEHOLDERS.iter().any(|p| l.contains(p)) {
        return true;
    }
    // Long runs of one character (`sk-aaaaaaaa…`) are never real keys.
    let b = s.as_bytes();
    b.windows(8).any(|w| w.iter().all(|&c| c == w[0]))
}

/// The detector findings in one text: (start, end, detector).
#[derive(Debug, Clone)]
pub struct Detectors {
    set: regex::RegexSet,
    each: Vec<(&'static str, regex::Regex)>,
    generic: bool,
    min_entropy: f64,
    min_length: usize,
}

impl Detectors {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        let active: Vec<&(&str, &str)> = DETECTORS
            .iter()
            .filter(|(n, _)| !cfg.disabled.iter().any(|d| d == n))
            .collect();
        for d in &cfg.disabled {
            if d != "generic_entropy" && !DETECTORS.iter().any(|(n, _)| n == d) {
                return Err(format!("disabled: unknown detector `{d}`"));
            }
        }
        let set = regex::RegexSetBuilder::new(active.iter().map(|(_, r)| crate::text::ascii_wb(r)))
            .size_limit(64 << 20)
            .build()
            .map_err(|e| e.to_string())?;
        let each = active
            .iter()
            .map(|(n, r)| {
                regex::Regex::new(&crate::text::ascii_wb(r))
                    .map(|re| (*n, re))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            set,
            each,
            generic: cfg.generic_entropy && !cfg.disabled.iter().any(|d| d == "generic_entropy"),
            min_entropy: cfg.min_entropy,
            min_length: cfg.min_length.max(12),
        })
    }

    pub fn find(&self, text: &str, key: &str) -> Vec<(usize, usize, &'static str)> {
        let mut out = Vec::new();
        for i in self.set.matches(text).iter() {
            let (name, re) = &self.each[i];
            for m in re.find_iter(text).take(1000) {
                let s = m.as_str();
                if *name == "openai_key" && s.starts_with("sk-ant-") {
                    continue;
                }
                if *name != "private_key" && is_placeholder(s) {
                    continue;
                }
                let end = if *name == "private_key" {
                    pem_end(text, m.end())
                } else {
                    m.end()
                };
                out.push((m.start(), end, *name));
            }
        }
        if self.generic {
            self.generic_tokens(text, key, &mut out);
        }
        out
    }

    /// Runs of `[A-Za-z0-9+/=_-]` that look random: long, mixed-case with digits, high entropy,
    /// and not a hex digest, UUID, path or identifier.
    fn generic_tokens(&self, text: &str, key: &str, out: &mut Vec<(usize, usize, &'static str)>) {
        let key_l = key.to_ascii_lowercase();
        let keyed_key = KEYWORDS.iter().any(|k| key_l.contains(k));
        let b = text.as_bytes();
        let is_tok =
            |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-');
        let mut i = 0;
        let mut found = 0;
        while i < b.len() && found < 1000 {
            if !is_tok(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && is_tok(b[i]) {
                i += 1;
            }
            let tok = &text[start..i];
            if tok.len() < 16 || tok.len() > 512 {
                continue; // too short even after a keyword: skip the look-behind below
            }
            // A keyword just before the token (`password = "…"`, `Bearer …`) lowers the bar.
            let keyed = keyed_key || {
                let mut from = start.saturating_sub(24);
                while !text.is_char_boundary(from) {
                    from -= 1;
                }
                let before = text[from..start].to_ascii_lowercase();
                KEYWORDS.iter().any(|k| before.contains(k))
                    && before.trim_end().ends_with(['=', ':', '"', '\'', 'r'])
            };
            let min_len = if keyed { 16 } else { self.min_length };
            if tok.len() < min_len || tok.len() > 512 {
                continue;
            }
            if out.iter().any(|(s, e, _)| *s < i && start < *e) {
                continue; // already a known format
            }
            if looks_random(tok, if keyed { 3.5 } else { self.min_entropy }) {
                out.push((start, i, "high_entropy"));
                found += 1;
            }
        }
    }
}

/// A PEM block's end: after its `-----END …-----` line, or (unterminated) the next 16 KiB.
fn pem_end(text: &str, body_start: usize) -> usize {
    let window = crate::text::truncate_bytes(&text[body_start..], 16 * 1024);
    match window.find("-----END ") {
        Some(e) => {
            let after = body_start + e + "-----END ".len();
            text[after..]
                .find("-----")
                .map_or(body_start + window.len(), |x| after + x + 5)
        }
        None => body_start + window.len(),
    }
}

/// Words that mark the next token as a credential.
const KEYWORDS: [&str; 9] = [
    "secret",
    "token",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "credential",
    "auth",
    "bearer",
];

fn looks_random(tok: &str, min_entropy: f64) -> bool {
    let t = tok.trim_end_matches('=');
    // SSH public-key blobs (`ssh-ed25519 AAAAC3Nza…`) are random-looking but public.
    if t.starts_with("AAAA") {
        return false;
    }
    let b = t.as_bytes();
    let (mut up, mut low, mut dig, mut slash, mut dash) = (0, 0, 0, 0, 0);
    for &c in b {
        match c {
            b'A'..=b'Z' => up += 1,
            b'a'..=b'z' => low += 1,
            b'0'..=b'9' => dig += 1,
            b'/' => slash += 1,
            b'-' | b'_' => dash += 1,
            _ => {}
        }
    }
    // Hex digests and UUIDs are high-entropy but not secrets.
    if b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-') {
        return false;
    }
    if up == 0 || low == 0 || dig < 2 || slash > 1 || dash * 4 > b.len() || is_placeholder(t) {
        return false;
    }
    // Identifiers (`getUserProfileById2`) are mostly letters in camel-case humps.
    if dig * 10 < b.len() && humps(t) * 3 >= up {
        return false;
    }
    entropy(b) >= min_entropy
}

/// Count of uppercase letters that start a lowercase run of 2+ (camelCase words).
fn humps(t: &str) -> usize {
    let b = t.as_bytes();
    (0..b.len().saturating_sub(2))
        .filter(|&i| {
            b[i].is_ascii_uppercase()
                && b[i + 1].is_ascii_lowercase()
                && b[i + 2].is_ascii_lowercase()
        })
        .count()
}

#[derive(Debug, Clone)]
pub struct Gate {
    cfg: Config,
    detectors: Detectors,
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        if !(1.0..=8.0).contains(&cfg.min_entropy) {
            return Err("min_entropy must be between 1 and 8 bits".into());
        }
        Ok(Self {
            cfg: cfg.clone(),
            detectors: Detectors::new(cfg)?,
        })
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let output = cx.is_output();
        let mut spans = Vec::new();
        let mut kinds: Vec<&'static str> = Vec::new();
        let mut registered: Vec<String> = Vec::new();
        for (li, leaf) in cx.leaves.iter().enumerate() {
            for (s, e, k) in self.detectors.find(leaf.text, leaf.key) {
                spans.push(Span {
                    leaf: li,
                    start: s,
                    end: e,
                    kind: k,
                });
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
            if let Some(values) = &cx.req.state.secrets {
                for (s, e, name) in values.find(leaf.text) {
                    spans.push(Span {
                        leaf: li,
                        start: s,
                        end: e,
                        kind: "dgc_secret",
                    });
                    if !registered.iter().any(|n| n == name) {
                        registered.push(name.to_string());
                    }
                }
            }
        }
        if spans.is_empty() {
            return GateOut::allow();
        }
        let mut what: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
        if !registered.is_empty() {
            what.push(format!("stored secret {}", registered.join(", ")));
        }
        let where_ = if output { "output" } else { "arguments" };
        let reason = format!("credentials in {where_}: {}", what.join(", "));
        let mut on = if output {
            self.cfg.on_output
        } else {
            self.cfg.on_argument
        };
        if !registered.is_empty() && !output && self.cfg.on_registered_value == OnFind::Deny {
            on = OnFind::Deny;
        }
        let mut out = match on {
            OnFind::Deny => GateOut::deny(reason),
            OnFind::Redact => {
                let mut o = GateOut::from(Verdict::Redact(reason));
                o.spans = spans;
                o
            }
            OnFind::Flag => GateOut::allow(),
        };
        out = out.with_taint(Taint::PrivateData);
        out
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "aws key in args",
        true,
        Some("redact"),
        r#"{"action":{"type":"tool_call","tool":"http.fetch","arguments":{"headers":{"x-key":"AKIAZ7Q3WJ5PLMKT2HXB"}}}}"#,
    ),
    ex(
        "github token in output",
        true,
        Some("redact"),
        r#"{"action":{"type":"tool_call","tool":"fs.read"},"output":"token=ghp_R8x2Lq0ZfW4mN7cV1bT9yK3dH6sJ5gP0aE2u"}"#,
    ),
    ex(
        "pem key",
        true,
        Some("redact"),
        r#"{"action":{"type":"tool_call","tool":"fs.read"},"output":"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----"}"#,
    ),
    ex(
        "dgc key",
        true,
        None,
        r#"{"action":{"type":"memory_write","content":"remember dgc_sk_Qm9Yx2LpT8vW3nR6kJ1d"}}"#,
    ),
    ex(
        "deny mode",
        true,
        Some("deny"),
        r#"{"config":{"on_argument":"deny"},"action":{"type":"tool_call","tool":"http.fetch","arguments":{"body":"sk_live_4eC39HqLyjWDarjtT1zdp7dc"}}}"#,
    ),
    ex(
        "documentation placeholder",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.write","arguments":{"content":"export OPENAI_API_KEY=sk-your-key-here\nAWS example: AKIAIOSFODNN7EXAMPLE"}}}"#,
    ),
    ex(
        "uuid and sha256",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.read"},"output":"id 3f2b8c1e-9d4a-4f6b-8e2c-7a1d5b9c0e3f sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}"#,
    ),
    ex(
        "camel-case identifier",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.write","arguments":{"content":"function getUserProfileByIdAndOrganization2() {}"}}}"#,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_found_and_hidden_in_debug() {
        let v = SecretValues::new([("openai", "s3cr3t-value-123")]);
        assert_eq!(v.find("x s3cr3t-value-123 y").len(), 1);
        assert!(!format!("{v:?}").contains("s3cr3t"));
    }

    #[test]
    fn generic_entropy() {
        assert!(looks_random("q8Zt2LmX9vRb4NcW7yKp3HsD6fJg1A", 4.0));
        assert!(!looks_random(
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
            4.0
        ));
        assert!(!looks_random("src/components/UserProfile2/index", 4.0));
    }
}

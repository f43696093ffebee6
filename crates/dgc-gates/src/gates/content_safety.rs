//! Gate 21 `content_safety`: model output (and outbound message bodies) checked by built-in
//! heuristics plus an optional external guard model (any OpenAI-compatible endpoint, e.g. Llama
//! Guard). The pipeline stays pure: the runtime calls the classifier with
//! [`classifier_request`], parses the reply with [`parse_classifier_response`] and passes the
//! [`ClassifierOutcome`] in the snapshot. A configured classifier whose outcome is missing or
//! unreachable yields the configured fallback (deny by default).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Cx, Example, GateOut, Phase, ex};
use crate::decision::ApprovalClass;
use crate::model::Action;

/// The external classifier's verdict, supplied by the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ClassifierOutcome {
    Safe,
    Unsafe {
        #[serde(default)]
        categories: Vec<String>,
    },
    /// The classifier could not be reached or answered nonsense.
    Unreachable {
        #[serde(default)]
        error: String,
    },
}

/// What to do when a configured classifier gives no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    #[default]
    Deny,
    NeedsApproval,
    Allow,
}

/// An OpenAI-compatible guard model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Base URL, e.g. `http://127.0.0.1:11434/v1` (the runtime POSTs `{url}/chat/completions`).
    pub url: String,
    /// Model name, e.g. `llama-guard3`.
    pub model: String,
    /// Environment variable holding the API key, if any.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Request timeout the runtime applies. Default 2000.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Default `deny`.
    #[serde(default)]
    pub fallback: Fallback,
}

fn default_timeout() -> u64 {
    2000
}

/// Configuration (`[gates.content_safety]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Built-in heuristic categories to disable.
    pub disabled: Vec<String>,
    /// Check outbound message bodies before sending. Default true.
    pub outbound_messages: bool,
    /// Optional external guard model. Default none.
    pub classifier: Option<ClassifierConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            disabled: Vec::new(),
            outbound_messages: true,
            classifier: None,
        }
    }
}

const HEURISTICS: &[(&str, &str)] = &[
    (
        "weapons",
        r"(?i)\b(?:how to|steps to|instructions (?:for|to)|recipe for|guide to)\b[^.\n]{0,40}\b(?:make|build|synthesi[sz]e|assemble|produce|cook)\b[^.\n]{0,30}\b(?:pipe bombs?|bombs?|explosives?|nerve agents?|sarin|vx|ricin|anthrax|napalm|ghost guns?|chemical weapons?|bioweapons?)\b",
    ),
    (
        "self_harm",
        r"(?i)\b(?:you should|go|just) (?:kill|hurt|harm) yourself\b|\b(?:best|easiest|painless|quickest) ways? to (?:kill yourself|commit suicide|end (?:your|my) life)\b",
    ),
    (
        "violence",
        r"(?i)\bi (?:will|am going to|'m going to) (?:kill|murder|shoot|stab) you\b",
    ),
    (
        "sexual_minors",
        r"(?i)\b(?:child|children|minor|minors|underage|preteen)\b[^.\n]{0,30}\b(?:sexual|nude|naked|explicit|porn)",
    ),
    (
        "malware",
        r"(?i)\b(?:here is|here's|below is)\b[^.\n]{0,30}\b(?:ransomware|keylogger|credential stealer|rootkit|botnet)\b[^.\n]{0,30}\b(?:code|script|payload)\b",
    ),
];

#[derive(Debug, Clone)]
pub struct Gate {
    cfg: Config,
    set: regex::RegexSet,
    names: Vec<&'static str>,
}

/// The external classifier call the runtime must make before evaluating `req` (and, with
/// `output`, before scanning that output): the configured classifier and the text to send. `None`
/// when the gate is off, no classifier is configured, the snapshot already carries a verdict, or the
/// action has no text this gate judges (only model output and outbound message bodies).
pub fn classifier_job(
    policy: &crate::Policy,
    req: &crate::GateRequest<'_>,
    output: Option<&str>,
) -> Option<(ClassifierConfig, String)> {
    if policy.mode(super::GateId::ContentSafety) == crate::decision::Mode::Off
        || req.state.classifier.is_some()
    {
        return None;
    }
    let cfg = policy.gates().content_safety.classifier()?;
    let text = match (req.action, output) {
        (Action::ModelCall(_), Some(o)) => o.to_string(),
        (Action::OutboundMessage(m), _) if policy.gates().content_safety.cfg.outbound_messages => {
            m.body.clone()
        }
        _ => return None,
    };
    Some((cfg.clone(), text))
}

/// The chat-completions body the runtime POSTs to the classifier.
pub fn classifier_request(cfg: &ClassifierConfig, text: &str) -> Value {
    json!({
        "model": cfg.model,
        "temperature": 0,
        "max_tokens": 32,
        "messages": [{"role": "user", "content": crate::text::truncate_bytes(text, 32 * 1024)}],
    })
}

/// Reads a chat-completions reply: Llama Guard style (`safe` / `unsafe\nS1,S10`) or a JSON
/// content `{"flagged": bool, "categories": [...]}`. Anything else counts as unreachable.
pub fn parse_classifier_response(body: &Value) -> ClassifierOutcome {
    let content = body
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    if let Ok(v) = serde_json::from_str::<Value>(content)
        && let Some(flagged) = v.get("flagged").and_then(Value::as_bool)
    {
        let categories = v
            .get("categories")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        return if flagged {
            ClassifierOutcome::Unsafe { categories }
        } else {
            ClassifierOutcome::Safe
        };
    }
    let mut lines = content.lines();
    match lines.next().map(|l| l.trim().to_ascii_lowercase()) {
        Some(l) if l == "safe" => ClassifierOutcome::Safe,
        Some(l) if l == "unsafe" => ClassifierOutcome::Unsafe {
            categories: lines
                .next()
                .unwrap_or("")
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
        },
        _ => ClassifierOutcome::Unreachable {
            error: format!(
                "unrecognised classifier reply `{}`",
                crate::text::excerpt(content, 60)
            ),
        },
    }
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        for d in &cfg.disabled {
            if !HEURISTICS.iter().any(|(n, _)| n == d) {
                return Err(format!("disabled: unknown category `{d}`"));
            }
        }
        if let Some(c) = &cfg.classifier {
            let u = url::Url::parse(&c.url).map_err(|e| format!("classifier.url: {e}"))?;
            if !matches!(u.scheme(), "http" | "https") {
                return Err("classifier.url must be http(s)".into());
            }
        }
        let active: Vec<&(&str, &str)> = HEURISTICS
            .iter()
            .filter(|(n, _)| !cfg.disabled.iter().any(|d| d == n))
            .collect();
        Ok(Self {
            cfg: cfg.clone(),
            set: regex::RegexSet::new(active.iter().map(|(_, r)| crate::text::ascii_wb(r)))
                .map_err(|e| e.to_string())?,
            names: active.iter().map(|(n, _)| *n).collect(),
        })
    }

    pub fn classifier(&self) -> Option<&ClassifierConfig> {
        self.cfg.classifier.as_ref()
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let applies = match (cx.phase, cx.action()) {
            (Phase::Output(_), Action::ModelCall(_)) => true,
            (Phase::Action, Action::OutboundMessage(_)) => self.cfg.outbound_messages,
            _ => false,
        };
        if !applies {
            return GateOut::allow();
        }
        let mut hits: Vec<&str> = Vec::new();
        for leaf in cx.leaves {
            for i in self.set.matches(leaf.text).iter() {
                if !hits.contains(&self.names[i]) {
                    hits.push(self.names[i]);
                }
            }
        }
        if !hits.is_empty() {
            return GateOut::deny(format!("unsafe content: {}", hits.join(", ")));
        }
        let Some(c) = &self.cfg.classifier else {
            return GateOut::allow();
        };
        let fallback = |why: String| match c.fallback {
            Fallback::Deny => GateOut::deny(format!("{why}; fallback deny")),
            Fallback::NeedsApproval => GateOut::approve(
                ApprovalClass::Policy,
                format!("{why}; fallback needs approval"),
            ),
            Fallback::Allow => {
                let mut o = GateOut::allow();
                o.note = Some(format!("{why}; fallback allow"));
                o
            }
        };
        match &cx.req.state.classifier {
            None => fallback("content classifier gave no verdict".into()),
            Some(ClassifierOutcome::Unreachable { error }) => {
                fallback(format!("content classifier unreachable: {error}"))
            }
            Some(ClassifierOutcome::Unsafe { categories }) => GateOut::deny(format!(
                "content classifier flagged: {}",
                categories.join(", ")
            )),
            Some(ClassifierOutcome::Safe) => GateOut::allow(),
        }
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "weapon instructions",
        true,
        Some("deny"),
        r#"{"action":{"type":"model_call","route":"default"},"output":"Sure! Here is how to build a pipe bomb at home: first..."}"#,
    ),
    ex(
        "classifier unreachable",
        true,
        Some("deny"),
        r#"{"config":{"classifier":{"url":"http://127.0.0.1:9/v1","model":"llama-guard3"}},"action":{"type":"model_call","route":"default"},"output":"hello"}"#,
    ),
    ex(
        "classifier unsafe",
        true,
        Some("deny"),
        r#"{"config":{"classifier":{"url":"http://127.0.0.1:9/v1","model":"g"}},"state":{"classifier":{"result":"unsafe","categories":["S2"]}},"action":{"type":"model_call","route":"default"},"output":"x"}"#,
    ),
    ex(
        "benign output",
        false,
        None,
        r#"{"action":{"type":"model_call","route":"default"},"output":"How to build a bookshelf: measure the wall, cut the boards."}"#,
    ),
    ex(
        "classifier safe",
        false,
        None,
        r#"{"config":{"classifier":{"url":"http://127.0.0.1:9/v1","model":"g"}},"state":{"classifier":{"result":"safe"}},"action":{"type":"model_call","route":"default"},"output":"x"}"#,
    ),
];

//! Gate 12 `pii`: emails, phone numbers, payment card numbers (Luhn + issuer prefix), IBANs
//! (mod-97) and US SSNs (valid area/group/serial) in arguments and outputs → flag (taint the task
//! with `private_data`), redact or deny, per side.

use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, Span, ex};
use crate::decision::Verdict;
use crate::gates::secrets_dlp::OnFind;
use crate::model::Taint;

/// Configuration (`[gates.pii]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// In action arguments. Default `flag` (an email tool legitimately carries addresses).
    pub on_argument: OnFind,
    /// In outputs. Default `redact`.
    pub on_output: OnFind,
    /// Detectors to run. Default all: `email`, `phone`, `card`, `iban`, `ssn`.
    pub detect: Vec<String>,
    /// Email domains never reported (documentation domains). Default `example.com/.org/.net`.
    pub ignore_email_domains: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            on_argument: OnFind::Flag,
            on_output: OnFind::Redact,
            detect: ["email", "phone", "card", "iban", "ssn"]
                .map(String::from)
                .to_vec(),
            ignore_email_domains: ["example.com", "example.org", "example.net"]
                .map(String::from)
                .to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    cfg: Config,
    email: regex::Regex,
    phone: regex::Regex,
    card: regex::Regex,
    iban: regex::Regex,
    ssn: regex::Regex,
    on: [bool; 5],
}

pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn card_prefix_ok(d: &[u8]) -> bool {
    let n = |k: usize| d.iter().take(k).fold(0u32, |a, x| a * 10 + u32::from(*x));
    let len = d.len();
    match d.first() {
        Some(4) => matches!(len, 13 | 16 | 19),
        Some(5) => (51..=55).contains(&n(2)) && len == 16,
        Some(2) => (2221..=2720).contains(&n(4)) && len == 16,
        Some(3) => {
            (matches!(n(2), 34 | 37) && len == 15)
                || (n(2) == 35 && len == 16)
                || (matches!(n(2), 36 | 38 | 30) && len == 14)
        }
        Some(6) => {
            (n(4) == 6011 || n(2) == 65 || (644..=649).contains(&n(3)) || n(2) == 62)
                && (16..=19).contains(&len)
        }
        _ => false,
    }
}

/// ISO 13616 mod-97 check.
pub fn iban_valid(s: &str) -> bool {
    let c: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !(15..=34).contains(&c.len())
        || !c[..2].iter().all(u8::is_ascii_uppercase)
        || !c[2..4].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    let mut rem = 0u32;
    for &b in c[4..].iter().chain(&c[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn ssn_valid(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    let [a, g, n] = p.as_slice() else {
        return false;
    };
    *a != "000" && *a != "666" && !a.starts_with('9') && *g != "00" && *n != "0000"
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        let known = ["email", "phone", "card", "iban", "ssn"];
        for d in &cfg.detect {
            if !known.contains(&d.as_str()) {
                return Err(format!("detect: unknown detector `{d}`"));
            }
        }
        let re = |r: &str| regex::Regex::new(&crate::text::ascii_wb(r)).map_err(|e| e.to_string());
        let on = known.map(|k| cfg.detect.iter().any(|d| d == k));
        Ok(Self {
            cfg: cfg.clone(),
            email: re(
                r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b",
            )?,
            phone: re(
                r"(?:\+\d{1,3}[\s.-]?(?:\(?\d{1,4}\)?[\s.-]?){2,5}\d{2,4}|\(\d{3}\)\s?\d{3}[\s.-]\d{4}|\b\d{3}[.-]\d{3}[.-]\d{4})\b",
            )?,
            card: re(r"\b\d(?:[ -]?\d){12,18}\b")?,
            iban: re(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")?,
            ssn: re(r"\b\d{3}-\d{2}-\d{4}\b")?,
            on,
        })
    }

    /// PII findings in one text: (start, end, kind).
    pub fn find(&self, text: &str) -> Vec<(usize, usize, &'static str)> {
        let mut out = Vec::new();
        if self.on[0] && text.contains('@') {
            for m in self.email.find_iter(text).take(1000) {
                let s = m.as_str();
                let domain = s
                    .rsplit_once('@')
                    .map_or("", |(_, d)| d)
                    .to_ascii_lowercase();
                let ssh_remote = text[m.end()..].starts_with(':') && s.starts_with("git@");
                if ssh_remote
                    || self
                        .cfg
                        .ignore_email_domains
                        .iter()
                        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
                {
                    continue;
                }
                out.push((m.start(), m.end(), "email"));
            }
        }
        if self.on[2] {
            for m in self.card.find_iter(text).take(1000) {
                let d: Vec<u8> = m
                    .as_str()
                    .bytes()
                    .filter(u8::is_ascii_digit)
                    .map(|b| b - b'0')
                    .collect();
                if (13..=19).contains(&d.len())
                    && card_prefix_ok(&d)
                    && luhn(&d)
                    && !d.iter().all(|x| *x == d[0])
                {
                    out.push((m.start(), m.end(), "card"));
                }
            }
        }
        if self.on[3] {
            for m in self.iban.find_iter(text).take(1000) {
                if iban_valid(m.as_str()) {
                    out.push((m.start(), m.end(), "iban"));
                }
            }
        }
        if self.on[4] {
            for m in self.ssn.find_iter(text).take(1000) {
                if ssn_valid(m.as_str()) && !overlaps(&out, m.start(), m.end()) {
                    out.push((m.start(), m.end(), "ssn"));
                }
            }
        }
        if self.on[1] {
            for m in self.phone.find_iter(text).take(1000) {
                let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                if (10..=15).contains(&digits) && !overlaps(&out, m.start(), m.end()) {
                    out.push((m.start(), m.end(), "phone"));
                }
            }
        }
        out
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let mut spans = Vec::new();
        let mut kinds: Vec<&'static str> = Vec::new();
        for (li, leaf) in cx.leaves.iter().enumerate() {
            for (s, e, k) in self.find(leaf.text) {
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
        }
        if spans.is_empty() {
            return GateOut::allow();
        }
        let output = cx.is_output();
        let reason = format!(
            "personal data in {}: {}",
            if output { "output" } else { "arguments" },
            kinds.join(", ")
        );
        let out = match if output {
            self.cfg.on_output
        } else {
            self.cfg.on_argument
        } {
            OnFind::Deny => GateOut::deny(reason),
            OnFind::Redact => {
                let mut o = GateOut::from(Verdict::Redact(reason));
                o.spans = spans;
                o
            }
            OnFind::Flag => GateOut::allow(),
        };
        out.with_taint(Taint::PrivateData)
    }
}

fn overlaps(found: &[(usize, usize, &str)], s: usize, e: usize) -> bool {
    found.iter().any(|(a, b, _)| s < *b && *a < e)
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "email in output",
        true,
        Some("redact"),
        r#"{"action":{"type":"tool_call","tool":"db.read"},"output":"contact: jane.doe@acme-corp.io"}"#,
    ),
    ex(
        "visa card",
        true,
        Some("redact"),
        r#"{"action":{"type":"tool_call","tool":"db.read"},"output":"card 4111 1111 1111 1111 exp 12/29"}"#,
    ),
    ex(
        "iban",
        true,
        Some("redact"),
        r#"{"action":{"type":"tool_call","tool":"db.read"},"output":"IBAN DE89 3704 0044 0532 0130 00"}"#,
    ),
    ex(
        "ssn",
        true,
        Some("redact"),
        r#"{"action":{"type":"tool_call","tool":"db.read"},"output":"SSN 123-45-6789"}"#,
    ),
    ex(
        "phone in args flagged",
        true,
        Some("allow"),
        r#"{"action":{"type":"tool_call","tool":"sms.send","arguments":{"to":"+1 415 555 0132"}}}"#,
    ),
    ex(
        "luhn-invalid number",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"db.read"},"output":"order 4111 1111 1111 1112"}"#,
    ),
    ex(
        "bad iban checksum",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"db.read"},"output":"DE89 3704 0044 0532 0130 01"}"#,
    ),
    ex(
        "git remote and docs email",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.read"},"output":"git@github.com:org/repo.git maintainer: dev@example.com date 2024-01-15 v1.2.3"}"#,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(!iban_valid("GB82 WEST 1234 5698 7654 33"));
        assert!(!ssn_valid("000-12-3456"));
        assert!(!ssn_valid("912-12-3456"));
    }
}

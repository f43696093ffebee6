//! Bounded helpers over action text: walking JSON arguments with a depth limit, JSON-pointer
//! escaping, span redaction, Shannon entropy and safe truncation for reasons.

use serde_json::Value;

/// One string leaf of the arguments (or a key name), with its JSON pointer.
#[derive(Debug, Clone)]
pub struct Leaf<'a> {
    pub pointer: String,
    /// The object key this string sits under (`url`, `path`, …), lowercased by the caller.
    pub key: &'a str,
    pub text: &'a str,
}

/// Why arguments could not be walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkError {
    TooDeep(usize),
    TooMany(usize),
}

/// Collects every string leaf (values, not keys) up to `max_depth` levels and `max_leaves` leaves.
pub fn string_leaves<'a>(
    v: &'a Value,
    max_depth: usize,
    max_leaves: usize,
) -> Result<Vec<Leaf<'a>>, WalkError> {
    let mut out = Vec::new();
    walk(v, "", String::new(), 0, max_depth, max_leaves, &mut out)?;
    Ok(out)
}

fn walk<'a>(
    v: &'a Value,
    key: &'a str,
    pointer: String,
    depth: usize,
    max_depth: usize,
    max_leaves: usize,
    out: &mut Vec<Leaf<'a>>,
) -> Result<(), WalkError> {
    if depth > max_depth {
        return Err(WalkError::TooDeep(max_depth));
    }
    match v {
        Value::String(s) => {
            if out.len() >= max_leaves {
                return Err(WalkError::TooMany(max_leaves));
            }
            out.push(Leaf {
                pointer,
                key,
                text: s,
            });
        }
        Value::Array(items) => {
            for (i, it) in items.iter().enumerate() {
                walk(
                    it,
                    key,
                    format!("{pointer}/{i}"),
                    depth + 1,
                    max_depth,
                    max_leaves,
                    out,
                )?;
            }
        }
        Value::Object(map) => {
            for (k, it) in map {
                let p = format!("{pointer}/{}", escape_pointer(k));
                walk(it, k, p, depth + 1, max_depth, max_leaves, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Canonical JSON (object keys sorted, no whitespace) so digests and fingerprints do not depend on
/// key order or on serde_json's `preserve_order` feature being enabled elsewhere in the build.
pub fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(x) = map.get(*k) {
                    canonical_json(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Depth of a JSON value (scalars are depth 0), stopping early past `limit`.
pub fn depth_exceeds(v: &Value, limit: usize) -> bool {
    fn d(v: &Value, left: usize) -> bool {
        match v {
            Value::Array(a) => left == 0 || a.iter().any(|x| d(x, left - 1)),
            Value::Object(o) => left == 0 || o.values().any(|x| d(x, left - 1)),
            _ => false,
        }
    }
    d(v, limit)
}

pub fn escape_pointer(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Looks up a JSON pointer mutably.
pub fn pointer_mut<'a>(v: &'a mut Value, pointer: &str) -> Option<&'a mut Value> {
    v.pointer_mut(pointer)
}

/// Replaces byte spans (in any order, possibly overlapping) with `[REDACTED:kind]` markers;
/// overlapping spans merge into one marker named after the first.
pub fn redact_spans(text: &str, spans: &mut [(usize, usize, &'static str)]) -> String {
    spans.sort_by_key(|s| (s.0, std::cmp::Reverse(s.1)));
    let mut merged: Vec<(usize, usize, &'static str)> = Vec::with_capacity(spans.len());
    for &(start, end, kind) in spans.iter() {
        if start >= end || end > text.len() {
            continue;
        }
        match merged.last_mut() {
            Some(last) if start < last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end, kind)),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (start, end, kind) in merged {
        if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            continue;
        }
        out.push_str(&text[pos..start]);
        out.push_str("[REDACTED:");
        out.push_str(kind);
        out.push(']');
        pos = end;
    }
    out.push_str(&text[pos..]);
    out
}

/// Rewrites `\b` to the ASCII word boundary `(?-u:\b)`. The regex crate's DFAs cannot evaluate a
/// Unicode word boundary on non-ASCII haystacks and fall back to a much slower engine; the ASCII
/// boundary keeps every scan on the fast linear-time path (non-ASCII text is still matched).
pub fn ascii_wb(pattern: &str) -> String {
    pattern.replace(r"\b", r"(?-u:\b)")
}

/// Shannon entropy in bits per byte.
pub fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// A short, log-safe excerpt of untrusted text for a reason string.
pub fn excerpt(s: &str, max_chars: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max_chars)
        .map(|c| {
            if c.is_control() || is_invisible(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    if s.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// Characters that render as nothing or reorder text: tags, bidi controls, zero-width.
pub fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0xE0000..=0xE007F | 0x202A..=0x202E | 0x2066..=0x2069 | 0x200B..=0x200F | 0x2060..=0x2064 | 0xFEFF | 0x180E | 0x061C)
}

/// Truncates to at most `max` bytes at a char boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_merges_overlaps() {
        let mut spans = [(2, 6, "a"), (4, 8, "b"), (10, 12, "c")];
        assert_eq!(
            redact_spans("0123456789abcd", &mut spans),
            "01[REDACTED:a]89[REDACTED:c]cd"
        );
    }

    #[test]
    fn depth_limit() {
        let v: Value = serde_json::json!({"a": {"b": [1]}});
        assert!(!depth_exceeds(&v, 3));
        assert!(depth_exceeds(&v, 2));
        assert!(string_leaves(&serde_json::json!({"a":{"b":"x"}}), 1, 10).is_err());
    }
}

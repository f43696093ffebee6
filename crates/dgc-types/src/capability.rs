//! Capabilities: dotted names with an optional `:param`, and wildcard patterns that grant sets of them.
//!
//! A capability names one thing a key may do (`memory.read`, `secrets.read:openai`). A grant is
//! either a literal capability or a wildcard pattern ending in `*` at a segment boundary:
//! `*` (everything), `memory.*` (every `memory.` capability), `secrets.read:*` (every parameter).
//! Patterns are treated as sets of names, which makes "is this grant a subset of that one"
//! (needed when a key mints a child key) a plain prefix test.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest accepted capability string; keeps headers and stored rows bounded.
pub const MAX_CAPABILITY_LEN: usize = 128;
/// Most capabilities one key may hold.
pub const MAX_CAPABILITIES: usize = 64;

/// Why a capability string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    #[error("capability is empty")]
    Empty,
    #[error("capability `{0}` is longer than {MAX_CAPABILITY_LEN} characters")]
    TooLong(String),
    #[error(
        "capability `{0}` is malformed: use dotted lowercase segments [a-z0-9_-], an optional \
         `:param`, and `*` only as a whole final segment (`memory.*`) or parameter (`secrets.read:*`)"
    )]
    Malformed(String),
    #[error("too many capabilities (at most {MAX_CAPABILITIES})")]
    TooMany,
}

/// One capability or wildcard grant, validated.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability {
    text: String,
    /// For wildcards: the prefix every covered name starts with (`memory.` for `memory.*`,
    /// empty for `*`). `None` for a literal.
    wildcard_prefix: Option<usize>,
}

impl Capability {
    /// Parses and validates a capability or grant pattern.
    pub fn parse(s: &str) -> Result<Self, CapabilityError> {
        if s.is_empty() {
            return Err(CapabilityError::Empty);
        }
        if s.len() > MAX_CAPABILITY_LEN {
            return Err(CapabilityError::TooLong(s.chars().take(32).collect()));
        }
        let malformed = || CapabilityError::Malformed(s.to_string());
        if s == "*" {
            return Ok(Self {
                text: s.to_string(),
                wildcard_prefix: Some(0),
            });
        }
        let (name, param) = match s.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        };
        let segments: Vec<&str> = name.split('.').collect();
        let mut wildcard = None;
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            if *seg == "*" {
                if !last || param.is_some() || i == 0 {
                    return Err(malformed());
                }
                wildcard = Some(name.len() - 1);
                continue;
            }
            if seg.is_empty()
                || !seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                return Err(malformed());
            }
        }
        if let Some(p) = param {
            if p == "*" {
                wildcard = Some(s.len() - 1);
            } else if p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
            {
                return Err(malformed());
            }
        }
        Ok(Self {
            text: s.to_string(),
            wildcard_prefix: wildcard,
        })
    }

    /// The capability as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True for `*`, `x.*` and `x:*` grants.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard_prefix.is_some()
    }

    /// The string every covered name starts with (wildcards) or the name itself (literals).
    fn stem(&self) -> &str {
        match self.wildcard_prefix {
            Some(n) => &self.text[..n],
            None => &self.text,
        }
    }

    /// Does this grant cover `other` (a literal capability or a narrower pattern)?
    ///
    /// Patterns are sets of names; `a` covers `b` when every name in `b` is in `a`.
    pub fn covers(&self, other: &Capability) -> bool {
        match self.wildcard_prefix {
            None => self.text == other.text,
            Some(_) => {
                other.stem().starts_with(self.stem()) && {
                    // `memory.*` must not cover `memory` itself: a covered literal needs at least
                    // one character after the prefix, and a covered pattern's prefix is at least as long.
                    other.is_wildcard() || other.text.len() > self.stem().len()
                }
            }
        }
    }
}

impl fmt::Debug for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Capability({})", self.text)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Capability {
    type Err = CapabilityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Capability {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A set of grants, as held by a key or an agent's capability ceiling.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CapabilitySet(BTreeSet<Capability>);

impl CapabilitySet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every capability, as held by the bootstrap admin key.
    pub fn all() -> Self {
        let mut s = BTreeSet::new();
        s.insert(Capability {
            text: "*".into(),
            wildcard_prefix: Some(0),
        });
        Self(s)
    }

    /// Parses a comma-separated list (`fs.read, net.http`), as sent in `X-DGC-Capability`.
    pub fn parse_list(s: &str) -> Result<Self, CapabilityError> {
        let items: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .collect();
        if items.is_empty() {
            return Err(CapabilityError::Empty);
        }
        Self::from_strs(items)
    }

    /// Builds a set from strings, validating each.
    pub fn from_strs<I, S>(items: I) -> Result<Self, CapabilityError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for it in items {
            set.insert(Capability::parse(it.as_ref())?);
            if set.len() > MAX_CAPABILITIES {
                return Err(CapabilityError::TooMany);
            }
        }
        Ok(Self(set))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Capability> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Does the set grant this capability (or every name in this pattern)?
    pub fn allows(&self, cap: &Capability) -> bool {
        self.0.iter().any(|g| g.covers(cap))
    }

    /// [`Self::allows`] for a capability given as a string; malformed names are never allowed.
    pub fn allows_str(&self, cap: &str) -> bool {
        Capability::parse(cap).is_ok_and(|c| self.allows(&c))
    }

    /// Is every grant in `other` covered by this set? (Minting, narrowing, delegation.)
    pub fn is_superset_of(&self, other: &CapabilitySet) -> bool {
        other.0.iter().all(|c| self.allows(c))
    }

    /// The grants of `other` that this set does not cover, for error messages.
    pub fn missing_from<'a>(&self, other: &'a CapabilitySet) -> Vec<&'a Capability> {
        other.0.iter().filter(|c| !self.allows(c)).collect()
    }

    /// Capabilities as strings, sorted.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|c| c.text.clone()).collect()
    }
}

impl FromIterator<Capability> for CapabilitySet {
    fn from_iter<T: IntoIterator<Item = Capability>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Capability {
        Capability::parse(s).unwrap()
    }

    #[test]
    fn parses_valid_and_rejects_malformed() {
        for ok in [
            "*",
            "admin",
            "memory.read",
            "memory.*",
            "secrets.read:openai",
            "secrets.read:*",
            "mcp.time",
            "mcp.git-2",
        ] {
            assert!(Capability::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Memory.read",
            "memory..read",
            "memory.*.read",
            "*.read",
            "memory.re*",
            "a:b:c",
            "memory.",
            ".x",
            "x:*:y",
            "a b",
            "fs.read\n",
        ] {
            assert!(
                Capability::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn wildcard_covers_only_at_segment_boundary() {
        assert!(c("memory.*").covers(&c("memory.read")));
        assert!(c("memory.*").covers(&c("memory.*")));
        assert!(!c("memory.*").covers(&c("memory")));
        assert!(!c("memory.*").covers(&c("memoryx.read")));
        assert!(!c("memory.read").covers(&c("memory.*")));
        assert!(c("*").covers(&c("secrets.read:x")));
        assert!(c("secrets.*").covers(&c("secrets.read:x")));
        assert!(c("secrets.read:*").covers(&c("secrets.read:x")));
        assert!(!c("secrets.read:*").covers(&c("secrets.read")));
        assert!(!c("secrets.read:x").covers(&c("secrets.read:y")));
    }

    #[test]
    fn subset_checks() {
        let parent = CapabilitySet::parse_list("memory.*,fs.read").unwrap();
        assert!(parent.is_superset_of(&CapabilitySet::parse_list("memory.read").unwrap()));
        assert!(parent.is_superset_of(&CapabilitySet::parse_list("memory.*,fs.read").unwrap()));
        assert!(!parent.is_superset_of(&CapabilitySet::parse_list("fs.write").unwrap()));
        assert!(!parent.is_superset_of(&CapabilitySet::parse_list("*").unwrap()));
        assert!(CapabilitySet::all().is_superset_of(&parent));
    }
}

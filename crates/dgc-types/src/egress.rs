//! Egress allowlist entries (`host[:port]`, `*.example.com`) and the one host normaliser that both
//! the `egress` gate and the sandbox's egress proxy use, so they can never disagree.
//!
//! Normalisation: ASCII-lowercase, one trailing dot removed, internationalised names converted to
//! their IDNA (punycode) ASCII form. `*.example.com` matches strict subdomains only — never
//! `example.com` itself and never `badexample.com`. IP literals only match a pattern naming that
//! exact address. A pattern without a port allows every port.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest accepted host name (RFC 1035 limit for the ASCII form).
pub const MAX_HOST_LEN: usize = 253;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("host is empty")]
    Empty,
    #[error("host `{0}` is not a valid DNS name or IP address")]
    Invalid(String),
    #[error("port in `{0}` is not a number between 1 and 65535")]
    BadPort(String),
    #[error("wildcard in `{0}` must be a leading `*.` followed by at least two labels")]
    BadWildcard(String),
}

/// A host as it appears on the wire after normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Normalises a host name or IP literal (`[::1]` brackets accepted) for comparison.
pub fn normalize_host(raw: &str) -> Result<Host, HostError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(HostError::Empty);
    }
    let unbracketed = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > MAX_HOST_LEN * 4 {
        return Err(HostError::Invalid(truncate(raw)));
    }
    let ascii = idna::domain_to_ascii_strict(s).map_err(|_| HostError::Invalid(truncate(raw)))?;
    if ascii.is_empty()
        || ascii.len() > MAX_HOST_LEN
        || ascii.split('.').any(|l| l.is_empty() || l.len() > 63)
        || !ascii
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(HostError::Invalid(truncate(raw)));
    }
    // Names made only of digits and dots are IPv4 in disguise (`127.1`, `0x7f.1` is caught above by
    // the charset); refuse them rather than let a resolver interpret them.
    if ascii
        .split('.')
        .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(HostError::Invalid(truncate(raw)));
    }
    Ok(Host::Name(ascii))
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// One allowlist entry.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    text: String,
    kind: PatternKind,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PatternKind {
    Exact(Host),
    /// Matches names ending in `.suffix` (suffix already normalised, without the leading dot).
    Subdomains(String),
}

impl HostPattern {
    pub fn parse(raw: &str) -> Result<Self, HostError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(HostError::Empty);
        }
        let (host_part, port) = split_host_port(s)?;
        let kind = if let Some(rest) = host_part.strip_prefix("*.") {
            match normalize_host(rest)? {
                Host::Name(n) if n.contains('.') => PatternKind::Subdomains(n),
                _ => return Err(HostError::BadWildcard(truncate(s))),
            }
        } else if host_part.contains('*') {
            return Err(HostError::BadWildcard(truncate(s)));
        } else {
            PatternKind::Exact(normalize_host(host_part)?)
        };
        let mut text = match &kind {
            PatternKind::Exact(h) => h.to_string(),
            PatternKind::Subdomains(n) => format!("*.{n}"),
        };
        if let Some(p) = port {
            text.push_str(&format!(":{p}"));
        }
        Ok(Self { text, kind, port })
    }

    /// Does this entry allow connecting to `host:port`? `host` is normalised here too.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        match normalize_host(host) {
            Ok(h) => self.matches_host(&h, port),
            Err(_) => false,
        }
    }

    /// [`Self::matches`] for an already-normalised host.
    pub fn matches_host(&self, host: &Host, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match (&self.kind, host) {
            (PatternKind::Exact(h), other) => h == other,
            (PatternKind::Subdomains(suffix), Host::Name(n)) => {
                n.len() > suffix.len() + 1
                    && n.ends_with(suffix.as_str())
                    && n.as_bytes()[n.len() - suffix.len() - 1] == b'.'
            }
            (PatternKind::Subdomains(_), Host::Ip(_)) => false,
        }
    }

    /// True when the entry names an IP address explicitly (the only way to allow an IP literal
    /// or a private-range destination).
    pub fn explicit_ip(&self) -> Option<IpAddr> {
        match &self.kind {
            PatternKind::Exact(Host::Ip(ip)) => Some(*ip),
            _ => None,
        }
    }

    /// The normalised pattern text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Splits `host[:port]`, accepting `[v6]:port` and bare IPv6 (no port).
fn split_host_port(s: &str) -> Result<(&str, Option<u16>), HostError> {
    let parse_port = |p: &str| -> Result<u16, HostError> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(HostError::BadPort(truncate(s))),
        }
    };
    if s.starts_with('[') {
        let end = s.find(']').ok_or_else(|| HostError::Invalid(truncate(s)))?;
        let host = &s[..=end];
        let rest = &s[end + 1..];
        return match rest.strip_prefix(':') {
            Some(p) => Ok((host, Some(parse_port(p)?))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err(HostError::Invalid(truncate(s))),
        };
    }
    if s.matches(':').count() > 1 {
        return Ok((s, None)); // bare IPv6 literal
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Ok((h, Some(parse_port(p)?))),
        None => Ok((s, None)),
    }
}

impl fmt::Debug for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostPattern({})", self.text)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for HostPattern {
    type Err = HostError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for HostPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An agent's (or sandbox's) list of allowed destinations. Empty means no egress at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EgressAllowlist(pub Vec<HostPattern>);

impl EgressAllowlist {
    pub fn allows(&self, host: &str, port: u16) -> bool {
        match normalize_host(host) {
            Ok(h) => self.0.iter().any(|p| p.matches_host(&h, port)),
            Err(_) => false,
        }
    }

    /// Is this IP address named explicitly by some entry (and so allowed even if private)?
    pub fn names_ip(&self, ip: IpAddr, port: u16) -> bool {
        self.0
            .iter()
            .any(|p| p.explicit_ip() == Some(ip) && p.port.is_none_or(|pp| pp == port))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    #[test]
    fn exact_names_normalise_case_trailing_dot_and_idna() {
        assert!(p("example.com").matches("EXAMPLE.com.", 443));
        assert!(p("Bücher.example").matches("xn--bcher-kva.example", 80));
        // Cyrillic "а" look-alike is a different name.
        assert!(!p("example.com").matches("exаmple.com", 443));
        assert!(!p("example.com").matches("example.com.evil.net", 443));
    }

    #[test]
    fn subdomain_wildcards_are_strict() {
        let w = p("*.example.com");
        assert!(w.matches("api.example.com", 443));
        assert!(w.matches("a.b.example.com", 443));
        assert!(!w.matches("example.com", 443));
        assert!(!w.matches("badexample.com", 443));
        assert!(!w.matches("example.com.attacker.io", 443));
    }

    #[test]
    fn ports_and_ips() {
        assert!(p("example.com:8443").matches("example.com", 8443));
        assert!(!p("example.com:8443").matches("example.com", 443));
        assert!(p("127.0.0.1:9000").matches("127.0.0.1", 9000));
        assert!(p("[::1]:9000").matches("[::1]", 9000));
        assert!(p("::1").matches("::1", 1));
        assert!(!p("example.com").matches("93.184.215.14", 443));
        assert!(!p("*.example.com").matches("10.0.0.1", 443));
    }

    #[test]
    fn rejects_bad_patterns() {
        for bad in [
            "",
            "*",
            "*.com",
            "a.*.com",
            "ex*ample.com",
            "example.com:0",
            "example.com:99999",
            "exa mple.com",
            "127.1",
            "1234",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}

//! Durations as the API and CLI accept them: integer seconds (`90`) or a unit string (`90s`, `24h`,
//! `7d`, `1h30m`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration: use seconds (90) or a unit string like 90s, 15m, 24h, 7d")]
pub struct DurationError(pub String);

/// Parses `90`, `90s`, `15m`, `24h`, `7d`, `1h30m`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    let err = || DurationError(s.chars().take(40).collect());
    if t.is_empty() {
        return Err(err());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t).map_err(|_| err())
}

/// A duration field in JSON: integer seconds or a string with units. Serialises as seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationSpec(pub Duration);

impl DurationSpec {
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.subsec_nanos() == 0 {
            s.serialize_u64(self.0.as_secs())
        } else {
            s.serialize_str(&humantime::format_duration(self.0).to_string())
        }
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected seconds (integer) or a duration string like \"24h\"")
        })? {
            Raw::Secs(n) => Ok(Self(Duration::from_secs(n))),
            Raw::Text(t) => parse_duration(&t)
                .map(Self)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl utoipa::PartialSchema for DurationSpec {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .examples(["24h"]),
            )
            .description(Some("Seconds, or a string with units: 90s, 15m, 24h, 7d"))
            .into()
    }
}

impl utoipa::ToSchema for DurationSpec {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        for bad in ["", "abc", "-5", "5 parsecs", "1.5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let d: DurationSpec = serde_json::from_str("\"7d\"").unwrap();
        assert_eq!(d.0, Duration::from_secs(7 * 86400));
        let d: DurationSpec = serde_json::from_str("60").unwrap();
        assert_eq!(d.0, Duration::from_secs(60));
        assert!(serde_json::from_str::<DurationSpec>("-1").is_err());
        assert!(serde_json::from_str::<DurationSpec>("{}").is_err());
    }
}

//! Prefixed, time-ordered identifiers (`ag_…`, `mem_…`, `key_…`, `req_…`).
//!
//! The body is a ULID in lowercase Crockford base32, so ids sort by creation time and can serve as
//! stable pagination cursors. Parsing checks the prefix and the body, so an id from one kind of
//! object is never accepted where another is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Error for a string that is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{value}` is not a valid {kind} id (expected `{prefix}` followed by 26 base32 characters)"
)]
pub struct IdError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

const BODY_LEN: usize = 26;

fn valid_body(b: &str) -> bool {
    b.len() == BODY_LEN
        && b.bytes().all(|c| c.is_ascii_digit() || (c.is_ascii_lowercase() && !matches!(c, b'i' | b'l' | b'o' | b'u')))
        // The first character encodes the top 3 bits of a 128-bit value: at most '7'.
        && b.as_bytes()[0] <= b'7'
}

/// A fresh ULID body, lowercase.
pub fn new_ulid_body() -> String {
    ulid::Ulid::new().to_string().to_ascii_lowercase()
}

macro_rules! prefixed_id {
    ($(#[$m:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id, ordered after every id generated earlier on this host.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, new_ulid_body()))
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                match s.strip_prefix($prefix) {
                    Some(body) if valid_body(body) => Ok(Self(s.to_string())),
                    _ => Err(IdError { kind: $kind, prefix: $prefix, value: s.chars().take(64).collect() }),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The ULID part, usable as a single search-index token.
            pub fn body(&self) -> &str {
                &self.0[$prefix.len()..]
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "[0-7][0-9a-hjkmnp-tv-z]{25}$")))
                    .examples([concat!($prefix, "01jd8x7k3m9q2w5e6r7t8y9v0a")])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(
    /// An agent.
    AgentId, "ag_", "agent"
);
prefixed_id!(
    /// A memory of an agent.
    MemoryId, "mem_", "memory"
);
prefixed_id!(
    /// An API key (the id, never the secret).
    KeyId, "key_", "key"
);
prefixed_id!(
    /// A task.
    TaskId, "tk_", "task"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_other_kinds() {
        let a = AgentId::generate();
        assert_eq!(AgentId::parse(a.as_str()).unwrap(), a);
        assert!(MemoryId::parse(a.as_str()).is_err());
        assert!(AgentId::parse("ag_").is_err());
        assert!(
            AgentId::parse("ag_01JD8X7K3M9Q2W5E6R7T8Y9U0A").is_err(),
            "uppercase is not canonical"
        );
        assert!(
            AgentId::parse("ag_81jd8x7k3m9q2w5e6r7t8y9v0a").is_err(),
            "overflowing first char"
        );
        assert!(
            AgentId::parse("ag_01jd8x7k3m9q2w5e6r7t8y9u0l").is_err(),
            "l is not Crockford"
        );
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = AgentId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = AgentId::generate();
        assert!(a < b);
    }
}

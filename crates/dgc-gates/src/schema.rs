//! [`ToolSchema`]: a tool's JSON Schema compiled once at registration (the pipeline never
//! compiles schemas per call). Remote `$ref`s are never fetched; patterns use the linear-time
//! `regex` engine so a hostile schema or argument cannot make validation backtrack.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Why a schema was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tool input schema: {0}")]
pub struct SchemaError(pub String);

/// A compiled JSON Schema, serialised as the schema document itself.
pub struct ToolSchema {
    raw: Value,
    validator: jsonschema::Validator,
}

impl ToolSchema {
    pub fn compile(raw: Value) -> Result<Self, SchemaError> {
        let validator = jsonschema::options()
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(&raw)
            .map_err(|e| SchemaError(e.to_string()))?;
        Ok(Self { raw, validator })
    }

    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// Up to `max` validation errors as `path: message` strings.
    pub fn errors(&self, instance: &Value, max: usize) -> Vec<String> {
        self.validator
            .iter_errors(instance)
            .take(max)
            .map(|e| {
                let path = e.instance_path().to_string();
                let msg = crate::text::excerpt(&e.to_string(), 160);
                if path.is_empty() {
                    msg
                } else {
                    format!("{path}: {msg}")
                }
            })
            .collect()
    }
}

impl fmt::Debug for ToolSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ToolSchema({})",
            crate::text::excerpt(&self.raw.to_string(), 60)
        )
    }
}

impl Serialize for ToolSchema {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ToolSchema {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        Self::compile(raw).map_err(serde::de::Error::custom)
    }
}

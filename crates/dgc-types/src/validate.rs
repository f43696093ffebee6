//! Field-level validation errors and the text checks every string field goes through.

use std::fmt;

/// A value that failed validation, with the JSON path of the field (`config.sandbox.cpu`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Length in bytes within `[min, max]` and no control characters other than tab and newline.
/// `min` counts characters after trimming whitespace, so `"   "` is empty.
pub fn check_text(field: &str, s: &str, min: usize, max: usize) -> Result<(), FieldError> {
    if s.len() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} bytes (got {})", s.len()),
        ));
    }
    if s.trim().chars().count() < min {
        return Err(FieldError::new(
            field,
            if min == 1 {
                "must not be empty".to_string()
            } else {
                format!("must be at least {min} characters")
            },
        ));
    }
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

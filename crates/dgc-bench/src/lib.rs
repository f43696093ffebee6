//! Shared helpers for DGC's benchmark programs: percentiles and result formatting.
#![forbid(unsafe_code)]

use std::time::Duration;

/// Percentile (0–100) of sorted durations, in milliseconds.
pub fn pct_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

//! Gate 16 `rate_limit`: GCRA limits per key, per agent and per (agent, tool). The state (one
//! theoretical arrival time per bucket) lives outside the pure pipeline: it is read from the
//! snapshot and new values come back as [`StateUpdate::RateLimit`].

use serde::{Deserialize, Serialize};

use super::{Cx, Example, GateOut, ex};
use crate::decision::StateUpdate;

/// One limit: `rate` requests per `per_secs`, with bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub rate: u32,
    pub per_secs: u32,
    pub burst: u32,
}

/// Configuration (`[gates.rate_limit]`). A missing limit means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Per API key. Default 20/s, burst 40.
    pub per_key: Option<Limit>,
    /// Per agent. Default 10/s, burst 20.
    pub per_agent: Option<Limit>,
    /// Per agent and tool. Default 5/s, burst 10.
    pub per_tool: Option<Limit>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            per_key: Some(Limit {
                rate: 20,
                per_secs: 1,
                burst: 40,
            }),
            per_agent: Some(Limit {
                rate: 10,
                per_secs: 1,
                burst: 20,
            }),
            per_tool: Some(Limit {
                rate: 5,
                per_secs: 1,
                burst: 10,
            }),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    cfg: Config,
}

/// Emission interval and burst tolerance in µs.
fn params(l: &Limit) -> (u64, u64) {
    let t = (u64::from(l.per_secs) * 1_000_000) / u64::from(l.rate.max(1));
    (t.max(1), t.max(1) * u64::from(l.burst.max(1) - 1))
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        for (name, l) in [
            ("per_key", cfg.per_key),
            ("per_agent", cfg.per_agent),
            ("per_tool", cfg.per_tool),
        ] {
            if let Some(l) = l
                && (l.rate == 0 || l.per_secs == 0 || l.burst == 0)
            {
                return Err(format!("{name}: rate, per_secs and burst must be positive"));
            }
        }
        Ok(Self { cfg: cfg.clone() })
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let now = cx.req.context.now_ms.saturating_mul(1000);
        let p = cx.req.principal;
        let mut buckets: Vec<(String, Limit)> = Vec::with_capacity(3);
        if let (Some(l), Some(k)) = (self.cfg.per_key, &p.key_id) {
            buckets.push((format!("key:{k}"), l));
        }
        if let Some(l) = self.cfg.per_agent {
            buckets.push((format!("agent:{}", p.agent), l));
        }
        if let (Some(l), Some(t)) = (self.cfg.per_tool, cx.action().tool()) {
            buckets.push((format!("tool:{}:{}", p.agent, t.tool), l));
        }
        let mut updates = Vec::with_capacity(buckets.len());
        for (bucket, l) in buckets {
            let (t, tau) = params(&l);
            let tat = cx
                .req
                .state
                .rate_limits
                .get(&bucket)
                .copied()
                .unwrap_or(0)
                .max(now);
            if tat - now > tau {
                let retry_ms = (tat - now - tau).div_ceil(1000);
                return GateOut::deny(format!(
                    "rate limit {bucket} ({}/{}s, burst {}) exceeded; retry in {retry_ms} ms",
                    l.rate, l.per_secs, l.burst
                ));
            }
            updates.push(StateUpdate::RateLimit {
                bucket,
                tat_us: tat + t,
            });
        }
        let mut out = GateOut::allow();
        out.updates = updates;
        out
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "bucket full",
        true,
        Some("deny"),
        r#"{"principal":{"agent":"ag_a"},"action":{"type":"tool_call","tool":"fs.read"},"context":{"now_ms":1000},"state":{"rate_limits":{"tool:ag_a:fs.read":5000000}}}"#,
    ),
    ex(
        "fresh bucket",
        false,
        None,
        r#"{"principal":{"agent":"ag_a"},"action":{"type":"tool_call","tool":"fs.read"},"context":{"now_ms":1000}}"#,
    ),
    ex(
        "within burst",
        false,
        None,
        r#"{"principal":{"agent":"ag_a"},"action":{"type":"tool_call","tool":"fs.read"},"context":{"now_ms":1000},"state":{"rate_limits":{"tool:ag_a:fs.read":1500000}}}"#,
    ),
];

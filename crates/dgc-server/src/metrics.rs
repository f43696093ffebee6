//! Prometheus metrics for the HTTP layer and the store. Labels are bounded: the route label is the
//! route template (`/v1/agents/{id}`), never the raw path.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Every metric DGC exports, registered once per server.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub http_in_flight: IntGauge,
    pub memories: IntGauge,
    pub agents: IntGauge,
    pub auth_failures: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "dgc_http_requests_total",
                "HTTP requests served, by method, route template and status.",
            ),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "dgc_http_request_duration_seconds",
                "HTTP request latency by method and route template.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["method", "route"],
        )?;
        let http_in_flight = IntGauge::new(
            "dgc_http_requests_in_flight",
            "HTTP requests being served now.",
        )?;
        let memories = IntGauge::new("dgc_memories", "Memories stored, all agents.")?;
        let agents = IntGauge::new("dgc_agents", "Agents defined.")?;
        let auth_failures = IntCounterVec::new(
            Opts::new("dgc_auth_failures_total", "Rejected API keys, by reason."),
            &["reason"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "dgc_build_info",
                "Build information; the value is always 1.",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(http_in_flight.clone()),
            Box::new(memories.clone()),
            Box::new(agents.clone()),
            Box::new(auth_failures.clone()),
            Box::new(build_info),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ] {
            registry.register(c)?;
        }
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            http_in_flight,
            memories,
            agents,
            auth_failures,
        })
    }

    /// Registers an extra collector (other subsystems add theirs).
    pub fn register(
        &self,
        c: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(c)
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

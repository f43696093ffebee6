//! The HTTP client for the `content_safety` gate's optional external classifier: any
//! OpenAI-compatible guard model, called at `{url}/chat/completions` with the configured timeout.
//! Every failure (connection, timeout, HTTP status, unreadable reply) is an `Unreachable` verdict,
//! so the gate's configured fallback applies (deny by default).

use std::time::Duration;

use dgc_gates::{
    ClassifierConfig, ClassifierOutcome, classifier_request, parse_classifier_response,
};

/// Calls the classifier; never fails, never waits longer than the configured timeout.
pub async fn classify(cfg: &ClassifierConfig, text: &str) -> ClassifierOutcome {
    let unreachable = |error: String| ClassifierOutcome::Unreachable { error };
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(cfg.timeout_ms.max(1)))
        .build()
    {
        Ok(c) => c,
        Err(e) => return unreachable(format!("building the HTTP client: {e}")),
    };
    let url = format!("{}/chat/completions", cfg.url.trim_end_matches('/'));
    let mut req = client.post(&url).json(&classifier_request(cfg, text));
    if let Some(var) = &cfg.api_key_env {
        match std::env::var(var) {
            Ok(k) => req = req.bearer_auth(k),
            Err(_) => return unreachable(format!("the API key variable {var} is not set")),
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return unreachable(format!("no answer within {} ms", cfg.timeout_ms));
        }
        Err(e) => return unreachable(format!("{url}: {e}")),
    };
    let status = resp.status();
    if !status.is_success() {
        return unreachable(format!("{url} answered HTTP {status}"));
    }
    match resp.json::<serde_json::Value>().await {
        Ok(v) => parse_classifier_response(&v),
        Err(e) => unreachable(format!("unreadable reply: {e}")),
    }
}

/// [`classify`] from synchronous code (the CLI has no runtime of its own).
pub fn classify_blocking(cfg: &ClassifierConfig, text: &str) -> ClassifierOutcome {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(classify(cfg, text)),
        Err(e) => ClassifierOutcome::Unreachable {
            error: format!("starting a runtime: {e}"),
        },
    }
}

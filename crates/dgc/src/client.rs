//! The HTTP client behind the CLI's API commands: base URL and key resolution, JSON requests, and
//! API errors turned into readable messages.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use reqwest::Method;
use serde_json::Value;

use crate::cli::ClientOpts;

pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Result<String, String>,
    pub json: bool,
}

/// An error response from the API.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {} [request {}]",
            self.code, self.status, self.message, self.request_id
        )
    }
}

impl std::error::Error for ApiFailure {}

fn resolve_key(opts: &ClientOpts) -> Result<String, String> {
    if let Ok(k) = std::env::var("DGC_API_KEY")
        && !k.trim().is_empty()
    {
        return Ok(k.trim().to_string());
    }
    let path = opts
        .api_key_file
        .clone()
        .unwrap_or_else(|| PathBuf::from("./dgc-data/admin.key"));
    std::fs::read_to_string(&path).map(|s| s.trim().to_string()).map_err(|e| {
        format!(
            "no API key: set DGC_API_KEY or DGC_API_KEY_FILE, or run from the directory holding dgc-data/admin.key \
             ({}: {e})",
            path.display()
        )
    })
}

impl Client {
    pub fn new(opts: &ClientOpts) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .user_agent(concat!("dgc-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base: opts.url.trim_end_matches('/').to_string(),
            key: resolve_key(opts),
            json: opts.json,
        })
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let key = self.key.as_ref().map_err(|e| anyhow!("{e}"))?;
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(key)
            .query(query);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!(
                    "cannot reach DGC at {}: is `dgc serve` running? ({e})",
                    self.base
                )
            } else {
                anyhow!("request to {url} failed: {e}")
            }
        })?;
        let status = resp.status();
        let text = resp.text().await.context("reading the response")?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(value);
        }
        let err = &value["error"];
        Err(ApiFailure {
            status: status.as_u16(),
            code: err["code"].as_str().unwrap_or("error").to_string(),
            message: err["message"]
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string),
            request_id: err["request_id"].as_str().unwrap_or("-").to_string(),
        }
        .into())
    }

    /// A request whose successful response is plain text (e.g. a signed note).
    pub async fn call_text(&self, method: Method, path: &str) -> anyhow::Result<String> {
        let key = self.key.as_ref().map_err(|e| anyhow!("{e}"))?;
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .request(method, &url)
            .bearer_auth(key)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "cannot reach DGC at {}: is `dgc serve` running? ({e})",
                    self.base
                )
            })?;
        let status = resp.status();
        let text = resp.text().await.context("reading the response")?;
        if status.is_success() {
            return Ok(text);
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let err = &v["error"];
        Err(ApiFailure {
            status: status.as_u16(),
            code: err["code"].as_str().unwrap_or("error").to_string(),
            message: err["message"].as_str().map_or(text, str::to_string),
            request_id: err["request_id"].as_str().unwrap_or("-").to_string(),
        }
        .into())
    }

    /// Every item of a paginated list (`{"data": [...], "next_cursor"}`), following the cursors.
    pub async fn list_all(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<Vec<Value>> {
        let mut rows = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("limit", "500".to_string()));
            if let Some(a) = &after {
                q.push(("after", a.clone()));
            }
            let v = self.call(Method::GET, path, &q, None).await?;
            rows.extend(v["data"].as_array().cloned().unwrap_or_default());
            match v["next_cursor"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => return Ok(rows),
            }
        }
    }

    /// Prints `v` as pretty JSON (for `--json`).
    pub fn print_json(v: &Value) {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }
}

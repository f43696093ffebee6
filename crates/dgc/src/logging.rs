//! Tracing setup: human-readable logs by default, JSON lines with `--log-format json`. Logs go to
//! stderr; stdout is for the messages a user reads (where the admin key is, the listen address).
//! The server writes through a background thread, so a slow stderr never stalls a request; the
//! writer blocks rather than drops when its buffer is full (no log line is lost), and the returned
//! guard flushes what is queued when it is dropped at exit.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Sets up logging; keep the guard alive until the process exits.
pub fn init(format: LogFormat, level: &str) -> anyhow::Result<WorkerGuard> {
    let filter = EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("invalid log level `{level}`: {e}"))?;
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(64 * 1024)
        .thread_name("dgc-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("setting up logging: {e}"))?;
    Ok(guard)
}

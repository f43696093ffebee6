//! Server configuration: `dgc.toml` < `DGC_*` environment < flags, validated once into typed values.
//! (Environment and flags are merged by clap; the file fills in what neither set.)

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use dgc_server::Limits;
use dgc_types::{ByteSize, DurationSpec, parse_duration, parse_size};
use serde::Deserialize;

use crate::cli::ServeArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The file's shape. Unknown keys are errors, so a typo never silently falls back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    access_log: Option<bool>,
    shutdown_grace: Option<DurationSpec>,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    audit: FileAudit,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAudit {
    witness_dir: Option<PathBuf>,
    checkpoint_interval: Option<DurationSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    body: Option<ByteSize>,
    request_timeout: Option<DurationSpec>,
    memory_content: Option<ByteSize>,
    memory_metadata: Option<ByteSize>,
}

/// Validated configuration for `dgc serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub log_level: String,
    pub access_log: bool,
    pub shutdown_grace: Duration,
    pub limits: Limits,
    /// Directory receiving every signed checkpoint (a witness outside the database).
    pub witness_dir: Option<PathBuf>,
    pub checkpoint_interval: Duration,
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("in config file {}", path.display()))
}

impl ServeConfig {
    pub fn load(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        Self::merge(args, file)
    }

    fn merge(args: &ServeArgs, file: FileConfig) -> anyhow::Result<Self> {
        let listen_s = args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:7070".into());
        let listen: SocketAddr = listen_s.parse().with_context(|| {
            format!("listen: `{listen_s}` is not an address like 127.0.0.1:7070")
        })?;
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./dgc-data"));
        let log_format = match args.log_format.as_deref() {
            Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("log-format: `{other}` is not `text` or `json`"),
            None => file.log_format.unwrap_or(LogFormat::Text),
        };
        let log_level = args
            .log_level
            .clone()
            .or(file.log_level)
            .unwrap_or_else(|| "info".into());
        let size = |flag: &Option<String>,
                    file: Option<ByteSize>,
                    name: &str,
                    default: u64|
         -> anyhow::Result<u64> {
            match flag {
                Some(s) => parse_size(s).with_context(|| name.to_string()),
                None => Ok(file.map_or(default, |b| b.0)),
            }
        };
        let dur =
            |flag: &Option<String>, file: Option<DurationSpec>, name: &str, default: Duration| {
                match flag {
                    Some(s) => parse_duration(s).with_context(|| name.to_string()),
                    None => Ok(file.map_or(default, DurationSpec::as_duration)),
                }
            };
        let d = Limits::default();
        let limits = Limits {
            body_bytes: size(
                &args.body_limit,
                file.limits.body,
                "body-limit",
                d.body_bytes as u64,
            )? as usize,
            request_timeout: dur(
                &args.request_timeout,
                file.limits.request_timeout,
                "request-timeout",
                d.request_timeout,
            )?,
            memory_content_bytes: size(
                &args.memory_content_limit,
                file.limits.memory_content,
                "memory-content-limit",
                d.memory_content_bytes as u64,
            )? as usize,
            memory_metadata_bytes: size(
                &args.memory_metadata_limit,
                file.limits.memory_metadata,
                "memory-metadata-limit",
                d.memory_metadata_bytes as u64,
            )? as usize,
        };
        if !(1024..=(1 << 30)).contains(&limits.body_bytes) {
            bail!("body-limit must be between 1K and 1G");
        }
        if limits.memory_content_bytes == 0 || limits.memory_content_bytes >= limits.body_bytes {
            bail!(
                "memory-content-limit must be positive and below body-limit ({} bytes)",
                limits.body_bytes
            );
        }
        if limits.memory_metadata_bytes == 0 || limits.memory_metadata_bytes >= limits.body_bytes {
            bail!(
                "memory-metadata-limit must be positive and below body-limit ({} bytes)",
                limits.body_bytes
            );
        }
        if limits.request_timeout < Duration::from_millis(100)
            || limits.request_timeout > Duration::from_secs(3600)
        {
            bail!("request-timeout must be between 100ms and 1h");
        }
        let shutdown_grace = dur(
            &args.shutdown_grace,
            file.shutdown_grace,
            "shutdown-grace",
            Duration::from_secs(30),
        )?;
        let checkpoint_interval = dur(
            &args.checkpoint_interval,
            file.audit.checkpoint_interval,
            "checkpoint-interval",
            Duration::from_secs(60),
        )?;
        if checkpoint_interval < Duration::from_millis(100) {
            bail!("checkpoint-interval must be at least 100ms");
        }
        Ok(Self {
            witness_dir: args.witness_dir.clone().or(file.audit.witness_dir),
            checkpoint_interval,
            listen,
            data_dir,
            log_format,
            log_level,
            access_log: args.access_log.or(file.access_log).unwrap_or(true),
            shutdown_grace,
            limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> ServeArgs {
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: ServeArgs,
        }
        let mut v = vec!["t"];
        v.extend_from_slice(extra);
        T::parse_from(v).a
    }

    #[test]
    fn flags_override_file_and_defaults_apply() {
        let file: FileConfig = toml::from_str(
            "listen = \"0.0.0.0:9000\"\nlog_format = \"json\"\n[limits]\nbody = \"4M\"\n",
        )
        .unwrap();
        let c = ServeConfig::merge(&args(&["--listen", "127.0.0.1:7171"]), file).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7171");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.limits.body_bytes, 4 << 20);
        assert_eq!(c.limits.memory_content_bytes, 1 << 20);
        assert_eq!(c.data_dir, PathBuf::from("./dgc-data"));
    }

    #[test]
    fn rejects_typos_and_bad_values() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
        assert!(toml::from_str::<FileConfig>("[limits]\nbodyy = 1").is_err());
        assert!(ServeConfig::merge(&args(&["--listen", "nope"]), FileConfig::default()).is_err());
        assert!(ServeConfig::merge(&args(&["--body-limit", "1"]), FileConfig::default()).is_err());
        assert!(
            ServeConfig::merge(
                &args(&["--memory-content-limit", "3M"]),
                FileConfig::default()
            )
            .is_err()
        );
        assert!(
            ServeConfig::merge(&args(&["--log-format", "xml"]), FileConfig::default()).is_err()
        );
    }
}

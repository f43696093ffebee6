//! Sandbox profile wire types: the tier an action runs in and the validated profile (base view,
//! writable directories, environment, limits, network) that an agent config or a CLI invocation
//! describes. Deserialising a [`SandboxProfile`] validates it; code that builds one by hand calls
//! [`SandboxProfile::validate`] (the sandbox does so again before every spawn).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::DurationSpec;
use crate::egress::EgressAllowlist;
use crate::size::ByteSize;
use crate::validate::FieldError;

/// Isolation tiers, weakest first so that `Ord` means "at least as strong".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum SandboxTier {
    /// In-process WASI under wasmtime: no ambient authority, no network.
    Wasm,
    /// Namespaces + landlock + seccomp + cgroups around a host process.
    #[default]
    Process,
    /// The process profile executed under gVisor's `runsc`.
    Gvisor,
}

/// Most writable, protected or hidden paths in one profile.
pub const MAX_PROFILE_PATHS: usize = 64;
/// Most environment entries (set + inherited) in one profile.
pub const MAX_ENV_ENTRIES: usize = 256;
/// Largest total size of the profile's environment (names + values).
pub const MAX_ENV_BYTES: usize = 64 * 1024;
/// Most allowlist entries in one profile.
pub const MAX_ALLOW_ENTRIES: usize = 256;

/// Variables the sandbox sets itself when the network goes through the egress proxy; a profile
/// may not set or inherit them.
pub const PROXY_ENV_VARS: [&str; 8] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// A protection a profile agrees to run without when the host cannot provide it. The result of
/// every spawn lists each one that was actually missing; nothing else is ever skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DegradedMode {
    /// Run without landlock when the kernel lacks it (older than 5.13, or `lsm=` omits it).
    NoLandlock,
    /// Run without cgroup memory/pids/CPU limits when no usable cgroup hierarchy is available
    /// (timeouts, rlimits and the pid namespace still apply).
    NoCgroups,
}

/// Resource limits for one sandboxed process tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxLimits {
    /// Memory for the whole tree (cgroup; includes `/tmp`, which is memory-backed).
    #[serde(default = "default_memory")]
    pub memory: ByteSize,
    /// Processes and threads (cgroup `pids.max`).
    #[serde(default = "default_pids")]
    pub pids: u32,
    /// CPU quota in cores (cgroup CFS quota).
    #[serde(default = "default_cpu")]
    pub cpu: f64,
    /// Wall-clock limit; the whole tree is killed when it passes.
    #[serde(default = "default_timeout")]
    pub timeout: DurationSpec,
    /// Bytes of stdout + stderr delivered before the tree is killed.
    #[serde(default = "default_output")]
    pub output: ByteSize,
    /// Largest file the workload may write (`RLIMIT_FSIZE`).
    #[serde(default = "default_file_size")]
    pub file_size: ByteSize,
    /// Open file descriptors per process (`RLIMIT_NOFILE`).
    #[serde(default = "default_open_files")]
    pub open_files: u32,
    /// Size of the private `/tmp` tmpfs.
    #[serde(default = "default_tmp")]
    pub tmp: ByteSize,
}

fn default_memory() -> ByteSize {
    ByteSize(512 << 20)
}
fn default_pids() -> u32 {
    128
}
fn default_cpu() -> f64 {
    1.0
}
fn default_timeout() -> DurationSpec {
    DurationSpec(Duration::from_secs(60))
}
fn default_output() -> ByteSize {
    ByteSize(16 << 20)
}
fn default_file_size() -> ByteSize {
    ByteSize(1 << 30)
}
fn default_open_files() -> u32 {
    1024
}
fn default_tmp() -> ByteSize {
    ByteSize(64 << 20)
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory: default_memory(),
            pids: default_pids(),
            cpu: default_cpu(),
            timeout: default_timeout(),
            output: default_output(),
            file_size: default_file_size(),
            open_files: default_open_files(),
            tmp: default_tmp(),
        }
    }
}

/// Where the workload may connect.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
pub enum NetworkPolicy {
    /// An empty network namespace: loopback only, no route out.
    #[default]
    None,
    /// Only through DGC's egress proxy, to destinations matching these `host[:port]` patterns.
    Allowlist { allow: EgressAllowlist },
}

/// The environment the workload sees: nothing from the host unless named here.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvPolicy {
    /// Variables set to fixed values.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Names copied from the environment of the process that spawns the sandbox, when present.
    #[serde(default)]
    pub inherit: Vec<String>,
}

/// A validated sandbox profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawProfile")]
pub struct SandboxProfile {
    pub tier: SandboxTier,
    /// Absolute host directories the workload may write (the agent workspace). Everything else
    /// is read-only.
    pub writable: Vec<PathBuf>,
    /// Paths relative to each writable directory that stay read-only (e.g. `.git/hooks`).
    pub protected: Vec<PathBuf>,
    /// Host directories replaced by empty ones in the sandbox's view (home directories, `/run`,
    /// DGC's own data directory). A writable directory inside a hidden one stays visible.
    pub hidden: Vec<PathBuf>,
    pub env: EnvPolicy,
    pub limits: SandboxLimits,
    pub network: NetworkPolicy,
    /// Protections this profile agrees to run without if the host lacks them.
    pub degraded: Vec<DegradedMode>,
}

/// The serde shape, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    tier: SandboxTier,
    #[serde(default)]
    writable: Vec<PathBuf>,
    #[serde(default)]
    protected: Vec<PathBuf>,
    #[serde(default = "default_hidden")]
    hidden: Vec<PathBuf>,
    #[serde(default)]
    env: EnvPolicy,
    #[serde(default)]
    limits: SandboxLimits,
    #[serde(default)]
    network: NetworkPolicy,
    #[serde(default)]
    degraded: Vec<DegradedMode>,
}

impl TryFrom<RawProfile> for SandboxProfile {
    type Error = FieldError;
    fn try_from(r: RawProfile) -> Result<Self, FieldError> {
        let p = SandboxProfile {
            tier: r.tier,
            writable: r.writable,
            protected: r.protected,
            hidden: r.hidden,
            env: r.env,
            limits: r.limits,
            network: r.network,
            degraded: r.degraded,
        };
        p.validate()?;
        Ok(p)
    }
}

/// Host paths hidden by default: other users' homes, root's home and runtime sockets.
pub fn default_hidden() -> Vec<PathBuf> {
    ["/root", "/home", "/run"]
        .into_iter()
        .map(PathBuf::from)
        .collect()
}

impl Default for SandboxProfile {
    fn default() -> Self {
        Self {
            tier: SandboxTier::Process,
            writable: Vec::new(),
            protected: Vec::new(),
            hidden: default_hidden(),
            env: EnvPolicy::default(),
            limits: SandboxLimits::default(),
            network: NetworkPolicy::None,
            degraded: Vec::new(),
        }
    }
}

impl SandboxProfile {
    /// Checks every field; the error names the field (`writable[0]`, `limits.memory`, …).
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.tier == SandboxTier::Wasm {
            return Err(FieldError::new(
                "tier",
                "the wasm tier runs WASI modules, not commands; use process or gvisor",
            ));
        }
        check_count("writable", self.writable.len())?;
        check_count("protected", self.protected.len())?;
        check_count("hidden", self.hidden.len())?;
        for (i, w) in self.writable.iter().enumerate() {
            let field = format!("writable[{i}]");
            check_absolute(&field, w)?;
            if w == Path::new("/") {
                return Err(FieldError::new(
                    field,
                    "the root directory cannot be writable",
                ));
            }
            for pseudo in ["/proc", "/sys", "/dev"] {
                if w.starts_with(pseudo) {
                    return Err(FieldError::new(
                        field,
                        format!("paths under {pseudo} cannot be writable"),
                    ));
                }
            }
        }
        for (i, p) in self.protected.iter().enumerate() {
            let field = format!("protected[{i}]");
            check_text_path(&field, p)?;
            if p.as_os_str().is_empty()
                || !p.components().all(|c| matches!(c, Component::Normal(_)))
            {
                return Err(FieldError::new(
                    field,
                    "must be a relative path inside a writable directory, without `.` or `..`",
                ));
            }
        }
        for (i, h) in self.hidden.iter().enumerate() {
            let field = format!("hidden[{i}]");
            check_absolute(&field, h)?;
            if h == Path::new("/") {
                return Err(FieldError::new(
                    field,
                    "the root directory cannot be hidden",
                ));
            }
            if self.writable.iter().any(|w| w == h) {
                return Err(FieldError::new(field, "is also listed as writable"));
            }
        }
        self.validate_env()?;
        self.validate_limits()?;
        if let NetworkPolicy::Allowlist { allow } = &self.network {
            if allow.is_empty() {
                return Err(FieldError::new(
                    "network.allow",
                    "an empty allowlist allows nothing: use {\"mode\": \"none\"}",
                ));
            }
            if allow.0.len() > MAX_ALLOW_ENTRIES {
                return Err(FieldError::new(
                    "network.allow",
                    format!("at most {MAX_ALLOW_ENTRIES} entries"),
                ));
            }
        }
        Ok(())
    }

    fn validate_env(&self) -> Result<(), FieldError> {
        let n = self.env.set.len() + self.env.inherit.len();
        if n > MAX_ENV_ENTRIES {
            return Err(FieldError::new(
                "env",
                format!("at most {MAX_ENV_ENTRIES} entries"),
            ));
        }
        let mut bytes = 0usize;
        for (k, v) in &self.env.set {
            check_env_name(&format!("env.set.{k}"), k)?;
            if v.contains('\0') {
                return Err(FieldError::new(
                    format!("env.set.{k}"),
                    "value contains a NUL byte",
                ));
            }
            bytes += k.len() + v.len() + 2;
        }
        for (i, k) in self.env.inherit.iter().enumerate() {
            check_env_name(&format!("env.inherit[{i}]"), k)?;
            bytes += k.len();
        }
        if bytes > MAX_ENV_BYTES {
            return Err(FieldError::new(
                "env",
                format!("at most {MAX_ENV_BYTES} bytes in total"),
            ));
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), FieldError> {
        let l = &self.limits;
        let range = |field: &str, v: u64, min: u64, max: u64, what: &str| {
            if v < min || v > max {
                Err(FieldError::new(
                    format!("limits.{field}"),
                    format!("must be between {what}"),
                ))
            } else {
                Ok(())
            }
        };
        range("memory", l.memory.0, 16 << 20, 1 << 40, "16M and 1T")?;
        range("pids", u64::from(l.pids), 1, 1 << 22, "1 and 4194304")?;
        if !l.cpu.is_finite() || l.cpu < 0.01 || l.cpu > 1024.0 {
            return Err(FieldError::new(
                "limits.cpu",
                "must be between 0.01 and 1024 cores",
            ));
        }
        let t = l.timeout.0;
        if t < Duration::from_millis(1) || t > Duration::from_secs(7 * 24 * 3600) {
            return Err(FieldError::new(
                "limits.timeout",
                "must be between 1ms and 7d",
            ));
        }
        range("output", l.output.0, 1, 1 << 34, "1 byte and 16G")?;
        range("file_size", l.file_size.0, 1, 1 << 50, "1 byte and 1P")?;
        range(
            "open_files",
            u64::from(l.open_files),
            16,
            1 << 20,
            "16 and 1048576",
        )?;
        range("tmp", l.tmp.0, 64 << 10, 1 << 40, "64K and 1T")?;
        Ok(())
    }
}

fn check_count(field: &str, n: usize) -> Result<(), FieldError> {
    if n > MAX_PROFILE_PATHS {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_PROFILE_PATHS} entries"),
        ));
    }
    Ok(())
}

fn check_text_path(field: &str, p: &Path) -> Result<(), FieldError> {
    let Some(s) = p.to_str() else {
        return Err(FieldError::new(field, "must be valid UTF-8"));
    };
    if s.len() > 4096 || s.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must be at most 4096 bytes without control characters",
        ));
    }
    Ok(())
}

/// Absolute and already normal: no `.`, `..`, repeated or trailing separators, so that the path
/// checked here is the path mounted (symlinks are refused when the sandbox opens it).
fn check_absolute(field: &str, p: &Path) -> Result<(), FieldError> {
    check_text_path(field, p)?;
    let s = p.to_string_lossy();
    let normal = p.is_absolute()
        && !s.contains("//")
        && (s == "/" || !s.ends_with('/'))
        && p.components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)));
    if !normal {
        return Err(FieldError::new(
            field,
            "must be an absolute, normalised path (no `.`, `..` or trailing `/`)",
        ));
    }
    Ok(())
}

fn check_env_name(field: &str, k: &str) -> Result<(), FieldError> {
    let valid = !k.is_empty()
        && k.len() <= 256
        && k.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(FieldError::new(
            field,
            "variable names are letters, digits and `_`",
        ));
    }
    if PROXY_ENV_VARS.contains(&k) {
        return Err(FieldError::new(
            field,
            "proxy variables are set by the sandbox itself",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<SandboxProfile, String> {
        serde_json::from_str::<SandboxProfile>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_round_trip() {
        let p = parse("{}").unwrap();
        assert_eq!(p, SandboxProfile::default());
        assert_eq!(p.limits.memory, ByteSize(512 << 20));
        assert_eq!(p.network, NetworkPolicy::None);
        let back: SandboxProfile =
            serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn full_profile_parses() {
        let p = parse(
            r#"{"tier":"gvisor","writable":["/srv/ws"],"protected":[".git/hooks"],
                "env":{"set":{"LANG":"C.UTF-8"},"inherit":["PATH"]},
                "limits":{"memory":"256M","pids":64,"cpu":0.5,"timeout":"10s","output":"1M",
                          "file_size":"10M","open_files":64,"tmp":"8M"},
                "network":{"mode":"allowlist","allow":["*.example.com","api.test:443"]},
                "degraded":["no-landlock"]}"#,
        )
        .unwrap();
        assert_eq!(p.tier, SandboxTier::Gvisor);
        assert_eq!(p.limits.timeout.0, Duration::from_secs(10));
        assert_eq!(p.degraded, vec![DegradedMode::NoLandlock]);
        match &p.network {
            NetworkPolicy::Allowlist { allow } => assert!(allow.allows("a.example.com", 1)),
            NetworkPolicy::None => panic!("expected allowlist"),
        }
    }

    #[test]
    fn invalid_profiles_name_the_field() {
        let cases = [
            (r#"{"writable":["relative"]}"#, "writable[0]"),
            (r#"{"writable":["/a/../etc"]}"#, "writable[0]"),
            (r#"{"writable":["/a/"]}"#, "writable[0]"),
            (r#"{"writable":["/"]}"#, "writable[0]"),
            (r#"{"writable":["/proc/self"]}"#, "writable[0]"),
            (r#"{"protected":["/abs"]}"#, "protected[0]"),
            (r#"{"protected":["../up"]}"#, "protected[0]"),
            (r#"{"hidden":["/"]}"#, "hidden[0]"),
            (
                r#"{"writable":["/srv/a"],"hidden":["/srv/a"]}"#,
                "hidden[0]",
            ),
            (r#"{"env":{"set":{"A=B":"x"}}}"#, "env.set.A=B"),
            (
                r#"{"env":{"set":{"HTTP_PROXY":"x"}}}"#,
                "env.set.HTTP_PROXY",
            ),
            (r#"{"env":{"inherit":["https_proxy"]}}"#, "env.inherit[0]"),
            (r#"{"limits":{"memory":"1M"}}"#, "limits.memory"),
            (r#"{"limits":{"pids":0}}"#, "limits.pids"),
            (r#"{"limits":{"cpu":0}}"#, "limits.cpu"),
            (r#"{"limits":{"timeout":0}}"#, "limits.timeout"),
            (r#"{"limits":{"open_files":3}}"#, "limits.open_files"),
            (
                r#"{"network":{"mode":"allowlist","allow":[]}}"#,
                "network.allow",
            ),
            (r#"{"tier":"wasm"}"#, "tier"),
        ];
        for (json, field) in cases {
            let err = parse(json).unwrap_err();
            assert!(err.contains(field), "{json}: {err}");
        }
    }

    #[test]
    fn rejects_unknown_fields_and_bad_patterns() {
        assert!(parse(r#"{"writeable":["/x"]}"#).is_err());
        assert!(parse(r#"{"limits":{"memry":"1G"}}"#).is_err());
        assert!(parse(r#"{"network":{"mode":"allowlist","allow":["*.com"]}}"#).is_err());
        assert!(parse(r#"{"network":{"mode":"open"}}"#).is_err());
        assert!(parse(r#"{"degraded":["no-seccomp"]}"#).is_err());
    }
}

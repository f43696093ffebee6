//! The library API: [`Sandbox::spawn`] starts a [`SandboxCommand`] under a validated profile and
//! returns a [`SandboxChild`] that streams bounded output, accepts stdin (for interactive
//! workloads such as MCP servers), reports egress decisions, can be killed (also on drop), and
//! yields a [`SandboxResult`].

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use dgc_types::sandbox::{
    DegradedMode, NetworkPolicy, PROXY_ENV_VARS, SandboxProfile, SandboxTier,
};
use dgc_types::validate::FieldError;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

use crate::cgroup::{CgroupConfig, CgroupLimits, CgroupParent, SandboxCgroup};
use crate::protocol::{
    CHILD_ARG, CONTROL_FD, ChildMessage, ChildPlan, MAX_MESSAGE, PROXY_PORT, ParentMessage,
};
use crate::proxy::{EgressDecision, EgressProxy, EgressSummary, ProxyOptions};
use crate::report::{
    Degradation, ExitStatus, KillReason, Protection, ProtectionKind as K, SandboxResult,
    SetupFailure,
};
use crate::sys;

/// Most argv entries / bytes, and injected environment entries, per command.
pub const MAX_ARGS: usize = 4096;
pub const MAX_ARGV_BYTES: usize = 64 * 1024;
/// Host uid/gid the sandbox user maps to when DGC runs as root (`nobody`/`nogroup`).
pub const DEFAULT_HOST_ID: u32 = 65534;
/// Time allowed for building the sandbox before the spawn is abandoned.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Errors from spawning a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("invalid sandbox profile: {0}")]
    Profile(#[from] FieldError),
    #[error("invalid command: {0}")]
    Command(String),
    /// A protection could not be applied; the message names it and the fix.
    #[error("sandbox refused to start: {0}")]
    Setup(SetupFailure),
    #[error("sandbox I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("sandbox child broke the protocol: {0}")]
    Protocol(String),
}

impl SandboxError {
    /// The protection that failed, for setup errors.
    pub fn setup_failure(&self) -> Option<&SetupFailure> {
        match self {
            Self::Setup(f) => Some(f),
            _ => None,
        }
    }
}

impl From<SetupFailure> for SandboxError {
    fn from(f: SetupFailure) -> Self {
        Self::Setup(f)
    }
}

/// How the workload's stdin is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StdinMode {
    /// `/dev/null`.
    #[default]
    Null,
    /// A pipe: take it with [`SandboxChild::take_stdin`].
    Piped,
    /// The caller's own stdin (for the CLI).
    Inherit,
}

/// A command to run in a sandbox.
///
/// [`SandboxCommand::new`] is the runtime's entry point (it is meant to become reachable only
/// from a gate-approved action); [`SandboxCommand::operator`] is for commands an operator typed
/// into `dgc sandbox run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxCommand {
    argv: Vec<String>,
    cwd: Option<PathBuf>,
    env: Vec<(String, String)>,
    stdin: StdinMode,
}

impl SandboxCommand {
    /// A command requested by the runtime (tool call, MCP server).
    pub fn new(argv: Vec<String>) -> Result<Self, SandboxError> {
        Self::checked(argv)
    }

    /// A command an operator typed on the `dgc sandbox run` command line.
    pub fn operator(argv: Vec<String>) -> Result<Self, SandboxError> {
        Self::checked(argv)
    }

    fn checked(argv: Vec<String>) -> Result<Self, SandboxError> {
        if argv.is_empty() || argv[0].is_empty() {
            return Err(SandboxError::Command("empty command".into()));
        }
        if argv.len() > MAX_ARGS || argv.iter().map(|a| a.len() + 1).sum::<usize>() > MAX_ARGV_BYTES
        {
            return Err(SandboxError::Command(format!(
                "at most {MAX_ARGS} arguments and {MAX_ARGV_BYTES} bytes"
            )));
        }
        if argv.iter().any(|a| a.contains('\0')) {
            return Err(SandboxError::Command(
                "arguments may not contain NUL bytes".into(),
            ));
        }
        Ok(Self {
            argv,
            cwd: None,
            env: Vec::new(),
            stdin: StdinMode::Null,
        })
    }

    /// Working directory inside the sandbox (default: the first writable directory, else `/`).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Injects a variable (e.g. a scoped secret) on top of the profile's environment.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn stdin(mut self, mode: StdinMode) -> Self {
        self.stdin = mode;
        self
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    pub(crate) fn stdin_mode(&self) -> StdinMode {
        self.stdin
    }

    pub(crate) fn cwd_path(&self) -> Option<PathBuf> {
        self.cwd.clone()
    }
}

/// Host-level sandbox settings (not part of an agent's profile).
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The executable re-exec'd as the sandbox child (its `main` must call
    /// [`crate::enter_child_if_requested`] first). Default: the current executable.
    pub exe: PathBuf,
    pub cgroups: CgroupConfig,
    /// Host uid/gid of the sandbox user when DGC runs as root (default 65534). When DGC is not
    /// root the sandbox user is DGC's own uid/gid and these must be unset or equal to it.
    pub host_uid: Option<u32>,
    pub host_gid: Option<u32>,
    pub proxy: ProxyOptions,
    /// Extra paths hidden from every sandbox (DGC's data directory, secrets).
    pub extra_hidden: Vec<PathBuf>,
    /// The `runsc` binary for the gvisor tier (looked up in `PATH` when relative).
    pub runsc: PathBuf,
    /// Supervisors kept pre-spawned inside fresh cgroups, so that a spawn pays neither the exec
    /// nor the cgroup migration (0 disables; commands with inherited stdin never use them).
    pub warm_pool: usize,
}

impl SandboxConfig {
    pub fn new(exe: impl Into<PathBuf>) -> Self {
        Self {
            exe: exe.into(),
            cgroups: CgroupConfig::Auto,
            host_uid: None,
            host_gid: None,
            proxy: ProxyOptions::default(),
            extra_hidden: Vec::new(),
            runsc: PathBuf::from("runsc"),
            warm_pool: 1,
        }
    }

    /// Defaults with the current executable as the re-exec target.
    pub fn from_current_exe() -> Result<Self, SandboxError> {
        Ok(Self::new(std::env::current_exe()?))
    }
}

/// Spawns sandboxes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sandbox {
    config: Arc<SandboxConfig>,
    cgroup_parent: Arc<OnceLock<Result<CgroupParent, SetupFailure>>>,
    pool: Arc<Pool>,
}

/// Which stream a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// A piece of the workload's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    pub stream: OutputStream,
    pub data: Vec<u8>,
}

/// Collected output of a run-to-completion spawn.
#[derive(Debug, Clone)]
pub struct SandboxOutput {
    pub result: SandboxResult,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The write end of the workload's stdin.
pub type SandboxStdin = pipe::Sender;

/// Kills a sandbox: the init (pid 1 of its namespace, taking everything with it), the supervisor
/// and, as a belt-and-braces sweep, every member of its cgroup.
pub(crate) struct Killer {
    supervisor: Option<OwnedFd>,
    init: Mutex<Option<OwnedFd>>,
    cgroup: Option<Arc<Mutex<SandboxCgroup>>>,
    reason: Mutex<Option<KillReason>>,
    finished: AtomicBool,
}

impl std::fmt::Debug for Killer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Killer")
            .field("reason", &self.reason())
            .finish_non_exhaustive()
    }
}

impl Killer {
    pub(crate) fn new(
        supervisor: Option<OwnedFd>,
        cgroup: Option<Arc<Mutex<SandboxCgroup>>>,
    ) -> Self {
        Self {
            supervisor,
            init: Mutex::new(None),
            cgroup,
            reason: Mutex::new(None),
            finished: AtomicBool::new(false),
        }
    }

    pub(crate) fn kill(&self, reason: KillReason) {
        if self.finished.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(mut r) = self.reason.lock() {
            r.get_or_insert(reason);
        }
        self.kill_now();
    }

    fn kill_now(&self) {
        if let Ok(init) = self.init.lock()
            && let Some(fd) = init.as_ref()
        {
            let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        }
        if let Some(s) = &self.supervisor {
            let _ = sys::pidfd_send_signal(s.as_fd(), libc::SIGKILL);
        }
        if let Some(cg) = &self.cgroup
            && let Ok(cg) = cg.lock()
        {
            cg.kill_all();
        }
    }

    pub(crate) fn reason(&self) -> Option<KillReason> {
        self.reason.lock().ok().and_then(|r| *r)
    }

    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
    }
}

/// Shared byte counters and limit for the two output pumps.
#[derive(Debug, Default)]
pub(crate) struct OutputCounters {
    pub(crate) stdout: AtomicU64,
    pub(crate) stderr: AtomicU64,
    pub(crate) total: AtomicU64,
}

/// A running sandbox.
#[derive(Debug)]
pub struct SandboxChild {
    pub(crate) id: String,
    pub(crate) stdin: Option<SandboxStdin>,
    pub(crate) output: mpsc::Receiver<OutputChunk>,
    pub(crate) egress_events: Option<mpsc::Receiver<EgressDecision>>,
    pub(crate) killer: Arc<Killer>,
    pub(crate) result: Option<oneshot::Receiver<SandboxResult>>,
    pub(crate) counters: Arc<OutputCounters>,
    pub(crate) protections: Vec<Protection>,
    pub(crate) degraded: Vec<Degradation>,
}

impl SandboxChild {
    /// The sandbox's id (also its cgroup's name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The workload's stdin, when spawned with [`StdinMode::Piped`]. Drop it to send EOF.
    pub fn take_stdin(&mut self) -> Option<SandboxStdin> {
        self.stdin.take()
    }

    /// The next chunk of stdout or stderr; `None` once both are closed. Output past the
    /// profile's limit is cut and the sandbox is killed.
    pub async fn next_output(&mut self) -> Option<OutputChunk> {
        self.output.recv().await
    }

    /// Egress decisions as the proxy makes them (network allowlist profiles only).
    pub fn take_egress_events(&mut self) -> Option<mpsc::Receiver<EgressDecision>> {
        self.egress_events.take()
    }

    /// Protections in force for this sandbox.
    pub fn protections(&self) -> &[Protection] {
        &self.protections
    }

    /// Protections missing under a named degraded mode.
    pub fn degraded(&self) -> &[Degradation] {
        &self.degraded
    }

    /// Kills the whole process tree (the result then reports `cancelled`).
    pub fn kill(&self) {
        self.killer.kill(KillReason::Cancelled);
    }

    /// Waits for the end, discarding any output not yet read.
    pub async fn wait(mut self) -> Result<SandboxResult, SandboxError> {
        while self.output.recv().await.is_some() {}
        self.finish().await
    }

    /// Waits for the end, collecting output (bounded by the profile's output limit).
    pub async fn wait_with_output(mut self) -> Result<SandboxOutput, SandboxError> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(c) = self.output.recv().await {
            match c.stream {
                OutputStream::Stdout => stdout.extend_from_slice(&c.data),
                OutputStream::Stderr => stderr.extend_from_slice(&c.data),
            }
        }
        let result = self.finish().await?;
        Ok(SandboxOutput {
            result,
            stdout,
            stderr,
        })
    }

    async fn finish(&mut self) -> Result<SandboxResult, SandboxError> {
        drop(self.stdin.take());
        let rx = self
            .result
            .take()
            .ok_or_else(|| SandboxError::Protocol("result already taken".into()))?;
        let mut r = rx
            .await
            .map_err(|_| SandboxError::Protocol("sandbox monitor ended without a result".into()))?;
        r.stdout_bytes = self.counters.stdout.load(Ordering::Relaxed);
        r.stderr_bytes = self.counters.stderr.load(Ordering::Relaxed);
        Ok(r)
    }
}

impl Drop for SandboxChild {
    fn drop(&mut self) {
        if self.result.is_some() {
            self.killer.kill(KillReason::Cancelled);
        }
    }
}

/// Reads one pipe into the output channel, enforcing the shared byte limit.
pub(crate) fn start_pump(
    fd: OwnedFd,
    stream: OutputStream,
    tx: mpsc::Sender<OutputChunk>,
    counters: Arc<OutputCounters>,
    limit: u64,
    killer: Arc<Killer>,
) -> io::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut rx = pipe::Receiver::from_owned_fd(fd)?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n as u64,
            };
            let before = counters.total.fetch_add(n, Ordering::Relaxed);
            let allowed = limit.saturating_sub(before).min(n);
            let mine = match stream {
                OutputStream::Stdout => &counters.stdout,
                OutputStream::Stderr => &counters.stderr,
            };
            mine.fetch_add(allowed, Ordering::Relaxed);
            if allowed > 0 {
                let chunk = OutputChunk {
                    stream,
                    data: buf[..allowed as usize].to_vec(),
                };
                if tx.send(chunk).await.is_err() {
                    // Nobody listens any more; keep draining so the workload is not blocked.
                }
            }
            if allowed < n {
                killer.kill(KillReason::OutputLimit);
                break;
            }
        }
    });
    Ok(())
}

fn field(f: &str, m: impl Into<String>) -> SandboxError {
    SandboxError::Profile(FieldError::new(f, m))
}

/// The workload's environment: profile values, inherited names, injected values, defaults, and
/// the proxy variables.
pub(crate) fn build_env(
    profile: &SandboxProfile,
    cmd: &SandboxCommand,
    proxy: bool,
) -> Result<Vec<(String, String)>, SandboxError> {
    let mut env: Vec<(String, String)> = profile
        .env
        .set
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let put = |env: &mut Vec<(String, String)>, k: &str, v: String| {
        env.retain(|(x, _)| x != k);
        env.push((k.to_string(), v));
    };
    for name in &profile.env.inherit {
        if let Ok(v) = std::env::var(name) {
            put(&mut env, name, v);
        }
    }
    for (k, v) in &cmd.env {
        let ok = !k.is_empty()
            && k.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok || v.contains('\0') {
            return Err(SandboxError::Command(format!(
                "invalid environment variable {k:?}"
            )));
        }
        if PROXY_ENV_VARS.contains(&k.as_str()) {
            return Err(SandboxError::Command(format!(
                "{k} is set by the sandbox itself"
            )));
        }
        put(&mut env, k, v.clone());
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".into(), "/tmp".into()));
    }
    if proxy {
        let url = format!("http://127.0.0.1:{PROXY_PORT}");
        for k in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            env.push((k.into(), url.clone()));
        }
        env.push(("NO_PROXY".into(), String::new()));
        env.push(("no_proxy".into(), String::new()));
    }
    let bytes: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    if bytes > 2 * dgc_types::sandbox::MAX_ENV_BYTES {
        return Err(SandboxError::Command("environment too large".into()));
    }
    Ok(env)
}

/// Host ids for the sandbox user and whether DGC may map them freely.
pub(crate) fn host_ids(config: &SandboxConfig) -> Result<(u32, u32, bool), SandboxError> {
    let (euid, egid) = (sys::geteuid(), sys::getegid());
    if euid == 0 {
        let (uid, gid) = (
            config.host_uid.unwrap_or(DEFAULT_HOST_ID),
            config.host_gid.unwrap_or(DEFAULT_HOST_ID),
        );
        if uid == 0 || gid == 0 {
            return Err(SandboxError::Setup(
                SetupFailure::new(
                    K::UnprivilegedUser,
                    "host uid/gid 0 would make the sandbox user root on the host",
                )
                .with_remediation("choose an unprivileged host_uid/host_gid (default 65534)"),
            ));
        }
        return Ok((uid, gid, true));
    }
    if config.host_uid.is_some_and(|u| u != euid) || config.host_gid.is_some_and(|g| g != egid) {
        return Err(SandboxError::Setup(
            SetupFailure::new(
                K::UnprivilegedUser,
                format!("DGC runs as uid {euid}, which can only map itself"),
            )
            .with_remediation("unset host_uid/host_gid or run dgc as root"),
        ));
    }
    Ok((euid, egid, false))
}

/// Refuses writable directories the sandbox user could not write (fail closed, with the fix).
pub(crate) fn check_writable(dirs: &[PathBuf], uid: u32, gid: u32) -> Result<(), SandboxError> {
    use std::os::unix::fs::MetadataExt;
    for d in dirs {
        let md = std::fs::symlink_metadata(d)
            .map_err(|e| SetupFailure::new(K::WritablePaths, format!("{}: {e}", d.display())))?;
        if md.file_type().is_symlink() {
            return Err(SetupFailure::new(
                K::WritablePaths,
                format!("{} is a symlink; symlinks are refused", d.display()),
            )
            .into());
        }
        if !md.is_dir() {
            return Err(SetupFailure::new(
                K::WritablePaths,
                format!("{} is not a directory", d.display()),
            )
            .into());
        }
        let mode = md.mode();
        let ok = if md.uid() == uid {
            mode & 0o300 == 0o300
        } else if md.gid() == gid {
            mode & 0o030 == 0o030
        } else {
            mode & 0o003 == 0o003
        };
        if !ok {
            return Err(SetupFailure::new(
                K::WritablePaths,
                format!(
                    "{} is not writable by the sandbox's host uid {uid} (owner {}, group {}, mode {:o})",
                    d.display(),
                    md.uid(),
                    md.gid(),
                    mode & 0o7777
                ),
            )
            .with_remediation(format!("`chown -R {uid}:{gid} {}` or run dgc as the directory's owner", d.display()))
            .into());
        }
    }
    Ok(())
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Self {
        let pool = Arc::new(Pool {
            items: Mutex::new(Vec::new()),
            filling: AtomicBool::new(false),
            size: config.warm_pool,
        });
        Self {
            config: Arc::new(config),
            cgroup_parent: Arc::new(OnceLock::new()),
            pool,
        }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Spawns `cmd` under `profile`. Fails — naming the protection and the fix — if anything
    /// the profile requires cannot be applied.
    pub async fn spawn(
        &self,
        cmd: SandboxCommand,
        profile: &SandboxProfile,
    ) -> Result<SandboxChild, SandboxError> {
        profile.validate()?;
        match profile.tier {
            SandboxTier::Process => self.spawn_process(cmd, profile).await,
            SandboxTier::Gvisor => crate::gvisor::spawn(self, cmd, profile).await,
            SandboxTier::Wasm => Err(field(
                "tier",
                "the wasm tier runs WASI modules, not commands",
            )),
        }
    }

    fn parent(&self) -> &Result<CgroupParent, SetupFailure> {
        self.cgroup_parent
            .get_or_init(|| crate::cgroup::resolve(&self.config.cgroups))
    }

    pub(crate) fn cgroup(
        &self,
        profile: &SandboxProfile,
        id: &str,
    ) -> Result<CgroupSetup, SandboxError> {
        let parent = self.parent();
        let limits = cgroup_limits(profile);
        let created = match parent {
            Ok(p) => SandboxCgroup::create(p, id, limits),
            Err(f) => Err(f.clone()),
        };
        match created {
            Ok(cg) => {
                let p = Protection::new(
                    K::Cgroups,
                    format!(
                        "cgroup {:?}: memory {} bytes, {} pids (+2 for DGC's supervisor and init), {} CPU",
                        cg.version(),
                        limits.memory,
                        profile.limits.pids,
                        limits.cpu
                    ),
                );
                Ok((Some(cg), Vec::new(), Some(p)))
            }
            Err(f) if profile.degraded.contains(&DegradedMode::NoCgroups) => Ok((
                None,
                vec![Degradation {
                    mode: DegradedMode::NoCgroups,
                    missing: K::Cgroups,
                    reason: f.message,
                }],
                None,
            )),
            Err(f) => Err(f.into()),
        }
    }

    async fn spawn_process(
        &self,
        cmd: SandboxCommand,
        profile: &SandboxProfile,
    ) -> Result<SandboxChild, SandboxError> {
        let started = Instant::now();
        let proxy_allow = match &profile.network {
            NetworkPolicy::None => None,
            NetworkPolicy::Allowlist { allow } => Some(allow.clone()),
        };
        let env = build_env(profile, &cmd, proxy_allow.is_some())?;
        let (host_uid, host_gid, privileged_map) = host_ids(&self.config)?;
        check_writable(&profile.writable, host_uid, host_gid)?;
        let cwd = cmd
            .cwd
            .clone()
            .or_else(|| profile.writable.first().cloned())
            .unwrap_or_else(|| PathBuf::from("/"));
        if !cwd.is_absolute() {
            return Err(SandboxError::Command(
                "the working directory must be absolute".into(),
            ));
        }

        // A pre-spawned supervisor already sits in its cgroup: only the limits are written now.
        let pooled = cmd.stdin != StdinMode::Inherit && self.config.warm_pool > 0;
        let warm = match (pooled, self.parent()) {
            (true, Ok(parent)) => {
                let w = self.pool.take();
                self.pool.refill(self.config.exe.clone(), parent.clone());
                w
            }
            _ => None,
        };
        let (mut launched, mut degraded, cg_protection, cgroup_procs) = match warm {
            Some(mut w) => {
                let limits = cgroup_limits(profile);
                if let Some(cg) = &w.cgroup {
                    cg.set_limits(limits)?;
                }
                if cmd.stdin == StdinMode::Null {
                    w.stdin = None;
                }
                let version = w.cgroup.as_ref().map(|c| c.version());
                let p = Protection::new(
                    K::Cgroups,
                    format!(
                        "cgroup {version:?}: memory {} bytes, {} pids (+2 for DGC's supervisor and init), {} CPU",
                        limits.memory, profile.limits.pids, limits.cpu
                    ),
                );
                (w, Vec::new(), Some(p), Vec::new())
            }
            None => {
                let id = crate::cgroup::unique_name();
                let (cg, deg, prot) = self.cgroup(profile, &id)?;
                let procs = cg.as_ref().map(|c| c.procs_files()).unwrap_or_default();
                (
                    launch(&self.config.exe, cmd.stdin, id, cg)?,
                    deg,
                    prot,
                    procs,
                )
            }
        };
        let id = launched.id.clone();
        let mut hidden = profile.hidden.clone();
        hidden.extend(self.config.extra_hidden.iter().cloned());
        let timeout = profile.limits.timeout.0;
        let plan = ChildPlan {
            argv: cmd.argv.clone(),
            env,
            cwd,
            host_uid,
            host_gid,
            privileged_map,
            writable: profile.writable.clone(),
            protected: profile.protected.clone(),
            hidden,
            tmp_bytes: profile.limits.tmp.0,
            file_size: profile.limits.file_size.0,
            open_files: u64::from(profile.limits.open_files),
            cgroup_procs,
            allow_no_landlock: profile.degraded.contains(&DegradedMode::NoLandlock),
            proxy: proxy_allow.is_some(),
            inet: proxy_allow.is_some(),
            deadline_ms: timeout.as_millis().min(u128::from(u64::MAX)) as u64,
        };
        let msg = serde_json::to_vec(&ParentMessage::Plan(Box::new(plan)))
            .map_err(|e| SandboxError::Protocol(e.to_string()))?;
        if msg.len() > MAX_MESSAGE {
            return Err(SandboxError::Command(
                "command, environment and paths are too large".into(),
            ));
        }
        let exe = self.config.exe.display().to_string();
        let child_gone = move |e: io::Error| {
            SandboxError::Setup(SetupFailure::new(
                K::Supervisor,
                format!(
                    "{exe} did not take the sandbox plan ({e}); its main must call dgc_sandbox::enter_child_if_requested() first"
                ),
            ))
        };
        sys::send_packet(launched.control.as_fd(), &msg, None).map_err(&child_gone)?;

        let supervisor = launched
            .supervisor
            .take()
            .ok_or_else(|| SandboxError::Protocol("no supervisor".into()))?;
        let cgroup = launched.cgroup.take().map(|c| Arc::new(Mutex::new(c)));
        let killer = Arc::new(Killer::new(
            Some(sys::dup_min(supervisor.as_fd(), 3)?),
            cgroup.clone(),
        ));
        let counters = Arc::new(OutputCounters::default());
        let (tx, rx) = mpsc::channel(64);
        let limit = profile.limits.output.0;
        let out = sys::dup_min(launched.stdout.as_fd(), 3)?;
        let err = sys::dup_min(launched.stderr.as_fd(), 3)?;
        start_pump(
            out,
            OutputStream::Stdout,
            tx.clone(),
            counters.clone(),
            limit,
            killer.clone(),
        )?;
        start_pump(
            err,
            OutputStream::Stderr,
            tx,
            counters.clone(),
            limit,
            killer.clone(),
        )?;
        let stdin_parent = launched.stdin.take();
        let parent_sock = sys::dup_min(launched.control.as_fd(), 3)?;
        drop(launched);

        sys::set_nonblocking(parent_sock.as_raw_fd())?;
        let mut control = Control {
            fd: sys::async_fd(parent_sock)?,
            buf: vec![0u8; MAX_MESSAGE],
        };
        let (events_tx, events_rx) = match proxy_allow {
            Some(_) => {
                let (t, r) = mpsc::channel(1024);
                (Some(t), Some(r))
            }
            None => (None, None),
        };
        let mut proxy: Option<(Arc<EgressProxy>, tokio::task::JoinHandle<()>)> = None;
        let mut protections = Vec::new();
        let mut state = MonitorState::default();

        // Setup phase: until the init reports Ready (or a failure).
        let setup =
            tokio::time::timeout(SETUP_TIMEOUT.min(timeout + Duration::from_secs(5)), async {
                loop {
                    let next = match control.recv().await {
                        Err(SandboxError::Io(e)) => return Err(child_gone(e)),
                        other => other?,
                    };
                    let Some((msg, fd)) = next else {
                        return Err(SandboxError::Setup(SetupFailure::new(
                            K::Supervisor,
                            "the sandbox child exited during setup without saying why",
                        )));
                    };
                    match msg {
                        ChildMessage::Spawned { .. } => {
                            if let (Some(fd), Ok(mut init)) = (fd, killer.init.lock()) {
                                *init = Some(fd);
                            }
                        }
                        ChildMessage::Listener => {
                            let (Some(fd), Some(allow)) = (fd, proxy_allow.clone()) else {
                                return Err(SandboxError::Protocol(
                                    "listener without a descriptor".into(),
                                ));
                            };
                            let std_listener = std::net::TcpListener::from(fd);
                            std_listener.set_nonblocking(true)?;
                            let listener = tokio::net::TcpListener::from_std(std_listener)?;
                            let p = EgressProxy::new(
                                allow,
                                self.config.proxy.clone(),
                                events_tx.clone(),
                            );
                            let task = tokio::spawn(p.clone().serve(listener));
                            proxy = Some((p, task));
                        }
                        ChildMessage::Ready {
                            protections: p,
                            degraded: d,
                        } => {
                            protections = p;
                            degraded.extend(d);
                            return Ok(());
                        }
                        ChildMessage::SetupFailed(f) => return Err(SandboxError::Setup(f)),
                        other => state.apply(other),
                    }
                }
            })
            .await;
        let setup = match setup {
            Ok(r) => r,
            Err(_) => Err(SandboxError::Setup(SetupFailure::new(
                K::Supervisor,
                "sandbox setup timed out",
            ))),
        };
        if let Err(e) = setup {
            killer.kill(KillReason::Cancelled);
            if let Some((_, task)) = proxy {
                task.abort();
            }
            let _ = wait_pidfd(supervisor).await;
            if let Some(cg) = cgroup {
                tokio::task::spawn_blocking(move || {
                    if let Ok(mut c) = cg.lock() {
                        c.remove();
                    }
                });
            }
            return Err(e);
        }
        if let Some(p) = cg_protection {
            protections.push(p);
        }
        protections.push(Protection::new(
            K::ScrubbedEnvironment,
            "only the profile's variables, injected ones, PATH/HOME defaults and proxy settings",
        ));
        if proxy.is_some() {
            protections.push(Protection::new(
                K::EgressProxy,
                "allowlist, DNS pinning, private-range and SNI checks",
            ));
        }
        let init = killer
            .init
            .lock()
            .ok()
            .and_then(|i| i.as_ref().map(|fd| sys::dup_min(fd.as_fd(), 3)))
            .transpose()?;

        let (result_tx, result_rx) = oneshot::channel();
        let monitor = Monitor {
            id: id.clone(),
            tier: SandboxTier::Process,
            control,
            supervisor,
            init,
            killer: killer.clone(),
            cgroup,
            proxy,
            deadline: tokio::time::Instant::from_std(started + timeout),
            protections: protections.clone(),
            degraded: degraded.clone(),
            started,
            state,
        };
        tokio::spawn(monitor.run(result_tx));
        let stdin = stdin_parent.map(pipe::Sender::from_owned_fd).transpose()?;
        Ok(SandboxChild {
            id,
            stdin,
            output: rx,
            egress_events: events_rx,
            killer,
            result: Some(result_rx),
            counters,
            protections,
            degraded,
        })
    }
}

/// A sandbox's cgroup (absent under `no-cgroups`), what went missing, and what was applied.
pub(crate) type CgroupSetup = (Option<SandboxCgroup>, Vec<Degradation>, Option<Protection>);

/// Cgroup limits for a profile: the supervisor and the init count against `pids.max`.
fn cgroup_limits(profile: &SandboxProfile) -> CgroupLimits {
    CgroupLimits {
        memory: profile.limits.memory.0,
        pids: profile.limits.pids.saturating_add(2),
        cpu: profile.limits.cpu,
    }
}

/// A started supervisor (pre-spawned or not) and the parent's ends of its descriptors.
struct Launched {
    id: String,
    supervisor: Option<OwnedFd>,
    control: OwnedFd,
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
    cgroup: Option<SandboxCgroup>,
}

impl Drop for Launched {
    fn drop(&mut self) {
        // Only unused warm supervisors get here with a pidfd: end and reap them.
        if let Some(pidfd) = self.supervisor.take() {
            let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            while let Ok(None) = sys::waitid_pidfd(pidfd.as_fd()) {
                let _ = sys::poll(&[(pidfd.as_raw_fd(), libc::POLLIN)], 100);
            }
        }
    }
}

/// Starts the supervisor (the re-exec'd child) with its stdio and control socket.
fn launch(
    exe: &std::path::Path,
    stdin: StdinMode,
    id: String,
    cgroup: Option<SandboxCgroup>,
) -> Result<Launched, SandboxError> {
    let (control, child_sock) = sys::seqpacket_pair()?;
    let child_sock = sys::dup_min(child_sock.as_fd(), 10)?;
    let (stdin_parent, stdin_child): (Option<OwnedFd>, Option<OwnedFd>) = match stdin {
        StdinMode::Null => (None, Some(sys::open(c"/dev/null", libc::O_RDONLY, 0)?)),
        StdinMode::Piped => {
            let (r, w) = sys::pipe()?;
            (Some(w), Some(r))
        }
        StdinMode::Inherit => (None, None),
    };
    let (out_r, out_w) = sys::pipe()?;
    let (err_r, err_w) = sys::pipe()?;
    let stdin_child = stdin_child
        .map(|fd| sys::dup_min(fd.as_fd(), 10))
        .transpose()?;
    let out_w = sys::dup_min(out_w.as_fd(), 10)?;
    let err_w = sys::dup_min(err_w.as_fd(), 10)?;
    let exe_c = sys::path_cstring(exe)?;
    let argv = [
        exe_c.clone(),
        CString::new(CHILD_ARG).map_err(|e| SandboxError::Protocol(e.to_string()))?,
    ];
    let mut fds = vec![
        (out_w.as_raw_fd(), 1),
        (err_w.as_raw_fd(), 2),
        (child_sock.as_raw_fd(), CONTROL_FD),
    ];
    if let Some(i) = &stdin_child {
        fds.push((i.as_raw_fd(), 0));
    }
    let pid = sys::spawn_with_fds(&exe_c, &argv, &fds).map_err(|e| {
        SetupFailure::new(K::Supervisor, format!("starting {}: {e}", exe.display()))
    })?;
    let supervisor = sys::pidfd_open(pid)?;
    Ok(Launched {
        id,
        supervisor: Some(supervisor),
        control,
        stdin: stdin_parent,
        stdout: out_r,
        stderr: err_r,
        cgroup,
    })
}

/// A process started through the exec helper (the gVisor tier's runsc).
pub(crate) struct ExecLaunched {
    pub(crate) pidfd: OwnedFd,
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
}

/// Starts `exe __dgc-sandbox-exec`, which joins the plan's cgroups and execs its argv.
pub(crate) fn launch_exec(
    exe: &std::path::Path,
    stdin: StdinMode,
    plan: &crate::gvisor::ExecPlan,
) -> Result<ExecLaunched, SandboxError> {
    let body = serde_json::to_vec(plan).map_err(|e| SandboxError::Protocol(e.to_string()))?;
    let (plan_r, plan_w) = sys::pipe()?;
    sys::write_all(plan_w.as_fd(), &body)?;
    drop(plan_w);
    let plan_r = sys::dup_min(plan_r.as_fd(), 10)?;
    let (stdin_parent, stdin_child): (Option<OwnedFd>, Option<OwnedFd>) = match stdin {
        StdinMode::Null => (None, Some(sys::open(c"/dev/null", libc::O_RDONLY, 0)?)),
        StdinMode::Piped => {
            let (r, w) = sys::pipe()?;
            (Some(w), Some(r))
        }
        StdinMode::Inherit => (None, None),
    };
    let (out_r, out_w) = sys::pipe()?;
    let (err_r, err_w) = sys::pipe()?;
    let stdin_child = stdin_child
        .map(|fd| sys::dup_min(fd.as_fd(), 10))
        .transpose()?;
    let out_w = sys::dup_min(out_w.as_fd(), 10)?;
    let err_w = sys::dup_min(err_w.as_fd(), 10)?;
    let exe_c = sys::path_cstring(exe)?;
    let argv = [
        exe_c.clone(),
        CString::new(crate::gvisor::EXEC_ARG).map_err(|e| SandboxError::Protocol(e.to_string()))?,
    ];
    let mut fds = vec![
        (out_w.as_raw_fd(), 1),
        (err_w.as_raw_fd(), 2),
        (plan_r.as_raw_fd(), CONTROL_FD),
    ];
    if let Some(i) = &stdin_child {
        fds.push((i.as_raw_fd(), 0));
    }
    let pid = sys::spawn_with_fds(&exe_c, &argv, &fds)
        .map_err(|e| SetupFailure::new(K::Gvisor, format!("starting {}: {e}", exe.display())))?;
    Ok(ExecLaunched {
        pidfd: sys::pidfd_open(pid)?,
        stdin: stdin_parent,
        stdout: out_r,
        stderr: err_r,
    })
}

/// Pre-spawned supervisors, each already inside its own (not yet limited) cgroup.
#[derive(Debug)]
struct Pool {
    items: Mutex<Vec<Launched>>,
    filling: AtomicBool,
    size: usize,
}

impl std::fmt::Debug for Launched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launched")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Pool {
    fn take(&self) -> Option<Launched> {
        self.items.lock().ok().and_then(|mut v| v.pop())
    }

    /// Tops the pool up in the background.
    fn refill(self: &Arc<Self>, exe: PathBuf, parent: CgroupParent) {
        if self.size == 0 || self.filling.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            while me.items.lock().map(|v| v.len() < me.size).unwrap_or(false) {
                match warm_one(&exe, &parent) {
                    Ok(l) => {
                        if let Ok(mut v) = me.items.lock() {
                            v.push(l);
                        }
                    }
                    Err(e) => {
                        tracing::warn!("pre-spawning a sandbox supervisor failed: {e}");
                        break;
                    }
                }
            }
            me.filling.store(false, Ordering::SeqCst);
        });
    }
}

/// Spawns one supervisor and waits until it sits in its own cgroup.
fn warm_one(exe: &std::path::Path, parent: &CgroupParent) -> Result<Launched, SandboxError> {
    let id = crate::cgroup::unique_name();
    let cg = SandboxCgroup::create(parent, &id, cgroup_limits(&SandboxProfile::default()))?;
    let procs = cg.procs_files();
    let l = launch(exe, StdinMode::Piped, id, Some(cg))?;
    let msg = serde_json::to_vec(&ParentMessage::Prepare {
        cgroup_procs: procs,
    })
    .map_err(|e| SandboxError::Protocol(e.to_string()))?;
    sys::send_packet(l.control.as_fd(), &msg, None)?;
    if sys::poll(&[(l.control.as_raw_fd(), libc::POLLIN)], 10_000)?
        .first()
        .copied()
        .unwrap_or(0)
        == 0
    {
        return Err(SandboxError::Protocol(
            "pre-spawned supervisor did not join its cgroup".into(),
        ));
    }
    let mut buf = vec![0u8; 64 * 1024];
    match sys::recv_packet(l.control.as_fd(), &mut buf, libc::MSG_DONTWAIT)? {
        Some((n, _)) => match serde_json::from_slice::<ChildMessage>(&buf[..n]) {
            Ok(ChildMessage::Joined) => Ok(l),
            Ok(ChildMessage::SetupFailed(f)) => Err(SandboxError::Setup(f)),
            other => Err(SandboxError::Protocol(format!(
                "unexpected answer from a pre-spawned supervisor: {other:?}"
            ))),
        },
        None => Err(SandboxError::Protocol(
            "pre-spawned supervisor exited".into(),
        )),
    }
}

/// The parent end of the control socket.
pub(crate) struct Control {
    fd: AsyncFd<OwnedFd>,
    buf: Vec<u8>,
}

impl Control {
    /// Next message (with its passed descriptor); `None` at end of stream.
    async fn recv(&mut self) -> Result<Option<(ChildMessage, Option<OwnedFd>)>, SandboxError> {
        loop {
            let mut guard = self.fd.readable().await?;
            match sys::recv_packet(guard.get_inner().as_fd(), &mut self.buf, libc::MSG_DONTWAIT) {
                Ok(None) => return Ok(None),
                Ok(Some((n, fd))) => {
                    let msg: ChildMessage = serde_json::from_slice(&self.buf[..n])
                        .map_err(|e| SandboxError::Protocol(format!("bad message: {e}")))?;
                    return Ok(Some((msg, fd)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Waits until the process behind `pidfd` ends and reaps it.
pub(crate) async fn wait_pidfd(pidfd: OwnedFd) -> io::Result<sys::Exit> {
    let afd = sys::async_fd(pidfd)?;
    loop {
        if let Some(exit) = sys::waitid_pidfd(afd.get_ref().as_fd())? {
            return Ok(exit);
        }
        let mut g = afd.readable().await?;
        g.clear_ready();
    }
}

/// What the child reported after setup.
#[derive(Debug, Default)]
struct MonitorState {
    status: Option<ExitStatus>,
    exec_error: Option<String>,
    child_timed_out: bool,
}

impl MonitorState {
    fn apply(&mut self, msg: ChildMessage) {
        match msg {
            ChildMessage::Exited { code } => self.status = Some(ExitStatus::Exited { code }),
            ChildMessage::Signaled { signal } => {
                self.status = Some(ExitStatus::Signaled { signal });
            }
            ChildMessage::ExecFailed { message, .. } => self.exec_error = Some(message),
            ChildMessage::TimedOut => self.child_timed_out = true,
            _ => {}
        }
    }
}

struct Monitor {
    id: String,
    tier: SandboxTier,
    control: Control,
    supervisor: OwnedFd,
    /// The sandbox init (pid 1 of its namespace); its end means every sandboxed process is gone.
    init: Option<OwnedFd>,
    killer: Arc<Killer>,
    cgroup: Option<Arc<Mutex<SandboxCgroup>>>,
    proxy: Option<(Arc<EgressProxy>, tokio::task::JoinHandle<()>)>,
    deadline: tokio::time::Instant,
    protections: Vec<Protection>,
    degraded: Vec<Degradation>,
    started: Instant,
    state: MonitorState,
}

/// Resolves when the process behind a (non-child) pidfd has ended.
async fn pidfd_ended(fd: Option<OwnedFd>) {
    let Some(fd) = fd else {
        return std::future::pending().await;
    };
    let Ok(afd) = sys::async_fd(fd) else {
        return std::future::pending().await;
    };
    let _ = afd.readable().await;
}

impl Monitor {
    async fn run(mut self, tx: oneshot::Sender<SandboxResult>) {
        let s_exit = wait_pidfd(self.supervisor);
        tokio::pin!(s_exit);
        let init_end = pidfd_ended(self.init.take());
        tokio::pin!(init_end);
        let mut control_open = true;
        let mut s_done = false;
        let mut timer_armed = true;
        // The result is ready when the init is gone (the kernel then has killed every process
        // of the namespace) — or the supervisor, if the init's pidfd never arrived.
        loop {
            tokio::select! {
                _ = &mut init_end => break,
                _ = &mut s_exit, if !s_done => { s_done = true; break }
                m = self.control.recv(), if control_open => match m {
                    Ok(Some((msg, _))) => self.state.apply(msg),
                    Ok(None) | Err(_) => control_open = false,
                },
                _ = tokio::time::sleep_until(self.deadline), if timer_armed => {
                    timer_armed = false;
                    self.killer.kill(KillReason::Timeout);
                }
            }
        }
        // The init's last messages are already queued.
        while control_open {
            match tokio::time::timeout(
                Duration::from_millis(if s_done { 200 } else { 0 }),
                self.control.recv(),
            )
            .await
            {
                Ok(Ok(Some((msg, _)))) => self.state.apply(msg),
                _ => control_open = false,
            }
        }
        self.killer.finish();
        let (oom, pids) = match &self.cgroup {
            Some(cg) => cg
                .lock()
                .map(|c| (c.oom_kills() > 0, c.pids_max_events() > 0))
                .unwrap_or((false, false)),
            None => (false, false),
        };
        let egress = match self.proxy.take() {
            Some((p, task)) => {
                task.abort();
                p.summary()
            }
            None => EgressSummary::default(),
        };
        let reason = self.killer.reason();
        let result = SandboxResult {
            id: self.id.clone(),
            tier: self.tier,
            status: self.state.status.unwrap_or(ExitStatus::Killed),
            oom_killed: oom,
            timed_out: reason == Some(KillReason::Timeout) || self.state.child_timed_out,
            output_limited: reason == Some(KillReason::OutputLimit),
            cancelled: reason == Some(KillReason::Cancelled),
            pids_limited: pids,
            protections: self.protections,
            degraded: self.degraded,
            egress,
            stdout_bytes: 0,
            stderr_bytes: 0,
            duration: self.started.elapsed(),
            exec_error: self.state.exec_error,
        };
        let _ = tx.send(result);
        // Teardown (the supervisor releases the mount namespace) happens off the caller's path.
        if !s_done
            && tokio::time::timeout(Duration::from_secs(5), &mut s_exit)
                .await
                .is_err()
        {
            self.killer.kill_now();
            let _ = s_exit.await;
        }
        if let Some(cg) = self.cgroup {
            let _ = tokio::task::spawn_blocking(move || {
                if let Ok(mut c) = cg.lock() {
                    c.remove();
                }
            })
            .await;
        }
    }
}

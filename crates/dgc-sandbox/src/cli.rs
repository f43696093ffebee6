//! `dgc sandbox run` and `dgc doctor`: clap arguments and the functions the `dgc` binary calls
//! after [`crate::enter_child_if_requested`]. Both build their own tokio runtime.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use dgc_types::egress::{EgressAllowlist, HostPattern};
use dgc_types::sandbox::{NetworkPolicy, SandboxProfile, SandboxTier};
use dgc_types::{DurationSpec, parse_duration, parse_size, size::ByteSize};

use crate::report::{SandboxResult, Termination};
use crate::spawn::{OutputStream, Sandbox, SandboxCommand, SandboxConfig, SandboxError, StdinMode};

/// Exit code when the sandbox could not be set up (nothing ran).
pub const EXIT_SETUP: u8 = 125;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TierArg {
    Process,
    Gvisor,
}

/// `dgc sandbox run [options] -- CMD ARGS…`
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Isolation tier.
    #[arg(long, value_enum, default_value = "process")]
    pub tier: TierArg,
    /// Allow egress (through DGC's proxy) to HOST[:PORT] or *.DOMAIN; repeatable.
    #[arg(long = "allow-net", value_name = "HOST")]
    pub allow_net: Vec<String>,
    /// Make DIR writable inside the sandbox; repeatable.
    #[arg(long = "write", value_name = "DIR")]
    pub write: Vec<PathBuf>,
    /// Keep PATH (relative to each writable DIR) read-only, e.g. `.git/hooks`; repeatable.
    #[arg(long = "protect", value_name = "PATH")]
    pub protect: Vec<PathBuf>,
    /// Set an environment variable; repeatable. Nothing else is inherited.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Memory limit for the whole tree (e.g. 256M).
    #[arg(long)]
    pub memory: Option<String>,
    /// Process/thread limit.
    #[arg(long)]
    pub pids: Option<u32>,
    /// CPU quota in cores.
    #[arg(long)]
    pub cpu: Option<f64>,
    /// Wall-clock limit (e.g. 10s, 2m).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Output limit for stdout + stderr (e.g. 16M).
    #[arg(long)]
    pub output: Option<String>,
    /// Write the run's result (protections, termination, egress decisions) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `dgc doctor [--json]`
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("dgc sandbox: {msg}");
    ExitCode::from(2)
}

/// Builds the profile the flags describe.
pub fn profile_from_args(args: &RunArgs) -> Result<SandboxProfile, String> {
    let mut p = SandboxProfile {
        tier: match args.tier {
            TierArg::Process => SandboxTier::Process,
            TierArg::Gvisor => SandboxTier::Gvisor,
        },
        ..SandboxProfile::default()
    };
    for w in &args.write {
        let c = std::fs::canonicalize(w).map_err(|e| format!("--write {}: {e}", w.display()))?;
        p.writable.push(c);
    }
    p.protected.clone_from(&args.protect);
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--env {kv:?}: expected K=V"))?;
        p.env.set.insert(k.to_string(), v.to_string());
    }
    if let Some(m) = &args.memory {
        p.limits.memory = ByteSize(parse_size(m).map_err(|e| format!("--memory: {e}"))?);
    }
    if let Some(n) = args.pids {
        p.limits.pids = n;
    }
    if let Some(c) = args.cpu {
        p.limits.cpu = c;
    }
    if let Some(t) = &args.timeout {
        p.limits.timeout = DurationSpec(parse_duration(t).map_err(|e| format!("--timeout: {e}"))?);
    }
    if let Some(o) = &args.output {
        p.limits.output = ByteSize(parse_size(o).map_err(|e| format!("--output: {e}"))?);
    }
    if !args.allow_net.is_empty() {
        let mut allow = Vec::new();
        for h in &args.allow_net {
            allow.push(HostPattern::parse(h).map_err(|e| format!("--allow-net {h}: {e}"))?);
        }
        p.network = NetworkPolicy::Allowlist {
            allow: EgressAllowlist(allow),
        };
    }
    p.validate().map_err(|e| e.to_string())?;
    Ok(p)
}

/// Runs a command in a sandbox, streaming its output; exits with its code or 128+signal.
pub fn run(args: RunArgs) -> ExitCode {
    let profile = match profile_from_args(&args) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let cmd = match SandboxCommand::operator(args.command.clone()) {
        Ok(c) => c.stdin(StdinMode::Inherit),
        Err(e) => return usage(e),
    };
    let config = match SandboxConfig::from_current_exe() {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage(format!("starting the runtime: {e}")),
    };
    let code = rt.block_on(run_async(
        Sandbox::new(config),
        cmd,
        &profile,
        args.report.as_deref(),
    ));
    ExitCode::from(code)
}

async fn run_async(
    sandbox: Sandbox,
    cmd: SandboxCommand,
    profile: &SandboxProfile,
    report: Option<&std::path::Path>,
) -> u8 {
    let mut child = match sandbox.spawn(cmd, profile).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dgc sandbox: {e}");
            if let SandboxError::Setup(f) = &e
                && !f.remediation.is_empty()
            {
                eprintln!("dgc sandbox: fix: {}", f.remediation);
            }
            return EXIT_SETUP;
        }
    };
    let mut interrupted = false;
    loop {
        tokio::select! {
            chunk = child.next_output() => match chunk {
                Some(c) => {
                    let res = match c.stream {
                        OutputStream::Stdout => { let mut o = std::io::stdout().lock(); o.write_all(&c.data).and_then(|()| o.flush()) }
                        OutputStream::Stderr => { let mut e = std::io::stderr().lock(); e.write_all(&c.data).and_then(|()| e.flush()) }
                    };
                    if res.is_err() {
                        child.kill();
                    }
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                child.kill();
            }
        }
    }
    let result = match child.wait().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dgc sandbox: {e}");
            return EXIT_SETUP;
        }
    };
    if let Some(path) = report
        && let Err(e) = serde_json::to_vec_pretty(&result)
            .map_err(std::io::Error::other)
            .and_then(|b| std::fs::write(path, b))
    {
        eprintln!("dgc sandbox: writing the report to {}: {e}", path.display());
    }
    if let Some(msg) = termination_message(&result, profile) {
        eprintln!("dgc sandbox: {msg}");
    }
    result.shell_code()
}

/// The distinct message printed for DGC's own kills and for signals.
pub fn termination_message(r: &SandboxResult, profile: &SandboxProfile) -> Option<String> {
    if let Some(e) = &r.exec_error {
        return Some(format!("cannot execute {e}"));
    }
    match r.termination() {
        Termination::Exited { .. } => None,
        Termination::Signaled { signal } => Some(format!("killed by signal {signal}")),
        Termination::OutOfMemory => Some(format!(
            "out of memory: the sandbox reached its {} memory limit and the kernel's OOM killer ended it",
            profile.limits.memory
        )),
        Termination::TimedOut => Some(format!(
            "timed out after {}: the whole process tree was killed",
            humantime::format_duration(profile.limits.timeout.0)
        )),
        Termination::OutputLimit => Some(format!(
            "output limit of {} bytes reached: the whole process tree was killed",
            profile.limits.output.0
        )),
        Termination::Cancelled => Some("cancelled: the whole process tree was killed".into()),
    }
}

/// Probes this host and prints what each tier needs and whether it works.
pub fn doctor(args: DoctorArgs) -> ExitCode {
    let config = match SandboxConfig::from_current_exe() {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage(format!("starting the runtime: {e}")),
    };
    let report = rt.block_on(crate::doctor::probe(&Sandbox::new(config)));
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => return usage(e),
        }
    } else {
        print!("{}", report.render());
    }
    if report.process_tier_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

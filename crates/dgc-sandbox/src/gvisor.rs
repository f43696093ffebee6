//! The gVisor tier: the same profile as an OCI bundle run by `runsc run` (Debian's `runsc`
//! package) with `--network=none`. The host root is the read-only rootfs, `/tmp` and hidden
//! paths are tmpfs, writable directories are bind mounts, the process runs as the sandbox user
//! with no capabilities and no_new_privs. runsc runs inside a DGC cgroup (joined before exec, so
//! the sentry and gofer inherit the memory/pids/CPU limits), and the whole cgroup is killed on
//! timeout, cancellation or drop.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dgc_types::sandbox::{NetworkPolicy, SandboxProfile, SandboxTier};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::protocol::HOSTNAME;
use crate::proxy::EgressSummary;
use crate::report::{
    ExitStatus, KillReason, Protection, ProtectionKind as K, SandboxResult, SetupFailure,
};
use crate::spawn::{
    Killer, OutputCounters, OutputStream, Sandbox, SandboxChild, SandboxCommand, SandboxError,
    build_env, check_writable, host_ids, start_pump, wait_pidfd,
};
use crate::sys;

/// Host tasks allowed on top of the profile's pids limit for gVisor's own processes/threads.
pub(crate) const GVISOR_TASK_HEADROOM: u32 = 128;

/// Hidden `argv[1]` of the helper that joins the sandbox's cgroups and then execs runsc.
pub(crate) const EXEC_ARG: &str = "__dgc-sandbox-exec";

/// What the exec helper reads from descriptor 3.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ExecPlan {
    pub cgroup_procs: Vec<PathBuf>,
    pub argv: Vec<String>,
}

/// Body of the exec helper (single-threaded, before any runtime): join, then exec.
pub(crate) fn exec_helper() -> i32 {
    let mut buf = Vec::new();
    #[allow(unsafe_code)]
    // SAFETY: descriptor 3 was placed by DGC for this process and nothing else owns it.
    let fd = unsafe { sys::own_raw(crate::protocol::CONTROL_FD) };
    let mut f = std::fs::File::from(fd);
    if f.read_to_end(&mut buf).is_err() {
        return 125;
    }
    drop(f);
    let Ok(plan) = serde_json::from_slice::<ExecPlan>(&buf) else {
        eprintln!("{EXEC_ARG} is DGC's internal gVisor launcher");
        return 2;
    };
    for procs in &plan.cgroup_procs {
        if let Err(e) = std::fs::write(procs, std::process::id().to_string()) {
            eprintln!("dgc sandbox: joining {}: {e}", procs.display());
            return 125;
        }
    }
    let Ok(argv) = plan
        .argv
        .iter()
        .map(|a| sys::cstring(a))
        .collect::<Result<Vec<_>, _>>()
    else {
        return 125;
    };
    let env = [sys::cstring("PATH=/usr/sbin:/usr/bin:/sbin:/bin").unwrap_or_default()];
    let err = sys::execvpe(&argv, &env);
    eprintln!(
        "dgc sandbox: exec {}: {err}",
        plan.argv.first().map(String::as_str).unwrap_or("")
    );
    125
}

/// Finds `runsc` (a path, or a name looked up in `PATH`) and its version.
pub(crate) fn find_runsc(p: &Path) -> Result<(PathBuf, String), SetupFailure> {
    let candidates: Vec<PathBuf> = if p.is_absolute() {
        vec![p.to_path_buf()]
    } else {
        let path = std::env::var("PATH").unwrap_or_else(|_| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(p))
            .collect()
    };
    let Some(found) = candidates.into_iter().find(|c| c.is_file()) else {
        return Err(SetupFailure::new(
            K::Gvisor,
            format!(
                "{} not found (the gvisor tier needs gVisor's runsc)",
                p.display()
            ),
        ));
    };
    let out = std::process::Command::new(&found)
        .arg("--version")
        .output()
        .map_err(|e| {
            SetupFailure::new(
                K::Gvisor,
                format!("running {} --version: {e}", found.display()),
            )
        })?;
    if !out.status.success() {
        return Err(SetupFailure::new(
            K::Gvisor,
            format!("{} --version failed", found.display()),
        ));
    }
    let version = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("runsc")
        .trim()
        .to_string();
    Ok((found, version))
}

/// The OCI `config.json` for a profile.
fn oci_spec(
    profile: &SandboxProfile,
    argv: &[String],
    env: &[(String, String)],
    cwd: &Path,
    uid: u32,
    gid: u32,
) -> serde_json::Value {
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "noexec", "mode=755", "size=65536k"]}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=1777", format!("size={}", profile.limits.tmp.0)]}),
    ];
    for h in &profile.hidden {
        if h.is_dir() && !h.is_symlink() {
            mounts.push(json!({"destination": h, "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nosuid", "nodev", "noexec", "size=64k"]}));
        }
    }
    let mut writable = profile.writable.clone();
    writable.sort_by_key(|w| w.components().count());
    for w in &writable {
        mounts.push(json!({"destination": w, "type": "bind", "source": w, "options": ["rbind", "rw", "nosuid", "nodev"]}));
        for p in &profile.protected {
            let full = w.join(p);
            if full.exists() && !full.is_symlink() {
                mounts.push(json!({"destination": full, "type": "bind", "source": full, "options": ["rbind", "ro", "nosuid", "nodev"]}));
            }
        }
    }
    let caps: Vec<String> = Vec::new();
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": gid, "additionalGids": []},
            "args": argv,
            "env": env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "inheritable": caps, "permitted": caps, "ambient": caps},
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "hard": profile.limits.open_files, "soft": profile.limits.open_files},
                {"type": "RLIMIT_FSIZE", "hard": profile.limits.file_size.0, "soft": profile.limits.file_size.0},
                {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}
            ],
            "noNewPrivileges": true
        },
        "root": {"path": "/", "readonly": true},
        "hostname": HOSTNAME,
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
        }
    })
}

pub(crate) async fn spawn(
    s: &Sandbox,
    cmd: SandboxCommand,
    profile: &SandboxProfile,
) -> Result<SandboxChild, SandboxError> {
    let started = Instant::now();
    let (runsc, version) = find_runsc(&s.config().runsc)?;
    if sys::geteuid() != 0 {
        return Err(SetupFailure::new(
            K::Gvisor,
            "runsc from Debian's package must run as root here",
        )
        .with_remediation("run dgc as root for the gvisor tier, or use the process tier")
        .into());
    }
    if let NetworkPolicy::Allowlist { .. } = profile.network {
        return Err(SetupFailure::new(
            K::EgressProxy,
            "the gvisor tier runs with network none only in this version",
        )
        .with_remediation("use the process tier for workloads that need the egress proxy")
        .into());
    }
    let env = build_env(profile, &cmd, false)?;
    let (uid, gid, _) = host_ids(s.config())?;
    check_writable(&profile.writable, uid, gid)?;
    let cwd = cmd
        .cwd_path()
        .or_else(|| profile.writable.first().cloned())
        .unwrap_or_else(|| PathBuf::from("/"));
    let id = crate::cgroup::unique_name();
    let (cgroup, degraded, cg_protection) = s.cgroup(profile, &id)?;
    if let Some(cg) = &cgroup {
        // The sentry, gofer and ptrace stubs are host tasks too (about 32 when idle).
        let limits = crate::cgroup::CgroupLimits {
            memory: profile.limits.memory.0,
            pids: profile.limits.pids.saturating_add(GVISOR_TASK_HEADROOM),
            cpu: profile.limits.cpu,
        };
        cg.set_limits(limits)?;
    }

    let bundle = std::env::temp_dir().join(format!("dgc-gvisor-{id}"));
    let state = bundle.join("state");
    std::fs::create_dir_all(&state)
        .map_err(|e| SetupFailure::new(K::Gvisor, format!("creating {}: {e}", bundle.display())))?;
    let mut hidden = profile.hidden.clone();
    hidden.extend(s.config().extra_hidden.iter().cloned());
    let mut eff = profile.clone();
    eff.hidden = hidden;
    let spec = oci_spec(&eff, cmd.argv(), &env, &cwd, uid, gid);
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&spec).map_err(|e| SandboxError::Protocol(e.to_string()))?,
    )
    .map_err(|e| SetupFailure::new(K::Gvisor, format!("writing the OCI bundle: {e}")))?;
    let argv: Vec<String> = vec![
        runsc.display().to_string(),
        format!("--root={}", state.display()),
        "--network=none".into(),
        "--ignore-cgroups".into(),
        "run".into(),
        format!("--bundle={}", bundle.display()),
        id.clone(),
    ];
    let plan = ExecPlan {
        cgroup_procs: cgroup.as_ref().map(|c| c.procs_files()).unwrap_or_default(),
        argv,
    };
    let launched = crate::spawn::launch_exec(&s.config().exe, cmd.stdin_mode(), &plan)?;

    let cgroup = cgroup.map(|c| Arc::new(Mutex::new(c)));
    let killer = Arc::new(Killer::new(
        Some(sys::dup_min(std::os::fd::AsFd::as_fd(&launched.pidfd), 3)?),
        cgroup.clone(),
    ));
    let counters = Arc::new(OutputCounters::default());
    let (tx, rx) = mpsc::channel(64);
    let limit = profile.limits.output.0;
    start_pump(
        launched.stdout,
        OutputStream::Stdout,
        tx.clone(),
        counters.clone(),
        limit,
        killer.clone(),
    )?;
    start_pump(
        launched.stderr,
        OutputStream::Stderr,
        tx,
        counters.clone(),
        limit,
        killer.clone(),
    )?;

    let mut protections = vec![
        Protection::new(
            K::Gvisor,
            format!("{version}: syscalls served by the gVisor sentry, not the host kernel"),
        ),
        Protection::new(K::ReadOnlyRoot, "host / as a read-only rootfs"),
        Protection::new(
            K::PrivateTmp,
            format!("tmpfs of {} bytes", profile.limits.tmp.0),
        ),
        Protection::new(K::NetworkNamespace, "runsc --network=none"),
        Protection::new(K::UnprivilegedUser, format!("uid/gid {uid}:{gid}")),
        Protection::new(K::Capabilities, "no capabilities"),
        Protection::new(K::NoNewPrivs, "noNewPrivileges"),
        Protection::new(
            K::Rlimits,
            format!(
                "file size {} bytes, {} open files",
                profile.limits.file_size.0, profile.limits.open_files
            ),
        ),
        Protection::new(
            K::ScrubbedEnvironment,
            "only the profile's variables, injected ones and PATH/HOME defaults",
        ),
    ];
    if let Some(p) = cg_protection {
        protections.push(p);
    }
    let (result_tx, result_rx) = oneshot::channel();
    let deadline = tokio::time::Instant::from_std(started + profile.limits.timeout.0);
    let monitor_protections = protections.clone();
    let monitor_degraded = degraded.clone();
    let k = killer.clone();
    let id2 = id.clone();
    let pidfd = launched.pidfd;
    tokio::spawn(async move {
        let exit = wait_pidfd(pidfd);
        tokio::pin!(exit);
        let status = tokio::select! {
            e = &mut exit => e.ok(),
            _ = tokio::time::sleep_until(deadline) => {
                k.kill(KillReason::Timeout);
                exit.await.ok()
            }
        };
        k.finish();
        let (oom, pids) = match &cgroup {
            Some(cg) => cg
                .lock()
                .map(|c| (c.oom_kills() > 0, c.pids_max_events() > 0))
                .unwrap_or((false, false)),
            None => (false, false),
        };
        // runsc reports a signal as 128 + signal.
        let status = match status {
            Some(sys::Exit::Code(c)) if (129..160).contains(&c) => {
                ExitStatus::Signaled { signal: c - 128 }
            }
            Some(sys::Exit::Code(c)) => ExitStatus::Exited { code: c },
            _ => ExitStatus::Killed,
        };
        let cg2 = cgroup.clone();
        let runsc2 = runsc.clone();
        let id3 = id2.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let (cgroup, runsc, id2) = (cg2, runsc2, id3);
            if let Some(cg) = &cgroup
                && let Ok(c) = cg.lock()
            {
                c.kill_all();
            }
            let _ = std::process::Command::new(&runsc)
                .arg(format!("--root={}", state.display()))
                .args(["delete", "--force", &id2])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(&bundle);
            if let Some(cg) = &cgroup
                && let Ok(mut c) = cg.lock()
            {
                c.remove();
            }
        })
        .await;
        let reason = k.reason();
        let _ = result_tx.send(SandboxResult {
            id: id2.clone(),
            tier: SandboxTier::Gvisor,
            status,
            oom_killed: oom,
            timed_out: reason == Some(KillReason::Timeout),
            output_limited: reason == Some(KillReason::OutputLimit),
            cancelled: reason == Some(KillReason::Cancelled),
            pids_limited: pids,
            protections: monitor_protections,
            degraded: monitor_degraded,
            egress: EgressSummary::default(),
            stdout_bytes: 0,
            stderr_bytes: 0,
            duration: started.elapsed(),
            exec_error: None,
        });
    });
    let stdin = launched
        .stdin
        .map(tokio::net::unix::pipe::Sender::from_owned_fd)
        .transpose()?;
    Ok(SandboxChild {
        id,
        stdin,
        output: rx,
        egress_events: None,
        killer,
        result: Some(result_rx),
        counters,
        protections,
        degraded,
    })
}

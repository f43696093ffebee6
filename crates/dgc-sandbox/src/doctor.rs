//! `dgc doctor`: probes, by actually trying, what this host supports — user and other
//! namespaces, landlock ABI, seccomp, cgroup version and controllers, the mount API, `runsc` —
//! and whether each tier spawns, with the fix for every failure.

use std::path::PathBuf;

use dgc_types::egress::{EgressAllowlist, HostPattern};
use dgc_types::sandbox::{NetworkPolicy, SandboxProfile, SandboxTier};
use serde::Serialize;

use crate::cgroup::{CgroupLimits, SandboxCgroup};
use crate::report::{ProtectionKind, remediation};
use crate::spawn::{Sandbox, SandboxCommand, SandboxError};
use crate::sys;

/// One probe's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// Tiers that cannot work without this.
    pub required_for: Vec<SandboxTier>,
    pub detail: String,
    pub remediation: Option<String>,
}

/// Everything `dgc doctor` found.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub kernel: String,
    pub euid: u32,
    pub checks: Vec<Check>,
}

impl DoctorReport {
    pub fn process_tier_ok(&self) -> bool {
        self.checks
            .iter()
            .filter(|c| c.required_for.contains(&SandboxTier::Process))
            .all(|c| c.ok)
    }

    pub fn gvisor_tier_ok(&self) -> bool {
        self.checks
            .iter()
            .filter(|c| c.required_for.contains(&SandboxTier::Gvisor))
            .all(|c| c.ok)
    }

    pub fn render(&self) -> String {
        let mut s = format!(
            "dgc doctor — kernel {}, running as uid {}\n",
            self.kernel, self.euid
        );
        for c in &self.checks {
            s.push_str(&format!(
                "{} {}: {}\n",
                if c.ok { "✓" } else { "✗" },
                c.name,
                c.detail
            ));
            if let (false, Some(r)) = (c.ok, &c.remediation) {
                s.push_str(&format!("    fix: {r}\n"));
            }
        }
        s.push_str(&format!(
            "process tier: {}\ngvisor tier: {}\n",
            if self.process_tier_ok() {
                "ready"
            } else {
                "NOT AVAILABLE (sandboxed spawns will be refused)"
            },
            if self.gvisor_tier_ok() {
                "ready"
            } else {
                "not available"
            }
        ));
        s
    }
}

fn check(
    name: &str,
    ok: bool,
    tiers: &[SandboxTier],
    detail: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        name: name.into(),
        ok,
        required_for: tiers.to_vec(),
        detail: detail.into(),
        remediation: if ok { None } else { fix },
    }
}

fn read_trim(p: &str) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Runs every probe.
pub async fn probe(sandbox: &Sandbox) -> DoctorReport {
    use SandboxTier::{Gvisor, Process};
    let kernel = read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into());
    let euid = sys::geteuid();
    let mut checks = Vec::new();

    // User namespaces: the sysctls that commonly block them, then a real unshare.
    let mut blockers = Vec::new();
    if read_trim("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        blockers.push("user.max_user_namespaces is 0".to_string());
    }
    if euid != 0 && read_trim("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0")
    {
        blockers.push("kernel.unprivileged_userns_clone is 0".to_string());
    }
    if euid != 0
        && read_trim("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref()
            == Some("1")
    {
        blockers.push(
            "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10+/24.04)".to_string(),
        );
    }
    let userns = sys::probe_unshare(libc::CLONE_NEWUSER);
    let detail = match (&userns, blockers.is_empty()) {
        (Ok(()), true) => "unshare(CLONE_NEWUSER) works".to_string(),
        (Ok(()), false) => format!("unshare works, but: {}", blockers.join("; ")),
        (Err(e), _) => format!(
            "unshare(CLONE_NEWUSER): {e}{}",
            if blockers.is_empty() {
                String::new()
            } else {
                format!(" ({})", blockers.join("; "))
            }
        ),
    };
    checks.push(check(
        "user namespaces",
        userns.is_ok(),
        &[Process],
        detail,
        Some(remediation(ProtectionKind::UserNamespace, "")),
    ));

    for (name, flag, kind) in [
        (
            "pid namespace",
            libc::CLONE_NEWPID,
            ProtectionKind::PidNamespace,
        ),
        (
            "mount namespace",
            libc::CLONE_NEWNS,
            ProtectionKind::MountNamespace,
        ),
        (
            "network namespace",
            libc::CLONE_NEWNET,
            ProtectionKind::NetworkNamespace,
        ),
        (
            "ipc namespace",
            libc::CLONE_NEWIPC,
            ProtectionKind::IpcNamespace,
        ),
        (
            "uts namespace",
            libc::CLONE_NEWUTS,
            ProtectionKind::UtsNamespace,
        ),
        (
            "cgroup namespace",
            libc::CLONE_NEWCGROUP,
            ProtectionKind::CgroupNamespace,
        ),
    ] {
        let r = sys::probe_unshare(libc::CLONE_NEWUSER | flag);
        let detail = match &r {
            Ok(()) => "can be created inside a user namespace".to_string(),
            Err(e) => format!("unshare: {e}"),
        };
        checks.push(check(
            name,
            r.is_ok(),
            &[Process],
            detail,
            Some(remediation(kind, "")),
        ));
    }

    let abi = sys::landlock_abi();
    checks.push(check(
        "landlock",
        abi >= 1,
        &[Process],
        if abi >= 1 {
            format!("ABI {abi}")
        } else {
            "not available".into()
        },
        Some(remediation(ProtectionKind::Landlock, "")),
    ));

    let actions = read_trim("/proc/sys/kernel/seccomp/actions_avail").unwrap_or_default();
    let seccomp = sys::probe_seccomp(&crate::seccomp::build_filter(crate::seccomp::Families {
        inet: true,
        unix: false,
    }));
    let ok = seccomp.is_ok() && actions.contains("errno") && actions.contains("kill_process");
    checks.push(check(
        "seccomp",
        ok,
        &[Process],
        match &seccomp {
            Ok(()) => format!("filter installs; actions: {actions}"),
            Err(e) => format!("installing the filter: {e}"),
        },
        Some(remediation(ProtectionKind::Seccomp, "")),
    ));

    let release: Vec<u32> = kernel
        .split(['.', '-'])
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    let mount_api = release.len() == 2 && (release[0], release[1]) >= (5, 12);
    checks.push(check(
        "mount API",
        mount_api,
        &[Process],
        "open_tree/move_mount/mount_setattr/fsopen (Linux ≥ 5.12)",
        Some("upgrade to Linux 5.12 or later".into()),
    ));

    let cg = crate::cgroup::resolve(&sandbox.config().cgroups).and_then(|parent| {
        let name = format!("doctor-{}", crate::cgroup::unique_name());
        let limits = CgroupLimits {
            memory: 64 << 20,
            pids: 16,
            cpu: 0.5,
        };
        let c = SandboxCgroup::create(&parent, &name, limits)?;
        Ok((parent, c.version()))
    });
    checks.push(match cg {
        Ok((parent, version)) => check(
            "cgroups",
            true,
            &[Process, Gvisor],
            format!(
                "{version:?} with memory, pids and cpu; sandboxes go under {}",
                describe_parent(&parent)
            ),
            None,
        ),
        Err(f) => check(
            "cgroups",
            false,
            &[Process, Gvisor],
            f.message,
            Some(f.remediation),
        ),
    });

    let runsc = crate::gvisor::find_runsc(&sandbox.config().runsc);
    checks.push(match &runsc {
        Ok((path, version)) => check(
            "runsc",
            true,
            &[Gvisor],
            format!("{} ({version})", path.display()),
            None,
        ),
        Err(f) => check(
            "runsc",
            false,
            &[Gvisor],
            f.message.clone(),
            Some(f.remediation.clone()),
        ),
    });

    checks.push(
        spawn_check(
            sandbox,
            "process tier spawns",
            SandboxProfile::default(),
            &[Process],
        )
        .await,
    );
    let mut net = SandboxProfile::default();
    if let Ok(p) = HostPattern::parse("example.com") {
        net.network = NetworkPolicy::Allowlist {
            allow: EgressAllowlist(vec![p]),
        };
    }
    checks.push(
        spawn_check(
            sandbox,
            "process tier with egress proxy spawns",
            net,
            &[Process],
        )
        .await,
    );
    if runsc.is_ok() {
        let g = SandboxProfile {
            tier: SandboxTier::Gvisor,
            ..SandboxProfile::default()
        };
        checks.push(spawn_check(sandbox, "gvisor tier spawns", g, &[Gvisor]).await);
    }
    DoctorReport {
        kernel,
        euid,
        checks,
    }
}

fn describe_parent(p: &crate::cgroup::CgroupParent) -> String {
    match p {
        crate::cgroup::CgroupParent::V1 { memory, .. } => {
            format!("{} (and the pids/cpu hierarchies)", memory.display())
        }
        crate::cgroup::CgroupParent::V2(d) => d.display().to_string(),
    }
}

async fn spawn_check(
    sandbox: &Sandbox,
    name: &str,
    profile: SandboxProfile,
    tiers: &[SandboxTier],
) -> Check {
    let cmd = match SandboxCommand::operator(vec!["true".into()]) {
        Ok(c) => c.cwd(PathBuf::from("/")),
        Err(e) => return check(name, false, tiers, e.to_string(), None),
    };
    let outcome = match sandbox.spawn(cmd, &profile).await {
        Ok(child) => child.wait().await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(r) if r.success() => check(
            name,
            true,
            tiers,
            format!(
                "`true` ran with {} protections{}",
                r.protections.len(),
                if r.degraded.is_empty() {
                    String::new()
                } else {
                    format!(", degraded: {:?}", r.degraded)
                }
            ),
            None,
        ),
        Ok(r) => check(
            name,
            false,
            tiers,
            format!("`true` ended with {:?}", r.termination()),
            None,
        ),
        Err(SandboxError::Setup(f)) => {
            check(name, false, tiers, f.to_string(), Some(f.remediation))
        }
        Err(e) => check(name, false, tiers, e.to_string(), None),
    }
}

//! What a spawn reports: the protections applied, named degradations, setup failures with their
//! remediation, and the final result (exit code or signal, OOM / timeout / output limit, egress).

use std::fmt;
use std::time::Duration;

use dgc_types::sandbox::{DegradedMode, SandboxTier};
use serde::{Deserialize, Serialize};

use crate::proxy::EgressSummary;

/// The protections a sandbox is built from. Every setup failure and every degradation names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtectionKind {
    UserNamespace,
    PidNamespace,
    MountNamespace,
    NetworkNamespace,
    IpcNamespace,
    UtsNamespace,
    CgroupNamespace,
    ReadOnlyRoot,
    PrivateProc,
    MinimalDev,
    PrivateTmp,
    HiddenPaths,
    WritablePaths,
    ProtectedPaths,
    UnprivilegedUser,
    Capabilities,
    NoNewPrivs,
    Landlock,
    Seccomp,
    Cgroups,
    Rlimits,
    ScrubbedEnvironment,
    EgressProxy,
    Gvisor,
    /// The re-exec'd child itself (could not be started or talked to).
    Supervisor,
    /// The working directory of the workload.
    WorkingDirectory,
}

impl ProtectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserNamespace => "user namespace",
            Self::PidNamespace => "pid namespace",
            Self::MountNamespace => "mount namespace",
            Self::NetworkNamespace => "network namespace",
            Self::IpcNamespace => "ipc namespace",
            Self::UtsNamespace => "uts namespace",
            Self::CgroupNamespace => "cgroup namespace",
            Self::ReadOnlyRoot => "read-only root",
            Self::PrivateProc => "private /proc",
            Self::MinimalDev => "minimal /dev",
            Self::PrivateTmp => "private /tmp",
            Self::HiddenPaths => "hidden paths",
            Self::WritablePaths => "writable directories",
            Self::ProtectedPaths => "protected paths",
            Self::UnprivilegedUser => "unprivileged user",
            Self::Capabilities => "capability drop",
            Self::NoNewPrivs => "no_new_privs",
            Self::Landlock => "landlock",
            Self::Seccomp => "seccomp",
            Self::Cgroups => "cgroup limits",
            Self::Rlimits => "rlimits",
            Self::ScrubbedEnvironment => "scrubbed environment",
            Self::EgressProxy => "egress proxy",
            Self::Gvisor => "gVisor",
            Self::Supervisor => "sandbox supervisor",
            Self::WorkingDirectory => "working directory",
        }
    }
}

impl fmt::Display for ProtectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One protection that was applied, with what exactly it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protection {
    pub kind: ProtectionKind,
    pub detail: String,
}

impl Protection {
    pub fn new(kind: ProtectionKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

/// A protection that was missing and skipped because the profile opted into `mode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Degradation {
    pub mode: DegradedMode,
    pub missing: ProtectionKind,
    pub reason: String,
}

/// Why a protection could not be applied, and how to enable it on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupFailure {
    pub protection: ProtectionKind,
    pub message: String,
    pub remediation: String,
}

impl SetupFailure {
    pub fn new(protection: ProtectionKind, message: impl Into<String>) -> Self {
        let message = message.into();
        let remediation = remediation(protection, &message);
        Self {
            protection,
            message,
            remediation,
        }
    }

    pub fn with_remediation(mut self, remediation: impl Into<String>) -> Self {
        self.remediation = remediation.into();
        self
    }
}

impl fmt::Display for SetupFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} could not be applied: {}",
            self.protection, self.message
        )?;
        if !self.remediation.is_empty() {
            write!(f, " (fix: {})", self.remediation)?;
        }
        Ok(())
    }
}

/// The host-specific fix for a protection that failed to apply.
pub fn remediation(kind: ProtectionKind, message: &str) -> String {
    use ProtectionKind as K;
    match kind {
        K::UserNamespace => "enable unprivileged user namespaces: `sysctl -w user.max_user_namespaces=15000` \
             (and `kernel.unprivileged_userns_clone=1` on Debian kernels that have it); on Ubuntu 23.10+ \
             AppArmor blocks them: `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` or install an \
             AppArmor profile for dgc with `userns,`; inside a container, run it with seccomp/AppArmor \
             profiles that allow clone(CLONE_NEWUSER)"
            .into(),
        K::PidNamespace | K::MountNamespace | K::NetworkNamespace | K::IpcNamespace | K::UtsNamespace
        | K::CgroupNamespace => format!(
            "the kernel must support {kind} (CONFIG_{}_NS) and allow creating it inside a user namespace",
            match kind {
                K::PidNamespace => "PID",
                K::NetworkNamespace => "NET",
                K::IpcNamespace => "IPC",
                K::UtsNamespace => "UTS",
                K::CgroupNamespace => "CGROUP",
                _ => "USER",
            }
        ),
        K::PrivateProc => "mounting a fresh /proc needs an unobstructed /proc on the host: if dgc runs in a \
             container, give it an unmasked /proc (e.g. docker --security-opt systempaths=unconfined)"
            .into(),
        K::ReadOnlyRoot | K::MinimalDev | K::PrivateTmp | K::HiddenPaths => {
            "needs Linux ≥ 5.12 (open_tree/move_mount/mount_setattr) and mounts inside user namespaces".into()
        }
        K::WritablePaths | K::ProtectedPaths => {
            if message.contains("symlink") || message.contains("ELOOP") {
                "pass the fully resolved directory (no symlinks anywhere in the path)".into()
            } else if message.contains("not writable by") {
                "make the directory writable by the sandbox's host uid (see the message) or run dgc as \
                 the directory's owner"
                    .into()
            } else {
                "create the directory first and pass its absolute path".into()
            }
        }
        K::UnprivilegedUser | K::Capabilities | K::NoNewPrivs => {
            "the kernel refused a credential change; check for an LSM policy confining dgc".into()
        }
        K::Landlock => "boot a kernel ≥ 5.13 with landlock in the LSM list (`lsm=landlock,...` on the kernel \
             command line, CONFIG_SECURITY_LANDLOCK=y), or opt into the `no-landlock` degraded mode"
            .into(),
        K::Seccomp => "the kernel needs CONFIG_SECCOMP_FILTER=y".into(),
        K::Cgroups => "mount the cgroup hierarchies with the memory, pids and cpu controllers (v1) or a \
             delegated cgroup v2 subtree with those controllers enabled (systemd: Delegate=yes), or opt into \
             the `no-cgroups` degraded mode"
            .into(),
        K::Rlimits => "raise the hard limits of the dgc process (systemd LimitNOFILE=, LimitFSIZE=)".into(),
        K::ScrubbedEnvironment => String::new(),
        K::EgressProxy => "the egress proxy needs a loopback interface in the sandbox's network namespace".into(),
        K::Gvisor => "install gVisor: `apt-get install -y runsc`".into(),
        K::Supervisor => "the sandbox child could not be started: check that the dgc executable is \
             readable and executable"
            .into(),
        K::WorkingDirectory => "choose a working directory that exists inside the sandbox".into(),
    }
}

/// How the workload itself ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitStatus {
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    /// The sandbox was killed before its init could report the workload's status.
    Killed,
}

/// The single most important reason a run ended, for messages and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Termination {
    Exited { code: i32 },
    Signaled { signal: i32 },
    OutOfMemory,
    TimedOut,
    OutputLimit,
    Cancelled,
}

/// Why DGC killed a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KillReason {
    Timeout,
    OutputLimit,
    Cancelled,
}

/// The outcome of one sandboxed run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxResult {
    pub id: String,
    pub tier: SandboxTier,
    pub status: ExitStatus,
    /// The kernel's OOM killer killed a process of this sandbox (its cgroup counted an OOM kill).
    pub oom_killed: bool,
    pub timed_out: bool,
    pub output_limited: bool,
    pub cancelled: bool,
    /// A fork failed because the pids limit was reached.
    pub pids_limited: bool,
    pub protections: Vec<Protection>,
    pub degraded: Vec<Degradation>,
    pub egress: EgressSummary,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    #[serde(with = "duration_ms")]
    pub duration: Duration,
    /// Set when the command could not be executed (not found, not executable).
    pub exec_error: Option<String>,
}

impl SandboxResult {
    /// The main reason the run ended. DGC's own kills come first, then OOM, then the status.
    pub fn termination(&self) -> Termination {
        if self.timed_out {
            return Termination::TimedOut;
        }
        if self.output_limited {
            return Termination::OutputLimit;
        }
        if self.cancelled {
            return Termination::Cancelled;
        }
        let killed_by_oom = self.oom_killed
            && matches!(
                self.status,
                ExitStatus::Signaled { signal: 9 } | ExitStatus::Killed
            );
        if killed_by_oom {
            return Termination::OutOfMemory;
        }
        match self.status {
            ExitStatus::Exited { code } => Termination::Exited { code },
            ExitStatus::Signaled { signal } => Termination::Signaled { signal },
            ExitStatus::Killed if self.oom_killed => Termination::OutOfMemory,
            ExitStatus::Killed => Termination::Signaled {
                signal: libc::SIGKILL,
            },
        }
    }

    pub fn success(&self) -> bool {
        self.termination() == Termination::Exited { code: 0 }
    }

    /// The exit code a shell would report: the workload's code, or 128 + signal.
    pub fn shell_code(&self) -> u8 {
        match self.status {
            ExitStatus::Exited { code } => (code & 0xff) as u8,
            ExitStatus::Signaled { signal } => (128 + signal).clamp(0, 255) as u8,
            ExitStatus::Killed => 128 + libc::SIGKILL as u8,
        }
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: ExitStatus) -> SandboxResult {
        SandboxResult {
            id: "t".into(),
            tier: SandboxTier::Process,
            status,
            oom_killed: false,
            timed_out: false,
            output_limited: false,
            cancelled: false,
            pids_limited: false,
            protections: vec![],
            degraded: vec![],
            egress: EgressSummary::default(),
            stdout_bytes: 0,
            stderr_bytes: 0,
            duration: Duration::ZERO,
            exec_error: None,
        }
    }

    #[test]
    fn termination_precedence() {
        let cases: Vec<(SandboxResult, Termination, u8)> = vec![
            (
                result(ExitStatus::Exited { code: 3 }),
                Termination::Exited { code: 3 },
                3,
            ),
            (
                result(ExitStatus::Signaled { signal: 15 }),
                Termination::Signaled { signal: 15 },
                143,
            ),
            (
                SandboxResult {
                    oom_killed: true,
                    ..result(ExitStatus::Signaled { signal: 9 })
                },
                Termination::OutOfMemory,
                137,
            ),
            // An OOM kill of some child does not hide the workload's own clean exit.
            (
                SandboxResult {
                    oom_killed: true,
                    ..result(ExitStatus::Exited { code: 0 })
                },
                Termination::Exited { code: 0 },
                0,
            ),
            (
                SandboxResult {
                    timed_out: true,
                    oom_killed: true,
                    ..result(ExitStatus::Killed)
                },
                Termination::TimedOut,
                137,
            ),
            (
                SandboxResult {
                    output_limited: true,
                    ..result(ExitStatus::Killed)
                },
                Termination::OutputLimit,
                137,
            ),
            (
                SandboxResult {
                    cancelled: true,
                    ..result(ExitStatus::Killed)
                },
                Termination::Cancelled,
                137,
            ),
        ];
        for (r, want, code) in cases {
            assert_eq!(r.termination(), want, "{r:?}");
            assert_eq!(r.shell_code(), code, "{r:?}");
        }
    }

    #[test]
    fn every_failure_has_a_remediation() {
        use ProtectionKind as K;
        for k in [
            K::UserNamespace,
            K::PidNamespace,
            K::PrivateProc,
            K::ReadOnlyRoot,
            K::WritablePaths,
            K::Landlock,
            K::Seccomp,
            K::Cgroups,
            K::Gvisor,
            K::Supervisor,
        ] {
            let f = SetupFailure::new(k, "EPERM");
            assert!(!f.remediation.is_empty(), "{k:?}");
            assert!(f.to_string().contains(k.as_str()));
        }
        assert!(
            SetupFailure::new(K::Gvisor, "missing")
                .remediation
                .contains("apt-get install -y runsc")
        );
    }
}

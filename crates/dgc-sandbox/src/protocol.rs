//! The messages DGC and its re-exec'd sandbox child exchange over one `SOCK_SEQPACKET` socket
//! (descriptor 3 in the child): the setup plan going in, setup results, the loopback listener
//! for the egress proxy (passed with `SCM_RIGHTS`) and the workload's exit status coming out.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::report::{Degradation, Protection, SetupFailure};

/// Descriptor number of the control socket in the child.
pub const CONTROL_FD: i32 = 3;
/// Hidden `argv[1]` that turns the `dgc` binary (or the test harness) into the sandbox child.
pub const CHILD_ARG: &str = "__dgc-sandbox-child";
/// Largest message on the control socket (the plan is bounded well below this by validation).
pub const MAX_MESSAGE: usize = 192 * 1024;
/// Port of the egress proxy on the sandbox's loopback interface.
pub const PROXY_PORT: u16 = 3128;
/// Uid and gid the workload has inside its user namespace.
pub const SANDBOX_ID: u32 = 1000;
/// Hostname inside the UTS namespace.
pub const HOSTNAME: &str = "dgc-sandbox";

/// Everything the child needs to build the sandbox, fully resolved by the parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildPlan {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Host uid/gid the sandbox user maps to.
    pub host_uid: u32,
    pub host_gid: u32,
    /// The child may call setgroups (the parent is privileged enough to allow it).
    pub privileged_map: bool,
    pub writable: Vec<PathBuf>,
    pub protected: Vec<PathBuf>,
    pub hidden: Vec<PathBuf>,
    pub tmp_bytes: u64,
    pub file_size: u64,
    pub open_files: u64,
    /// `cgroup.procs` files the supervisor moves the sandbox init into before the workload
    /// starts (empty when the supervisor already runs inside the sandbox's cgroup).
    pub cgroup_procs: Vec<PathBuf>,
    /// Run without landlock when the kernel lacks it (named degraded mode).
    pub allow_no_landlock: bool,
    /// Open an in-namespace listener for the egress proxy.
    pub proxy: bool,
    /// The workload may create AF_INET/AF_INET6 sockets.
    pub inet: bool,
    /// Milliseconds after which the child kills the workload itself (backstop for the parent's
    /// own timer).
    pub deadline_ms: u64,
}

/// Messages from the child (supervisor, sandbox init or workload) to DGC.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChildMessage {
    /// The sandbox init exists (its pidfd rides along with this message).
    Spawned {
        pid: i32,
    },
    /// The proxy listener (passed with this message) is bound on the sandbox loopback.
    Listener,
    /// Every protection is in place; the workload is being started.
    Ready {
        protections: Vec<Protection>,
        degraded: Vec<Degradation>,
    },
    /// A protection could not be applied; nothing ran.
    SetupFailed(SetupFailure),
    /// `execve` of the workload failed.
    ExecFailed {
        errno: i32,
        message: String,
    },
    /// The workload ended.
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    /// The child's own backstop deadline passed and it killed the workload.
    TimedOut,
    /// A pre-spawned supervisor joined its cgroup and waits for a plan.
    Joined,
}

/// Messages from DGC to the child.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ParentMessage {
    Plan(Box<ChildPlan>),
    /// Sent to a pre-spawned (warm) supervisor: join these cgroups, report `Joined`, then wait
    /// for the plan.
    Prepare {
        cgroup_procs: Vec<PathBuf>,
    },
}

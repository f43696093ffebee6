//! Sandboxing for everything an agent runs: the process tier (user/pid/mount/net/ipc/uts/cgroup
//! namespaces, pivot_root into a read-only view, landlock, seccomp, cgroup v1/v2 limits, rlimits,
//! no capabilities, no_new_privs), the gVisor tier (`runsc`), the egress proxy that is the only
//! way out of a sandbox's network namespace, and the `dgc sandbox run` / `dgc doctor` commands.
//!
//! The sandbox fails closed: a protection that cannot be applied refuses the spawn with an error
//! naming it and the fix, unless the profile opted into a named degraded mode, which the result
//! then records. See `docs/sandbox.md` for the design and threat model.
//!
//! Entry points:
//! - [`enter_child_if_requested`] — first statement of `main` in any binary used as the re-exec
//!   target (the `dgc` binary, the test harness);
//! - [`Sandbox::spawn`] — the library API used by the runtime;
//! - [`cli::run`] and [`cli::doctor`] — the CLI commands.

pub mod cgroup;
mod child;
pub mod cli;
pub mod doctor;
mod gvisor;
mod protocol;
pub mod proxy;
pub mod report;
#[doc(hidden)]
pub mod seccomp;
mod spawn;
mod sys;

pub use child::enter_child_if_requested;
pub use dgc_types::sandbox::{
    DegradedMode, EnvPolicy, NetworkPolicy, SandboxLimits, SandboxProfile, SandboxTier,
};
pub use proxy::{
    EgressDecision, EgressReason, EgressSummary, ProxyOptions, StaticResolver, SystemResolver,
};
pub use report::{
    Degradation, ExitStatus, Protection, ProtectionKind, SandboxResult, SetupFailure, Termination,
};
pub use spawn::{
    DEFAULT_HOST_ID, OutputChunk, OutputStream, Sandbox, SandboxChild, SandboxCommand,
    SandboxConfig, SandboxError, SandboxOutput, SandboxStdin, StdinMode,
};

/// Probes for the test harness (attacks run inside a sandbox). Not part of the API.
#[doc(hidden)]
pub mod probes;

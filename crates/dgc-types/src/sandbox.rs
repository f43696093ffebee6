//! Sandbox profile wire types: the tier an action runs in and (owned by the sandbox work) the
//! validated profile an agent config or a CLI invocation describes.

use serde::{Deserialize, Serialize};

/// Isolation tiers, weakest first so that `Ord` means "at least as strong".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
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

//! Domain and wire types shared by every DGC crate: ids, capabilities, egress patterns, sandbox
//! profiles, API shapes and error codes. Serde only — no I/O, no async runtime.
#![forbid(unsafe_code)]

pub mod capability;
pub mod egress;
pub mod sandbox;

pub use capability::{Capability, CapabilityError, CapabilitySet};
pub use egress::{EgressAllowlist, Host, HostError, HostPattern, normalize_host};
pub use sandbox::SandboxTier;

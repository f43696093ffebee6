//! Domain and wire types shared by every DGC crate: ids, capabilities, egress patterns, sandbox
//! profiles, API shapes and error codes. Serde only — no I/O, no async runtime.
#![forbid(unsafe_code)]

pub mod agent;
pub mod capability;
pub mod duration;
pub mod egress;
pub mod error;
pub mod ids;
pub mod key;
pub mod memory;
pub mod page;
pub mod sandbox;
pub mod size;
pub mod validate;

pub use capability::{Capability, CapabilityError, CapabilitySet};
pub use duration::{DurationSpec, parse_duration};
pub use egress::{EgressAllowlist, Host, HostError, HostPattern, normalize_host};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use ids::{AgentId, IdError, KeyId, MemoryId, TaskId};
pub use page::Page;
pub use sandbox::SandboxTier;
pub use size::{ByteSize, parse_size};
pub use validate::FieldError;

/// The current time at the millisecond precision every store keeps, so a value returned at
/// creation equals the value read back later.
pub fn now() -> time::OffsetDateTime {
    let t = time::OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t)
}

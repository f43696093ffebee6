//! The engine: where an agent's action becomes a gated, sandboxed, attested operation. The
//! pipeline authenticate → gates → sandbox → audit → store reads top to bottom in [`call`];
//! around it live the data directory's bootstrap and secrets at rest, the audit identity, and the
//! tool registry. No HTTP here: `dgc-server` maps this crate's errors to statuses.
#![forbid(unsafe_code)]

pub mod audit;
pub mod bootstrap;
pub mod crypto;
pub mod keys;

pub use bootstrap::{Instance, bootstrap};
pub use crypto::MasterKey;

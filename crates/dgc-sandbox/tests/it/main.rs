//! Integration tests of dgc-sandbox: the escape suite (each test runs a real attack inside a
//! sandbox and passes only if the attack fails and the host is unchanged), limits, the egress
//! proxy, the library API, the CLI and the gVisor tier. They need root (as on CI: namespaces,
//! cgroup v1, landlock ABI 7) and run in parallel under `cargo nextest`.
// Helpers outside #[test] functions unwrap like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod cli;
mod common;
mod egress;
mod escape_fs;
mod escape_proc;
mod escape_syscalls;
mod fail_closed;
mod gvisor;
mod limits;

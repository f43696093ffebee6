//! Integration tests of dgc-audit, in one binary: shared Merkle vectors, whole-log
//! verification and tampering, bundles, witnesses, and interoperability with Python tools.

// `cfg(test)` marks the helpers below as test code for clippy's unwrap/expect lints.
#[cfg(test)]
mod bundle;
#[cfg(test)]
mod common;
#[cfg(test)]
mod interop;
#[cfg(test)]
mod log_verify;
#[cfg(test)]
mod vectors;
#[cfg(test)]
mod witness;

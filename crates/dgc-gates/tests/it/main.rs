//! Integration tests for `dgc-gates`, one binary: pipeline semantics, policies, the CLI, the
//! labelled corpus, robustness and the fuzz-corpus replay.
// Helpers outside #[test] fns panic on broken fixtures, which is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod common;
mod corpus;
mod fuzz_replay;
mod pipeline;
mod policy;
mod robustness;

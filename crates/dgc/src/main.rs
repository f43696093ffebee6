//! dgc binary
#![forbid(unsafe_code)]
fn main() {}

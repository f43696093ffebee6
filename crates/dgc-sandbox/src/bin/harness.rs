//! Test and benchmark harness: the re-exec target for the crate's integration tests and
//! benchmarks (its `main` enters the sandbox child first, like the `dgc` binary's), the
//! `run`/`doctor` CLI, and `probe` attacks that tests run inside sandboxes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "dgc-sandbox-harness")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at startup
enum Cmd {
    /// `dgc sandbox run`
    Run(dgc_sandbox::cli::RunArgs),
    /// `dgc doctor`
    Doctor(dgc_sandbox::cli::DoctorArgs),
}

fn main() -> ExitCode {
    dgc_sandbox::enter_child_if_requested();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("probe") {
        return dgc_sandbox::probes::main(&args[2..]);
    }
    match Cli::parse().cmd {
        Cmd::Run(a) => dgc_sandbox::cli::run(a),
        Cmd::Doctor(a) => dgc_sandbox::cli::doctor(a),
    }
}

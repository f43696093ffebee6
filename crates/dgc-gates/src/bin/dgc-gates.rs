//! Standalone `dgc-gates eval|test` for operators and CI, the same code the `dgc gates` subcommand runs.

use clap::Parser;

/// Evaluate actions against DGC's gate pipeline and test gate policies.
#[derive(Debug, Parser)]
#[command(name = "dgc-gates", version)]
struct Args {
    #[command(subcommand)]
    cmd: dgc_gates::cli::GatesCmd,
}

fn main() -> std::process::ExitCode {
    dgc_gates::cli::run(Args::parse().cmd)
}

//! The `dgc` binary: parse arguments, set up logging, run the chosen command.
#![forbid(unsafe_code)]

mod classifier;
mod cli;
mod client;
mod cmd;
mod config;
mod logging;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Must come first: a re-exec'd sandbox child sets itself up single-threaded, before any
    // runtime or thread exists, and never returns from here.
    dgc_sandbox::enter_child_if_requested();
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        cli::Command::Serve(args) => {
            let cfg = config::ServeConfig::load(&args)?;
            let _log = logging::init(cfg.log_format, &cfg.log_level)?;
            runtime()?.block_on(serve::serve(cfg))
        }
        cli::Command::Sandbox(cli::SandboxCmd::Run(args)) => Ok(dgc_sandbox::cli::run(args)),
        cli::Command::Doctor(args) => Ok(dgc_sandbox::cli::doctor(args)),
        cli::Command::Gates(cmd) => {
            let code = dgc_gates::cli::run_with_classifier(
                cmd,
                &mut std::io::stdin().lock(),
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
                &mut classifier::classify_blocking,
            );
            Ok(ExitCode::from(code))
        }
        cli::Command::Auth(cmd) => client_cmd(cli.client, |c| Box::pin(cmd::auth::run(c, cmd))),
        cli::Command::Agent(cmd) => client_cmd(cli.client, |c| Box::pin(cmd::agent::run(c, cmd))),
        cli::Command::Memory(cmd) => client_cmd(cli.client, |c| Box::pin(cmd::memory::run(c, cmd))),
        cli::Command::Audit(cli::AuditCmd::VerifyBundle { bundle, vkey }) => {
            cmd::audit::verify_bundle(&bundle, &vkey)
        }
        cli::Command::Audit(cmd) => client_cmd(cli.client, |c| Box::pin(cmd::audit::run(c, cmd))),
    }
}

type CmdFuture = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<ExitCode>>>>;

fn client_cmd(
    opts: cli::ClientOpts,
    f: impl FnOnce(client::Client) -> CmdFuture,
) -> anyhow::Result<ExitCode> {
    let _log = logging::init(config::LogFormat::Text, "warn")?;
    let client = client::Client::new(&opts)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f(client))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("dgc-worker")
        .build()?)
}

//! `kv-example`: a local three-node cluster (no arguments), one node of a deployment
//! (`node`), the load generator (`bench`), or recovery from a lost quorum
//! (`recover`). See the crate docs and the README.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use kv_example::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr; RUST_LOG overrides the level (for example RUST_LOG=debug).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        None => kv_example::cluster::run(cli.cluster),
        Some(Command::Cluster(args)) => kv_example::cluster::run(args),
        Some(Command::Node(args)) => kv_example::node::run(*args).map_err(|e| e as _),
        Some(Command::Bench(args)) => kv_example::bench::run(args),
        Some(Command::Recover(args)) => kv_example::recover::run(args).map_err(|e| e as _),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv-example: {e}");
            ExitCode::FAILURE
        }
    }
}

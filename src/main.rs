//! The `rask` command line.

mod demo;
mod microbench;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Parallel and distributed computing for Rust.
#[derive(Parser)]
#[command(name = "rask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the showcase workload on an embedded local cluster and check its results.
    Demo(demo::Args),
    /// Measure scheduling throughput (map + gather, and a tree reduction).
    Microbench(microbench::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RASK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Microbench(args) => microbench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

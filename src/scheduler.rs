//! `rask scheduler`: runs a scheduler server until SIGINT or SIGTERM.

use crate::security_args::SecurityArgs;
use anyhow::{Context, Result};
use rask::server::{SchedulerOptions, SchedulerServer};
use std::path::PathBuf;

/// Options of `rask scheduler`.
#[derive(clap::Args)]
pub struct Args {
    /// Interface to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port for workers and clients (0: any free port).
    #[arg(long, default_value_t = 8786)]
    port: u16,
    /// Port for HTTP: /metrics and /api/v1/... (0: any free port).
    #[arg(long, default_value_t = 8787)]
    dashboard_port: u16,
    /// Serve no HTTP at all.
    #[arg(long, conflicts_with = "dashboard_port")]
    no_dashboard: bool,
    /// Require the token for /metrics too (the /api/ endpoints always
    /// require it when the cluster has one).
    #[arg(long)]
    protect_metrics: bool,
    /// Write the scheduler's address here (JSON with "address").
    #[arg(long, value_name = "PATH")]
    scheduler_file: Option<PathBuf>,
    #[command(flatten)]
    security: SecurityArgs,
}

pub fn run(args: Args) -> Result<()> {
    let security = args.security.security()?;
    let args_token = security.token.clone();
    let options = SchedulerOptions {
        host: args.host,
        port: args.port,
        dashboard_port: (!args.no_dashboard).then_some(args.dashboard_port),
        scheduler_file: args.scheduler_file,
        security,
        protect_metrics: args.protect_metrics,
        ..Default::default()
    };
    let server = SchedulerServer::start(options).context("starting the scheduler")?;
    eprintln!("rask scheduler at {}", server.address());
    if let Some(url) = server.dashboard_url() {
        let token = args_token.as_deref();
        eprintln!(
            "dashboard at {}",
            rask::diagnostics::dashboard_link(url, token)
        );
    }
    crate::signals::wait_for_termination()?;
    eprintln!("shutting down");
    server.shutdown();
    Ok(())
}

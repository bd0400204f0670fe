//! `rask worker ADDR`: runs a worker process that joins a scheduler.

use crate::security_args::SecurityArgs;
use anyhow::{bail, Context, Result};
use rask::comm::Address;
use rask::worker::memory::{parse_memory_limit, Thresholds};
use rask::worker::process::{run_worker, WorkerExit, WorkerOptions};
use std::path::PathBuf;

/// Exit code of a worker that passed its memory limit's terminate threshold.
pub const EXIT_MEMORY: u8 = 75;

/// Options of `rask worker`.
#[derive(clap::Args)]
pub struct Args {
    /// The scheduler's address (`tcp://host:port`, `tls://host:port`).
    #[arg(required_unless_present = "scheduler_file")]
    address: Option<String>,
    /// Read the scheduler's address from this scheduler file.
    #[arg(long, value_name = "PATH", conflicts_with = "address")]
    scheduler_file: Option<PathBuf>,
    /// Threads running tasks (default: one per core).
    #[arg(long)]
    nthreads: Option<u32>,
    /// Memory limit: 4GiB, 500MB, 0.5 (of this machine), auto, or 0 for none.
    #[arg(long, default_value = "auto")]
    memory_limit: String,
    /// The worker's name (default: host-pid).
    #[arg(long)]
    name: Option<String>,
    /// Where spilled data goes.
    #[arg(long, value_name = "DIR")]
    local_directory: Option<PathBuf>,
    /// Abstract resources, e.g. `GPU=1` or `GPU=2,MEMORY=10e9`.
    #[arg(long, value_name = "NAME=AMOUNT,...")]
    resources: Option<String>,
    /// Address to serve data on.
    #[arg(long, default_value = "127.0.0.1", conflicts_with = "interface")]
    host: String,
    /// Serve data on this network interface's IPv4 address (e.g. `ib0`).
    #[arg(long, value_name = "NAME")]
    interface: Option<String>,
    /// Retire gracefully after this many seconds (a batch job's walltime less
    /// a margin); tasks that would outlive it go to other workers.
    #[arg(long, value_name = "SECONDS")]
    lifetime: Option<f64>,
    /// Keep trying to reach the scheduler at start-up for this many seconds.
    #[arg(long, value_name = "SECONDS")]
    death_timeout: Option<f64>,
    /// Run the worker in this process, without a nanny process that restarts it
    /// when it dies (over its memory limit, or killed).
    #[arg(long)]
    no_nanny: bool,
    /// How many times in a row the nanny restarts a worker that dies within a
    /// minute of starting before it gives up.
    #[arg(long, default_value_t = 10, value_name = "N")]
    max_restarts: u32,
    /// Refuse op plugins: run only the ops compiled into this binary.
    #[arg(long)]
    no_plugins: bool,
    #[command(flatten)]
    security: SecurityArgs,
}

pub fn run(args: Args) -> Result<u8> {
    let memory_limit =
        parse_memory_limit(&args.memory_limit).with_context(|| "in --memory-limit".to_string())?;
    tracing::debug!(allocator = crate::allocator::name(), "worker allocator");
    let resources = match &args.resources {
        Some(text) => parse_resources(text)?,
        None => Vec::new(),
    };
    let nthreads = args
        .nthreads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    if nthreads == 0 {
        bail!("--nthreads must be at least 1");
    }
    let seconds = |flag: &str, value: Option<f64>| -> Result<Option<std::time::Duration>> {
        match value {
            Some(s) => match std::time::Duration::try_from_secs_f64(s) {
                Ok(d) if s > 0.0 => Ok(Some(d)),
                _ => bail!("{flag} must be a positive number of seconds, not {s}"),
            },
            None => Ok(None),
        }
    };
    let lifetime = seconds("--lifetime", args.lifetime)?;
    let death_timeout = seconds("--death-timeout", args.death_timeout)?;
    // A scheduler started beside this worker writes its file once it listens.
    // The scheduler file's token serves when no --token (or RASK_TOKEN) is given.
    let (scheduler, file_token): (Address, _) = match (&args.address, &args.scheduler_file) {
        (Some(address), _) => (address.parse()?, None),
        (None, Some(file)) => {
            let file = rask::client::wait_for_scheduler_file(
                file,
                death_timeout.unwrap_or(rask::worker::process::DEFAULT_RECONNECT),
            )?;
            (file.address, file.token)
        }
        (None, None) => bail!("give the scheduler's address or --scheduler-file"),
    };
    let mut security = args.security.security()?;
    if security.token.is_none() {
        security = security.with_token(file_token);
    }
    let host = match &args.interface {
        Some(name) => crate::interface::ipv4_of(name)?.to_string(),
        None => args.host,
    };
    let options = WorkerOptions {
        scheduler,
        nthreads,
        memory_limit,
        thresholds: Thresholds::default(),
        name: args.name,
        local_directory: args.local_directory.unwrap_or_else(std::env::temp_dir),
        resources,
        host,
        security,
        lifetime,
        death_timeout,
        no_plugins: args.no_plugins,
    };
    if !args.no_nanny {
        // Same arguments (already checked above), worker in a child process.
        let mut worker_args: Vec<_> = std::env::args_os().skip(1).collect();
        worker_args.push("--no-nanny".into());
        return crate::nanny::supervise(worker_args, args.max_restarts);
    }
    match run_worker(options).context("running the worker")? {
        WorkerExit::Closed => Ok(0),
        WorkerExit::SchedulerLost(why) => bail!("lost the scheduler: {why}"),
        WorkerExit::MemoryExceeded { rss, limit } => {
            eprintln!(
                "error: the worker used {rss} bytes, over 95% of its {limit}-byte memory limit; \
                 it stopped to protect the machine (its tasks are rescheduled elsewhere)"
            );
            Ok(EXIT_MEMORY)
        }
    }
}

/// Parses `GPU=1,MEMORY=10e9`.
fn parse_resources(text: &str) -> Result<Vec<(String, f64)>> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let (name, amount) = part
                .split_once('=')
                .with_context(|| format!("bad --resources entry {part:?}: expected NAME=AMOUNT"))?;
            let amount: f64 = amount.trim().parse().with_context(|| {
                format!("bad --resources entry {part:?}: {amount:?} is not a number")
            })?;
            if name.trim().is_empty() || !amount.is_finite() || amount < 0.0 {
                bail!("bad --resources entry {part:?}: need a name and a non-negative amount");
            }
            Ok((name.trim().to_string(), amount))
        })
        .collect()
}

//! A worker process: joins a scheduler over TCP and serves it in
//! [sessions](super::session), one per connection. When the scheduler goes
//! away the worker does not exit: it drops what it held (the scheduler counts
//! it as lost) and keeps trying to join again for its death timeout, so a
//! scheduler restarted at the same address gets its workers back.
//!
//! SIGTERM or SIGINT retire the worker gracefully: the scheduler copies the data
//! only it holds to other workers and then tells it to close.

use super::allocator::tune_allocator;
use super::memory::Thresholds;
use super::session::{run_session, SessionEnd, Stop};
use crate::comm::address::Address;
use crate::comm::connection::{connect_as, CommError, Connection};
use crate::comm::protocol::{Role, WorkerInfo};
use crate::comm::security::Security;
use std::path::PathBuf;
use std::time::Duration;

/// How to run a worker process.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The scheduler's address.
    pub scheduler: Address,
    /// Threads running tasks.
    pub nthreads: u32,
    /// Memory limit in bytes (0: none).
    pub memory_limit: u64,
    /// Memory thresholds.
    pub thresholds: Thresholds,
    /// The worker's name (default: `host-pid`).
    pub name: Option<String>,
    /// Where spilled data goes (a subdirectory per worker).
    pub local_directory: PathBuf,
    /// Abstract resources offered, e.g. `("GPU", 1.0)`.
    pub resources: Vec<(String, f64)>,
    /// Interface to serve data on.
    pub host: String,
    /// TLS and token.
    pub security: Security,
    /// Retire gracefully after this long (Dask's `--lifetime`; a batch job's
    /// walltime less a margin). Tasks that would outlive it go elsewhere.
    pub lifetime: Option<Duration>,
    /// How long to keep trying to reach the scheduler (Dask's `--death-timeout`):
    /// at start-up (`None` tries once), and after losing it (`None` means
    /// [`DEFAULT_RECONNECT`]).
    pub death_timeout: Option<Duration>,
    /// Refuse plugins: run only the ops compiled into this binary.
    pub no_plugins: bool,
}

/// Why a worker process stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerExit {
    /// The scheduler told it to close (after retirement), or it was asked to
    /// stop while it had no scheduler.
    Closed,
    /// The scheduler went away and did not come back within the death timeout.
    SchedulerLost(String),
    /// It passed the terminate threshold of its memory limit.
    MemoryExceeded {
        /// Resident bytes.
        rss: u64,
        /// The limit.
        limit: u64,
    },
}

/// How long a worker that lost its scheduler tries to join it again, when no
/// death timeout is given.
pub const DEFAULT_RECONNECT: Duration = Duration::from_secs(60);
/// How long the runtime waits for blocking work at exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs a worker process until it is closed, loses its scheduler for longer
/// than its death timeout, or runs out of memory.
pub fn run_worker(options: WorkerOptions) -> Result<WorkerExit, CommError> {
    tune_allocator();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rask-worker-io")
        .enable_all()
        .build()
        .map_err(CommError::io("starting the I/O runtime"))?;
    let exit = runtime.block_on(serve(options));
    // Blocking work still under way (a fetch, a delivery) is abandoned.
    runtime.shutdown_timeout(SHUTDOWN_TIMEOUT);
    exit
}

async fn serve(options: WorkerOptions) -> Result<WorkerExit, CommError> {
    let mut stop = Stop::install(options.lifetime)?;
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    let mut session = 0u32;
    let mut lost: Option<String> = None;
    loop {
        // Each session serves data on a port of its own, announced in its Hello.
        let listener = tokio::net::TcpListener::bind(format!("{}:0", options.host))
            .await
            .map_err(CommError::io(format!("binding {}:0", options.host)))?;
        let port = listener
            .local_addr()
            .map_err(CommError::io("reading the bound address"))?
            .port();
        let data_address = Address {
            host: options.host.clone(),
            port,
            tls: options.security.has_tls(),
        };
        let role = Role::Worker(WorkerInfo {
            name: name.clone(),
            nthreads: options.nthreads,
            resources: options.resources.clone(),
            data_address: data_address.to_string(),
            memory_limit: options.memory_limit,
            pid: std::process::id(),
            lifetime: stop.lifetime_left().map(|l| l.as_secs_f64()),
            plugins: !options.no_plugins,
        });
        let (id, connection) = match &lost {
            None => connect_patiently(&options, role, options.death_timeout).await?,
            Some(why) => {
                let window = options.death_timeout.unwrap_or(DEFAULT_RECONNECT);
                tokio::select! {
                    joined = connect_patiently(&options, role, Some(window)) => match joined {
                        Ok(joined) => joined,
                        Err(error) => {
                            return Ok(WorkerExit::SchedulerLost(format!(
                                "{why}; no scheduler at {} for {} s: {error}",
                                options.scheduler,
                                window.as_secs_f64()
                            )))
                        }
                    },
                    why = stop.requested() => {
                        tracing::info!(%why, "stopping while the scheduler is away");
                        return Ok(WorkerExit::Closed);
                    }
                }
            }
        };
        if lost.is_some() {
            tracing::info!(scheduler = %options.scheduler, "joined the scheduler again");
        }
        session += 1;
        let end = run_session(
            &options,
            &name,
            session,
            id,
            connection,
            listener,
            data_address,
            &mut stop,
        )
        .await?;
        match end {
            SessionEnd::Exit(exit) => return Ok(exit),
            SessionEnd::SchedulerLost(why) => {
                let window = options.death_timeout.unwrap_or(DEFAULT_RECONNECT);
                tracing::warn!(scheduler = %options.scheduler, %why,
                    "lost the scheduler; trying to join it again for {window:?}");
                lost = Some(why);
            }
        }
    }
}

/// Connects to the scheduler, retrying every second until `patience` has passed
/// (`None`: one try).
async fn connect_patiently(
    options: &WorkerOptions,
    role: Role,
    patience: Option<Duration>,
) -> Result<(u32, Connection), CommError> {
    let give_up = patience.map(|t| tokio::time::Instant::now() + t);
    loop {
        match connect_as(&options.scheduler, &options.security, role.clone()).await {
            Ok(joined) => return Ok(joined),
            Err(error) => match give_up {
                // One last try at the deadline itself, so the worker waits the whole timeout.
                Some(at) if tokio::time::Instant::now() < at => {
                    tracing::info!(scheduler = %options.scheduler, %error, "scheduler not reachable yet; retrying");
                    let left = at - tokio::time::Instant::now();
                    tokio::time::sleep(left.min(Duration::from_secs(1))).await;
                }
                _ => return Err(error),
            },
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".into())
}

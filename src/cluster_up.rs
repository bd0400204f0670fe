//! `rask cluster up`: a scheduler in this process and worker jobs on a batch
//! system, until SIGINT or SIGTERM; then every worker retires and every job
//! is cancelled.

use crate::security_args::SecurityArgs;
use anyhow::{bail, Context, Result};
use rask::scheduler::SchedulerConfig;
use rask::server::{SchedulerOptions, SchedulerServer};
use rask_launchers::adaptive::AdaptivePolicy;
use rask_launchers::config::{Backend, ClusterConfig};
use rask_launchers::jobqueue::{
    job_script, BatchSystem, Credentials, Launcher, LauncherEvent, LauncherOptions, Scaling,
    ScriptTarget,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `rask cluster up`.
#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// The YAML config.
    pub(crate) config: PathBuf,
    /// Start this many workers (rounded up to whole jobs).
    #[arg(long, conflicts_with = "adapt")]
    pub(crate) workers: Option<u32>,
    /// Scale by load between MIN and MAX workers (default: the config's `adaptive`).
    #[arg(long, value_name = "MIN:MAX")]
    pub(crate) adapt: Option<String>,
    /// Write the scheduler's address here (JSON with "address").
    #[arg(long, value_name = "PATH")]
    pub(crate) scheduler_file: Option<PathBuf>,
    /// Address the scheduler listens on; workers on other nodes must reach it.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port for workers and clients (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Directory the job script and the jobs' default output files go to.
    #[arg(long, value_name = "DIR", default_value = ".")]
    workdir: PathBuf,
    /// Submit several jobs one by one rather than as one job array.
    #[arg(long)]
    no_arrays: bool,
    /// Clients and workers must present the token (or TLS certificates);
    /// workers get them through the job script, which only you may read.
    /// Uploading op plugins needs one of them.
    #[command(flatten)]
    security: SecurityArgs,
}

/// Parses `MIN:MAX`.
pub fn parse_bounds(text: &str) -> Result<(u32, u32)> {
    let parsed = text
        .split_once(':')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    match parsed {
        Some((min, max)) if min <= max => Ok((min, max)),
        Some((min, max)) => bail!("--adapt {text}: minimum {min} is more than maximum {max}"),
        None => bail!("--adapt {text:?}: expected MIN:MAX, e.g. 0:8"),
    }
}

/// The batch system of a job-queue backend.
pub fn batch_system(config: &ClusterConfig, path: &std::path::Path) -> Result<BatchSystem> {
    Ok(match config.backend {
        Backend::Slurm(_) => BatchSystem::Slurm,
        Backend::Pbs(_) => BatchSystem::Pbs,
        Backend::Sge(_) => BatchSystem::Sge,
        Backend::Lsf(_) => BatchSystem::Lsf,
        Backend::Local(_) => bail!(
            "{}: the local backend submits no jobs; start workers with `rask worker`",
            path.display()
        ),
        Backend::Kubernetes(_) => bail!(
            "{}: Kubernetes runs pods, not batch jobs: `rask cluster up` makes them",
            path.display()
        ),
    })
}

pub fn up(args: UpArgs) -> Result<()> {
    let config = ClusterConfig::load(&args.config)?;
    if let Backend::Kubernetes(k) = &config.backend {
        return crate::kubernetes_up::up(k, &args);
    }
    let system = batch_system(&config, &args.config)?;
    let (Backend::Slurm(job) | Backend::Pbs(job) | Backend::Sge(job) | Backend::Lsf(job)) =
        config.backend.clone()
    else {
        unreachable!("batch_system accepted only job-queue backends")
    };
    let adaptive = job.adaptive.clone();
    let wait_count = adaptive.as_ref().map_or(3, |a| a.wait_count as u32);
    let scaling = match (args.workers, &args.adapt, &adaptive) {
        (Some(n), _, _) => Scaling::Fixed(n),
        (None, Some(bounds), _) => {
            let (minimum, maximum) = parse_bounds(bounds)?;
            Scaling::Adaptive(AdaptivePolicy {
                minimum,
                maximum,
                wait_count,
            })
        }
        (None, None, Some(a)) => Scaling::Adaptive(AdaptivePolicy {
            minimum: a.minimum as u32,
            maximum: a.maximum as u32,
            wait_count,
        }),
        (None, None, None) => bail!(
            "{}: say how many workers: --workers N, --adapt MIN:MAX, or an `adaptive:` section",
            args.config.display()
        ),
    };
    let workdir = std::fs::canonicalize(&args.workdir)
        .with_context(|| format!("--workdir {}", args.workdir.display()))?;
    if let Some(log) = &job.log_directory {
        std::fs::create_dir_all(workdir.join(&log.0))
            .with_context(|| format!("creating the log directory {}", log.0))?;
    }
    let server = SchedulerServer::start(SchedulerOptions {
        host: args.host.clone(),
        port: args.port,
        dashboard_port: Some(0),
        scheduler_file: args.scheduler_file.clone(),
        config: SchedulerConfig {
            target_duration: adaptive.as_ref().map_or(5.0, |a| a.target_duration),
            ..Default::default()
        },
        security: args.security.security()?,
        ..Default::default()
    })
    .context("starting the scheduler")?;
    let address = server.address().to_string();
    let credentials = Credentials {
        token: args.security.token.clone().filter(|t| !t.is_empty()),
        tls: args.security.tls_files(),
    };
    let script = job_script(
        &config.backend,
        &ScriptTarget::Address(address.clone()),
        &credentials,
    )
    .expect("job-queue backends have scripts");
    let script_dir = workdir.join(format!("rask-{}", std::process::id()));
    std::fs::create_dir_all(&script_dir)
        .with_context(|| format!("creating {}", script_dir.display()))?;
    let options = LauncherOptions {
        system,
        // Named as the job is: PBS-style wrappers name output files after the script.
        script_path: script_dir.join(&job.name.0),
        script,
        workdir,
        scaling: scaling.clone(),
        interval: Duration::try_from_secs_f64(adaptive.as_ref().map_or(1.0, |a| a.interval))
            .with_context(|| format!("{}: adaptive interval", args.config.display()))?,
        backlog: adaptive.as_ref().map_or(8, |a| a.backlog),
        arrays: !args.no_arrays,
        job,
    };
    let script_path = options.script_path.clone();
    eprintln!("rask cluster: scheduler at {address}");
    if let Some(url) = server.dashboard_url() {
        let link = rask::diagnostics::dashboard_link(url, credentials.token.as_deref());
        eprintln!("rask cluster: dashboard at {link}");
    }
    match &scaling {
        Scaling::Fixed(n) => eprintln!("rask cluster: {n} worker(s) on {}", system.name()),
        Scaling::Adaptive(p) => eprintln!(
            "rask cluster: adaptive, {}..{} workers on {}",
            p.minimum,
            p.maximum,
            system.name()
        ),
    }
    let started = Instant::now();
    let report = move |event: LauncherEvent| {
        let at = started.elapsed().as_secs_f64();
        eprintln!("[{at:7.1}s] {}", describe(&event));
    };
    let mut launcher = Launcher::new(options, server.inbox(), Box::new(report))
        .context("writing the job script")?;
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("rask-launcher".into())
            .spawn(move || launcher.run(&stop))
            .context("starting the launcher")?
    };
    crate::signals::wait_for_termination()?;
    eprintln!("rask cluster: stopping: retiring workers, cancelling jobs");
    stop.store(true, Ordering::Relaxed);
    let left = runner
        .join()
        .map_err(|_| anyhow::anyhow!("the launcher thread panicked"))?;
    server.shutdown();
    let _ = std::fs::remove_file(script_path);
    let _ = std::fs::remove_dir(script_dir);
    if !left.is_empty() {
        bail!(
            "these jobs were still queued after cancelling: {} (cancel them by hand)",
            left.join(", ")
        );
    }
    eprintln!("rask cluster: stopped; no jobs left");
    Ok(())
}

fn describe(event: &LauncherEvent) -> String {
    match event {
        LauncherEvent::Submitted(ids) => format!("submitted job(s) {}", ids.join(", ")),
        LauncherEvent::JobRunning(id) => format!("job {id} running"),
        LauncherEvent::WorkerJoined {
            name,
            connected,
            target,
        } => format!("worker {name} joined ({connected}/{target})"),
        LauncherEvent::WorkerLeft { name } => format!("worker {name} left"),
        LauncherEvent::JobFailed {
            id,
            state,
            stderr,
            retry_in,
        } => format!(
            "job {id} ended ({state}) before its workers connected; next submission in {} s; see {}",
            retry_in.as_secs(),
            stderr.display()
        ),
        LauncherEvent::JobPending { id, reason, waited } => format!(
            "job {id} has waited {} s in the queue: {reason}",
            waited.as_secs()
        ),
        LauncherEvent::JobCannotStart {
            id,
            reason,
            retry_in,
        } => format!(
            "job {id} can never start as configured ({reason}: it asks for more than its \
             partition, account or QOS allows a job, or for nodes that are not there); \
             cancelled it; next submission in {} s. Ask for fewer cores, less memory or a \
             shorter walltime, or another queue; `rask cluster dry-run CONFIG` checks a config",
            retry_in.as_secs()
        ),
        LauncherEvent::Replacing(id) => {
            format!(
                "job {id} nears its walltime: its workers will retire; submitting a replacement"
            )
        }
        LauncherEvent::ScaledDown(ids) => format!("scaling down: job(s) {}", ids.join(", ")),
        LauncherEvent::SubmitFailed { error, retry_in } => {
            format!(
                "submitting failed: {error}; next try in {} s",
                retry_in.as_secs()
            )
        }
    }
}

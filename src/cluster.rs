//! `rask cluster`: check a YAML cluster config, print the job script it
//! submits, bring a cluster up, and ask a running one about itself or to scale.

use crate::cluster_up::{batch_system, parse_bounds, UpArgs};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rask::client::ConnectOptions;
use rask::comm::launcher::ClusterStatus;
use rask_launchers::config::{Backend, ClusterConfig};
use rask_launchers::jobqueue::{dry_run, job_script, Credentials, ScriptTarget};
use std::path::PathBuf;

/// `rask cluster` and its subcommands.
#[derive(Parser, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a cluster config and print a summary.
    Check {
        /// The YAML config.
        config: PathBuf,
    },
    /// Print exactly the job script the config submits.
    JobScript {
        /// The YAML config.
        config: PathBuf,
        /// The scheduler address the workers join.
        #[arg(
            long,
            default_value = "tcp://127.0.0.1:8786",
            conflicts_with = "scheduler_file"
        )]
        scheduler: String,
        /// Join through this scheduler file instead.
        #[arg(long)]
        scheduler_file: Option<String>,
    },
    /// Start a scheduler here and worker jobs on the batch system; runs until
    /// SIGINT/SIGTERM, then retires the workers and cancels every job.
    Up(UpArgs),
    /// Submit one job to check the batch system accepts the config's
    /// directives, then cancel it at once.
    DryRun {
        /// The YAML config.
        config: PathBuf,
    },
    /// Jobs and workers of a running `cluster up`.
    Status {
        /// The scheduler file `cluster up` wrote.
        #[arg(long, value_name = "PATH")]
        scheduler_file: PathBuf,
    },
    /// Run exactly N workers (adaptive scaling stops).
    Scale {
        /// Workers.
        workers: u32,
        /// The scheduler file `cluster up` wrote.
        #[arg(long, value_name = "PATH")]
        scheduler_file: PathBuf,
    },
    /// Scale by load between --min and --max workers.
    Adapt {
        /// Fewest workers.
        #[arg(long, default_value_t = 0)]
        min: u32,
        /// Most workers.
        #[arg(long)]
        max: u32,
        /// The scheduler file `cluster up` wrote.
        #[arg(long, value_name = "PATH")]
        scheduler_file: PathBuf,
    },
}

fn show(status: &ClusterStatus) -> String {
    let mut lines = vec![format!(
        "{}: {} worker(s) connected, target {}{}",
        status.backend,
        status.workers,
        status.target,
        status
            .adaptive
            .map(|(a, b)| format!(" (adaptive {a}..{b})"))
            .unwrap_or_default()
    )];
    // Kubernetes runs each worker in a pod; batch systems in jobs.
    let unit = if status.backend == "kubernetes" {
        "pod"
    } else {
        "job"
    };
    for job in &status.jobs {
        lines.push(format!(
            "  {unit} {:<12} {:<9} {} worker(s){}",
            job.id,
            job.state,
            job.workers,
            job.remaining_seconds
                .map(|s| format!(", {s} s of walltime left"))
                .unwrap_or_default()
        ));
    }
    lines.push(format!("  {} {unit}(s) submitted in all", status.submitted));
    lines.join("\n")
}

fn connect(scheduler_file: &std::path::Path) -> Result<rask::Client> {
    ConnectOptions::scheduler_file(scheduler_file)
        .connect()
        .with_context(|| format!("connecting through {}", scheduler_file.display()))
}

fn summary(config: &ClusterConfig) -> String {
    let mut lines = vec![format!("backend: {}", config.backend.name())];
    match &config.backend {
        Backend::Local(l) => lines.push(format!(
            "workers: {} × {} threads{}",
            l.workers,
            l.threads_per_worker,
            l.memory_limit
                .map(|m| format!(", {m} each"))
                .unwrap_or_default()
        )),
        Backend::Slurm(j) | Backend::Pbs(j) | Backend::Sge(j) | Backend::Lsf(j) => {
            lines.push(format!(
                "per job: {} cores, {}, {} worker process(es) of {} threads",
                j.cores,
                j.memory,
                j.processes,
                (j.cores / j.processes).max(1)
            ));
            if let Some(q) = &j.queue {
                lines.push(format!("queue: {q}"));
            }
            if let Some(w) = j.walltime {
                lines.push(format!("walltime: {}", w.hms()));
            }
        }
        Backend::Kubernetes(k) => {
            lines.push(format!(
                "cluster {} in namespace {}, image {}, scheduler service {}",
                k.name,
                k.namespace,
                k.image
                    .as_deref()
                    .unwrap_or(rask_launchers::kubernetes::render::DEFAULT_IMAGE),
                k.service_type
            ));
            if let Some(n) = k.workers {
                lines.push(format!("workers: {n}"));
            }
            if let Some(secret) = &k.token_secret {
                lines.push(format!("token: from Secret {secret}"));
            }
            if let Some(secret) = &k.tls_secret {
                lines.push(format!("mutual TLS: from Secret {secret}"));
            }
        }
    }
    if let Some(a) = config.backend.adaptive() {
        lines.push(format!(
            "adaptive: {}..{} workers (wait-count {}, every {} s)",
            a.minimum, a.maximum, a.wait_count, a.interval
        ));
    }
    lines.join("\n")
}

/// Runs the subcommand; a bad config is an error naming file:line:column.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Check { config } => {
            let parsed = ClusterConfig::load(&config)?;
            println!("{}: ok\n{}", config.display(), summary(&parsed));
        }
        Command::JobScript {
            config,
            scheduler,
            scheduler_file,
        } => {
            let parsed = ClusterConfig::load(&config)?;
            let target = match scheduler_file {
                Some(file) => ScriptTarget::SchedulerFile(file),
                None => ScriptTarget::Address(scheduler),
            };
            let script =
                job_script(&parsed.backend, &target, &Credentials::default()).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: the {} backend submits no jobs (no job script)",
                        config.display(),
                        parsed.backend.name()
                    )
                })?;
            print!("{script}");
        }
        Command::Up(args) => crate::cluster_up::up(args)?,
        Command::DryRun { config } => {
            let parsed = ClusterConfig::load(&config)?;
            let system = batch_system(&parsed, &config)?;
            let script = job_script(
                &parsed.backend,
                &ScriptTarget::Address("tcp://127.0.0.1:9".into()),
                &Credentials::default(),
            )
            .expect("job-queue backends have scripts");
            // Submitted from a directory of its own, with the log directory
            // the job writes to, as `cluster up` makes it.
            let dir = std::env::temp_dir().join(format!("rask-dry-run-{}", std::process::id()));
            let logs = (parsed.backend.job_queue())
                .and_then(|job| job.log_directory.as_ref())
                .map(|d| dir.join(&d.0));
            std::fs::create_dir_all(logs.as_ref().unwrap_or(&dir))
                .with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join("rask-dry-run.sh");
            std::fs::write(&path, script).context("writing the job script")?;
            let verdict = dry_run(system, &path, &dir);
            let _ = std::fs::remove_dir_all(&dir);
            let verdict = verdict.with_context(|| config.display().to_string())?;
            println!(
                "{}: {} accepted the job ({}, {}); cancelled it",
                config.display(),
                system.name(),
                verdict.id,
                verdict.state
            );
        }
        Command::Status { scheduler_file } => {
            println!("{}", show(&connect(&scheduler_file)?.cluster_status()?));
        }
        Command::Scale {
            workers,
            scheduler_file,
        } => println!("{}", show(&connect(&scheduler_file)?.scale(workers)?)),
        Command::Adapt {
            min,
            max,
            scheduler_file,
        } => {
            parse_bounds(&format!("{min}:{max}"))?;
            println!("{}", show(&connect(&scheduler_file)?.adapt(min, max)?));
        }
    }
    Ok(())
}

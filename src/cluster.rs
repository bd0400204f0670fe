//! `rask cluster`: check a YAML cluster config, and print the job script it
//! submits.

use anyhow::Result;
use clap::{Parser, Subcommand};
use rask_launchers::config::{Backend, ClusterConfig};
use rask_launchers::jobqueue::{job_script, ScriptTarget};
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
            let script = job_script(&parsed.backend, &target).ok_or_else(|| {
                anyhow::anyhow!("{}: the local backend submits no jobs", config.display())
            })?;
            print!("{script}");
        }
    }
    Ok(())
}

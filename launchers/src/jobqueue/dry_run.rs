//! `rask cluster dry-run`: does the batch system take a config's job, and can
//! the job ever start?
//!
//! SLURM first checks the script with `sbatch --test-only` and Grid Engine
//! with `qsub -w v`, which catch requests no node can satisfy without queueing
//! anything. Then one job is submitted for real and watched for a few seconds:
//! a job that starts, or waits for a reason that passes (`Resources`,
//! `Priority`), is fine; one that waits for a reason no wait resolves
//! (`PartitionConfig`, `PartitionTimeLimit`, …) is a config error. The job is
//! cancelled either way.
//!
//! ```no_run
//! use rask_launchers::jobqueue::{dry_run, BatchSystem};
//! let verdict = dry_run(BatchSystem::Slurm, "job.sh".as_ref(), "/tmp".as_ref())?;
//! println!("slurm accepted job {}: {}", verdict.id, verdict.state);
//! # Ok::<(), rask_launchers::jobqueue::DryRunError>(())
//! ```

use super::batch::{hopeless_reason, BatchError, BatchSystem, JobState};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a submitted job is watched for its first state.
const WATCH: Duration = Duration::from_secs(10);

/// A job the batch system took, and how it stood when it was cancelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DryRunVerdict {
    /// The job's id.
    pub id: String,
    /// `started`, `pending (Resources)` or `pending`.
    pub state: String,
}

/// Why a config's job would never run.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// The batch system's own check refused the script.
    #[error("{system} refused the job on checking it (`{check}`): {words}")]
    CheckFailed {
        /// The batch system.
        system: &'static str,
        /// The checking command.
        check: String,
        /// What it said.
        words: String,
    },
    /// Submitting failed.
    #[error("{system} refused the job: {error}")]
    Refused {
        /// The batch system.
        system: &'static str,
        /// The submit command's failure.
        error: BatchError,
    },
    /// The job was taken but waits for a reason no wait resolves.
    #[error(
        "{system} took the job ({id}) but it can never start: {reason} (it asks for more than \
         its partition, account or QOS allows a job, or for nodes that are not there); \
         ask for fewer cores, less memory or a shorter walltime, or another queue"
    )]
    CannotStart {
        /// The batch system.
        system: &'static str,
        /// The job.
        id: String,
        /// The batch system's pending reason.
        reason: String,
    },
}

/// Checks `script` with the batch system, submits it once from `dir`, watches
/// it for a few seconds and cancels it.
pub fn dry_run(
    system: BatchSystem,
    script: &Path,
    dir: &Path,
) -> Result<DryRunVerdict, DryRunError> {
    check(system, script, dir)?;
    let ids = system
        .submit(script, None, dir)
        .map_err(|error| DryRunError::Refused {
            system: system.name(),
            error,
        })?;
    let watched = watch(system, &ids);
    if let Err(error) = system.cancel(&ids) {
        tracing::warn!(%error, "cancelling the dry run's job");
    }
    let id = ids.join(", ");
    match watched {
        Watched::Hopeless(reason) => Err(DryRunError::CannotStart {
            system: system.name(),
            id,
            reason,
        }),
        Watched::State(state) => Ok(DryRunVerdict { id, state }),
    }
}

/// The batch system's check of a script without queueing it, where it has one.
fn check(system: BatchSystem, script: &Path, dir: &Path) -> Result<(), DryRunError> {
    let (program, flag) = match system {
        BatchSystem::Slurm => ("sbatch", "--test-only"),
        BatchSystem::Sge => ("qsub", "-w v"),
        BatchSystem::Pbs | BatchSystem::Lsf => return Ok(()),
    };
    let mut command = std::process::Command::new(program);
    command.args(flag.split(' ')).arg(script).current_dir(dir);
    let output = command.output().map_err(|error| DryRunError::Refused {
        system: system.name(),
        error: BatchError::Spawn {
            command: program.into(),
            error,
        },
    })?;
    if output.status.success() {
        return Ok(());
    }
    let words = String::from_utf8_lossy(&output.stderr).trim().to_string();
    Err(DryRunError::CheckFailed {
        system: system.name(),
        check: format!("{program} {flag} {}", script.display()),
        words,
    })
}

enum Watched {
    Hopeless(String),
    State(String),
}

/// Polls the queue until the jobs start, wait for a stated reason, end, or
/// the watch is over.
fn watch(system: BatchSystem, ids: &[String]) -> Watched {
    let until = Instant::now() + WATCH;
    let mut last = "not listed yet".to_string();
    loop {
        if let Ok(queue) = system.poll() {
            for id in ids {
                let key = system.poll_key(id);
                let reason = queue.reasons.get(&key);
                if let Some(reason) = reason.filter(|r| hopeless_reason(system, r)) {
                    return Watched::Hopeless(reason.clone());
                }
                match (queue.states.get(&key), reason) {
                    // (A dry run's worker has no scheduler to join: it may end at once.)
                    (Some(JobState::Running | JobState::Ended(_)), _) => {
                        return Watched::State("started".into())
                    }
                    (Some(JobState::Pending), Some(reason)) => {
                        return Watched::State(format!("pending ({reason})"))
                    }
                    (Some(JobState::Pending), None) => last = "pending".into(),
                    (None, _) => {}
                }
            }
        }
        if Instant::now() >= until {
            return Watched::State(last);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

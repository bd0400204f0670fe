//! Batch job queues: the job scripts rask submits to SLURM, PBS, Grid Engine
//! and LSF to start workers, the commands that submit, poll and cancel them,
//! and the launcher that keeps a scheduler's workers coming.

mod batch;
mod dry_run;
mod launcher;
mod script;

pub use batch::{hopeless_reason, BatchError, BatchSystem, JobState, Queue};
pub use dry_run::{dry_run, DryRunError, DryRunVerdict};
pub use launcher::{Launcher, LauncherEvent, LauncherOptions, Scaling};
pub use script::{
    job_script, rask_program, shell_quote, walltime_margin, Credentials, ScriptTarget,
};

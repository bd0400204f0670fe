//! Batch job queues: the job scripts rask submits to SLURM, PBS, Grid Engine
//! and LSF to start workers, the commands that submit, poll and cancel them,
//! and the launcher that keeps a scheduler's workers coming.

mod batch;
mod launcher;
mod script;

pub use batch::{BatchError, BatchSystem, JobState};
pub use launcher::{Launcher, LauncherEvent, LauncherOptions, Scaling};
pub use script::{job_script, shell_quote, walltime_margin, ScriptTarget};

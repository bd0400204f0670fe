//! Batch job queues: the job scripts rask submits to SLURM, PBS, Grid Engine
//! and LSF to start workers.

mod script;

pub use script::{job_script, shell_quote, ScriptTarget};

//! Task specifications: what to run, on which inputs, with which annotations.

use crate::graph::Key;
use crate::ops::{Arg, OpRef, RunSpec};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Hints for the scheduler, as Dask's `annotate`: priority, retries, resources, placement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Annotations {
    /// Higher runs first (Dask's `priority`).
    pub priority: i32,
    /// How many times a failing task is run again before it errs.
    pub retries: u32,
    /// Abstract resources a task needs on its worker, e.g. `("GPU", 1.0)`.
    pub resources: Vec<(String, f64)>,
    /// Names of the workers allowed to run the task (empty: any).
    pub workers: Vec<String>,
    /// Whether `workers` is only a preference.
    pub allow_other_workers: bool,
}

impl Annotations {
    /// Whether the task may only run on some workers.
    pub fn has_restrictions(&self) -> bool {
        !self.resources.is_empty() || (!self.workers.is_empty() && !self.allow_other_workers)
    }
}

/// One task of a graph.
#[derive(Clone, Debug)]
pub struct TaskSpec {
    /// The task's key (and its result's).
    pub key: Key,
    /// What to run (shared: the scheduler hands it to a worker without copying).
    pub run: Arc<RunSpec>,
    /// The keys of the inputs, in the order `Arg::Dep` indexes them. No duplicates.
    pub deps: Vec<Key>,
    /// Scheduler hints.
    pub annotations: Annotations,
}

impl TaskSpec {
    /// A task running `op` on `args`, which may refer to `deps`.
    pub fn new(key: Key, op: OpRef, args: Vec<Arg>, deps: Vec<Key>) -> Self {
        TaskSpec {
            key,
            run: Arc::new(RunSpec { op, args }),
            deps,
            annotations: Annotations::default(),
        }
    }
}

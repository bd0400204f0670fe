//! Task specifications: what to run, on which inputs, with which annotations.

use crate::graph::Key;
use crate::ops::{OpRef, TaskFailure};
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One argument of a task: a value carried in the task, or the result of a dependency.
#[derive(Clone, Debug)]
pub enum Arg {
    /// A value known when the graph was built.
    Value(Value),
    /// The result of dependency number `n` (an index into the task's inputs).
    Dep(u32),
}

/// What a worker runs: an op and its arguments.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The op.
    pub op: OpRef,
    /// Its arguments, in order.
    pub args: Vec<Arg>,
}

impl RunSpec {
    /// Runs the op with `inputs[n]` standing for `Arg::Dep(n)`.
    pub fn run(&self, inputs: &[Value]) -> Result<Value, TaskFailure> {
        let mut args = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            match arg {
                Arg::Value(value) => args.push(value.clone()),
                Arg::Dep(n) => match inputs.get(*n as usize) {
                    Some(value) => args.push(value.clone()),
                    None => {
                        return Err(TaskFailure::new(format!(
                            "argument refers to input {n}, but the task has {} inputs",
                            inputs.len()
                        )))
                    }
                },
            }
        }
        crate::ops::catch_panics(|| self.op.call(&args))
    }
}

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

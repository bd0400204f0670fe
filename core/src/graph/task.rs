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
    /// The task's part in a peer-to-peer shuffle, which the client resolves
    /// when it submits the graph.
    #[serde(default)]
    pub shuffle: Option<ShuffleRole>,
}

/// A task's part in a peer-to-peer shuffle: the client that submits the graph
/// gives each output partition an owner among the workers it sees, tells the
/// layout task (every transfer's input) who they are, and asks the scheduler
/// to run each output task on its owner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ShuffleRole {
    /// The task whose first argument becomes the owners of the shuffle's
    /// `outputs` partitions (a list of worker ids; empty when no worker was
    /// connected, and the layout task then picks them from its peers).
    Layout {
        /// The shuffle.
        id: String,
        /// How many output partitions.
        outputs: u32,
    },
    /// The task that gathers output partition `part`; it prefers its owner.
    Output {
        /// The shuffle.
        id: String,
        /// Which output partition.
        part: u32,
    },
}

impl ShuffleRole {
    /// How the key of a shuffle's layout task begins (the shuffle's id follows).
    pub const LAYOUT_KEY_PREFIX: &'static str = "shuffle-layout-";
    /// How the key of a shuffle's barrier task begins (the shuffle's id follows).
    pub const BARRIER_KEY_PREFIX: &'static str = "shuffle-barrier-";
}

impl Annotations {
    /// Whether the task may only run on some workers.
    pub fn has_restrictions(&self) -> bool {
        !self.resources.is_empty() || (!self.workers.is_empty() && !self.allow_other_workers)
    }

    /// Whether the scheduler must look at these annotations to place the task:
    /// restrictions, or workers it prefers.
    pub fn guides_placement(&self) -> bool {
        self.has_restrictions() || !self.workers.is_empty()
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

//! What goes into the scheduler state machine ([`Event`]) and what comes out ([`Command`]).

use super::ids::{ClientId, Priority, RunId, WorkerId};
use crate::graph::{Key, RunSpec, TaskSpec};
use crate::ops::TaskFailure;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Something that happened, as reported to the scheduler.
#[derive(Debug)]
pub enum Event {
    /// A worker joined.
    AddWorker {
        /// Its id, unique for the scheduler's lifetime.
        worker: WorkerId,
        /// Its name (used by `workers=` restrictions).
        name: String,
        /// How many tasks it runs at once.
        nthreads: u32,
        /// Abstract resources it offers, e.g. `("GPU", 1.0)`.
        resources: Vec<(String, f64)>,
        /// Its memory limit in bytes (0: none), for adaptive scaling.
        memory_limit: u64,
    },
    /// A worker left or died; whatever only it held is lost.
    RemoveWorker {
        /// The worker.
        worker: WorkerId,
        /// Why, for logs and errors.
        reason: String,
    },
    /// A worker's lifetime ends in `seconds` (its job's walltime); it takes no
    /// task estimated to run past that.
    WorkerDeadline {
        /// The worker.
        worker: WorkerId,
        /// Seconds left, from now.
        seconds: f64,
    },
    /// A client connected.
    AddClient {
        /// Its id.
        client: ClientId,
    },
    /// A client went away; everything only it wanted is released.
    RemoveClient {
        /// The client.
        client: ClientId,
    },
    /// A client submitted tasks and wants some keys.
    UpdateGraph {
        /// The client.
        client: ClientId,
        /// New tasks (keys the scheduler already has keep their existing state).
        tasks: Vec<TaskSpec>,
        /// Keys the client holds futures for.
        wanted: Vec<Key>,
    },
    /// A client dropped its futures for these keys.
    ReleaseKeys {
        /// The client.
        client: ClientId,
        /// The keys.
        keys: Vec<Key>,
    },
    /// A client cancelled these keys (and so everything of theirs that depends on them).
    Cancel {
        /// The client.
        client: ClientId,
        /// The keys.
        keys: Vec<Key>,
    },
    /// A worker finished a task and holds its result.
    TaskFinished {
        /// The worker.
        worker: WorkerId,
        /// The task.
        key: Key,
        /// The assignment it answers.
        run_id: RunId,
        /// The result's size in memory.
        nbytes: u64,
        /// How long it ran, in microseconds.
        duration_us: u64,
        /// The worker's thread that ran it.
        thread: u16,
    },
    /// A task failed on a worker.
    TaskErred {
        /// The worker.
        worker: WorkerId,
        /// The task.
        key: Key,
        /// The assignment it answers.
        run_id: RunId,
        /// Why.
        failure: TaskFailure,
    },
    /// A worker could not fetch an input of a task from the workers it was told held it.
    MissingData {
        /// The worker that tried.
        worker: WorkerId,
        /// The task that needed the input.
        key: Key,
        /// The task's assignment.
        run_id: RunId,
        /// The input.
        missing: Key,
        /// The holders it asked, none of which delivered.
        tried: Vec<WorkerId>,
    },
    /// A worker answered a steal request.
    StealResponse {
        /// The worker asked to give up the task.
        worker: WorkerId,
        /// The task.
        key: Key,
        /// The assignment asked about.
        run_id: RunId,
        /// Whether it gave it up (it had not started it).
        stolen: bool,
    },
    /// A client put data on workers itself (Dask's `scatter`).
    Scatter {
        /// The client, which wants the keys.
        client: ClientId,
        /// Each key, the worker holding it and its size.
        keys: Vec<(Key, WorkerId, u64)>,
    },
    /// Retire workers gracefully: no new work, unique data copied elsewhere, then closed.
    RetireWorkers {
        /// The workers.
        workers: Vec<WorkerId>,
    },
    /// A worker stored a copy of a key it was asked to replicate (`None`: it could not).
    Replicated {
        /// The worker.
        worker: WorkerId,
        /// The key.
        key: Key,
        /// Its size, or `None` when no holder delivered it.
        nbytes: Option<u64>,
    },
    /// Time for periodic work: work stealing. The runtime sends it about every second.
    Balance,
}

/// Something the scheduler wants done.
#[derive(Debug, Clone)]
pub enum Command {
    /// Run a task on a worker.
    Compute {
        /// The worker.
        worker: WorkerId,
        /// The task.
        task: ComputeTask,
    },
    /// A worker should drop a key: free its data, or stop and forget the task.
    Release {
        /// The worker.
        worker: WorkerId,
        /// The key.
        key: Key,
        /// The serial of the last assignment handed out before this release:
        /// a shuffle layout's runs up to it are over, later ones are not.
        as_of: u32,
    },
    /// Ask a worker to give up a task it has not started yet.
    Steal {
        /// The worker.
        worker: WorkerId,
        /// The task.
        key: Key,
        /// The assignment to give up.
        run_id: RunId,
    },
    /// A worker should copy a key from one of `holders` and keep it.
    Replicate {
        /// The worker that copies.
        worker: WorkerId,
        /// The key.
        key: Key,
        /// Workers holding it.
        holders: Vec<WorkerId>,
        /// Its size.
        nbytes: u64,
    },
    /// A retired worker may exit: nothing it holds is needed only there.
    CloseWorker {
        /// The worker.
        worker: WorkerId,
    },
    /// Tell a client what happened to a key it wants.
    Report {
        /// The client.
        client: ClientId,
        /// What happened.
        report: Report,
    },
}

/// Everything a worker needs to run one task.
#[derive(Debug, Clone)]
pub struct ComputeTask {
    /// The task's key.
    pub key: Key,
    /// This assignment; the worker's answers about the task echo it.
    pub run_id: RunId,
    /// What to run.
    pub run: Arc<RunSpec>,
    /// Its inputs, in `Arg::Dep` order, with the workers that hold them.
    pub inputs: Vec<Input>,
    /// Where it stands in the worker's queue.
    pub priority: Priority,
    /// Abstract resources it holds while running, e.g. `("GPU", 1.0)`.
    pub resources: Vec<(String, f64)>,
}

/// One input of a task to run, and where to fetch it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Input {
    /// The input's key.
    pub key: Key,
    /// Workers holding it.
    pub holders: Vec<WorkerId>,
    /// Its size.
    pub nbytes: u64,
}

/// News about a key a client wants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Report {
    /// The result is in memory on `worker`.
    InMemory {
        /// The key.
        key: Key,
        /// A worker holding it.
        worker: WorkerId,
        /// Its size.
        nbytes: u64,
    },
    /// The task failed, or a task it depends on did.
    Erred {
        /// The key.
        key: Key,
        /// The failure and the task to blame.
        error: TaskError,
    },
    /// The key was cancelled.
    Cancelled {
        /// The key.
        key: Key,
    },
    /// The result was lost with its worker and is being recomputed.
    Lost {
        /// The key.
        key: Key,
    },
    /// The graph was refused; nothing of it runs.
    GraphRejected {
        /// The keys the client asked for.
        keys: Vec<Key>,
        /// Why.
        error: String,
    },
}

/// A task's failure: which task failed first, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct TaskError {
    /// The task that failed (for a dependent, the dependency that caused it).
    pub blame: Key,
    /// What went wrong.
    pub message: String,
    /// The worker the task failed on (its name), when one ran it.
    pub worker: Option<String>,
}

impl TaskError {
    /// A failure that no worker's run caused (lost data, refused input).
    pub fn new(blame: Key, message: impl Into<String>) -> Self {
        TaskError {
            blame,
            message: message.into(),
            worker: None,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.worker {
            Some(worker) => write!(
                f,
                "task {} failed on worker {worker}: {}",
                self.blame, self.message
            ),
            None => write!(f, "task {} failed: {}", self.blame, self.message),
        }
    }
}

//! What can go wrong for a client.

use crate::graph::{GraphError, Key};
use crate::scheduler::TaskError;
use crate::value::ValueError;

/// Errors returned by the client API. Their `Debug` is their message, so an
/// `unwrap()` in a script or a notebook cell shows what failed and where
/// (the task's key, the worker, the message) rather than nested structs.
#[derive(thiserror::Error)]
pub enum Error {
    /// A task failed, or one of its inputs did.
    #[error("{}", describe_task_error(key, error))]
    Task {
        /// The key that was asked for.
        key: Key,
        /// The failure and the task to blame.
        error: TaskError,
    },
    /// The key was cancelled.
    #[error("task {0} was cancelled")]
    Cancelled(Key),
    /// The scheduler refused the graph.
    #[error("the scheduler refused the graph for {keys}: {message}")]
    GraphRejected {
        /// The keys asked for.
        keys: String,
        /// Why.
        message: String,
    },
    /// The graph is malformed or cannot be sent.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A result is not of the type asked for.
    #[error("result of task {key}: {error}")]
    Value {
        /// The key.
        key: Key,
        /// The mismatch.
        error: ValueError,
    },
    /// The cluster has shut down.
    #[error("the cluster has shut down")]
    ClusterClosed,
    /// A bad cluster setting.
    #[error("invalid cluster setting: {0}")]
    Config(String),
    /// Talking to the scheduler or a worker failed.
    #[error(transparent)]
    Comm(#[from] crate::comm::connection::CommError),
    /// The scheduler refused a request.
    #[error("the scheduler says: {0}")]
    Scheduler(String),
    /// A value could not be encoded to send.
    #[error("cannot send a value: {0}")]
    Encode(ValueError),
    /// A wait ran out of time.
    #[error("timed out {0}")]
    Timeout(String),
    /// Starting threads failed.
    #[error("could not start a thread: {0}")]
    Io(#[from] std::io::Error),
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn describe_task_error(key: &Key, error: &TaskError) -> String {
    let on = match &error.worker {
        Some(worker) => format!(" on worker {worker}"),
        None => String::new(),
    };
    if *key == error.blame {
        format!("task {key} failed{on}: {}", error.message)
    } else {
        format!(
            "task {key} failed because its input {} failed{on}: {}",
            error.blame, error.message
        )
    }
}

//! Task graphs: keys, task specs, and the optimisations applied before scheduling —
//! culling to the requested keys, fusion of linear chains, and a depth-first
//! priority order that keeps memory low (the aim of `dask.order`) — and [`wire`],
//! tasks as they cross a process boundary.

mod cull;
mod fuse;
mod key;
mod order;
mod task;
pub mod wire;

pub use crate::ops::{Arg, RunSpec};
pub use fuse::fuse_tasks;
pub use key::{fresh_number, fresh_token, Key};
pub use order::{order, Adjacency};
pub use task::{Annotations, ShuffleRole, TaskSpec};

use foldhash::HashMap;

/// Problems with a graph as submitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// A task depends on a key that is neither in the graph nor known to the scheduler.
    #[error(
        "task {key} depends on {dependency}, which is neither in the graph nor held by the cluster"
    )]
    MissingDependency {
        /// The task.
        key: Key,
        /// The unknown dependency.
        dependency: Key,
    },
    /// The graph has a cycle through this key.
    #[error("the graph has a cycle through task {key}")]
    Cycle {
        /// A task on the cycle.
        key: Key,
    },
    /// A task's argument refers to an input it does not have.
    #[error("task {key}: argument refers to input {index}, but the task has {ninputs} inputs")]
    BadArgument {
        /// The task.
        key: Key,
        /// The referenced input.
        index: u32,
        /// How many inputs the task has.
        ninputs: usize,
    },
    /// A closure cannot be sent to another process.
    #[error(
        "task {key} runs closure `{op}`, and closures run only on in-process clusters; \
         register the function with `rask::op!` and start the workers from a binary that contains it"
    )]
    ClosureNotTransportable {
        /// The task.
        key: Key,
        /// The closure's name.
        op: String,
    },
    /// Fused chains nested deeper than the wire allows.
    #[error("task {key}: fused chains nest deeper than {limit} levels")]
    TooDeep {
        /// The task.
        key: Key,
        /// The deepest nesting allowed.
        limit: usize,
    },
    /// An argument could not be encoded.
    #[error("task {key}: {error}")]
    Encode {
        /// The task.
        key: Key,
        /// What the encoder said.
        error: crate::value::ValueError,
    },
}

/// A set of tasks keyed by their keys.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    tasks: Vec<TaskSpec>,
    index: HashMap<Key, usize>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a task; a task with the same key replaces the earlier one.
    pub fn insert(&mut self, task: TaskSpec) {
        match self.index.get(&task.key) {
            Some(&at) => self.tasks[at] = task,
            None => {
                self.index.insert(task.key.clone(), self.tasks.len());
                self.tasks.push(task);
            }
        }
    }

    /// The task with this key.
    pub fn get(&self, key: &Key) -> Option<&TaskSpec> {
        self.index.get(key).map(|&at| &self.tasks[at])
    }

    /// Whether the graph has this key.
    pub fn contains(&self, key: &Key) -> bool {
        self.index.contains_key(key)
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The tasks, in insertion order.
    pub fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    /// Takes the tasks out, in insertion order.
    pub fn into_tasks(self) -> Vec<TaskSpec> {
        self.tasks
    }

    /// Checks every argument index; dependency keys outside the graph are allowed
    /// (the scheduler may hold them).
    pub fn validate_arguments(&self) -> Result<(), GraphError> {
        self.tasks.iter().try_for_each(wire::check_arguments)
    }
}

impl FromIterator<TaskSpec> for Graph {
    fn from_iter<I: IntoIterator<Item = TaskSpec>>(iter: I) -> Self {
        let mut graph = Graph::new();
        for task in iter {
            graph.insert(task);
        }
        graph
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    //! Small graphs for the graph module's tests.
    use super::*;
    use crate::value::Value;

    crate::op! {
        /// A leaf: a constant derived from nothing.
        pub fn test_leaf() -> u64 { 1 }
    }
    crate::op! {
        /// One link of a chain: doubles and adds one.
        pub fn test_link(x: u64) -> u64 { 2 * x + 1 }
    }

    /// A leaf task.
    pub fn leaf(key: &str) -> TaskSpec {
        TaskSpec::new(
            Key::new(key),
            crate::ops::Op::op_ref(&test_leaf),
            vec![],
            vec![],
        )
    }

    /// A chain `keys[0] → keys[1] → …`.
    pub fn chain(keys: &[&str]) -> Graph {
        let mut graph = Graph::new();
        graph.insert(leaf(keys[0]));
        for pair in keys.windows(2) {
            graph.insert(TaskSpec::new(
                Key::new(pair[1]),
                crate::ops::Op::op_ref(&test_link),
                vec![Arg::Dep(0)],
                vec![Key::new(pair[0])],
            ));
        }
        graph
    }

    /// Evaluates `key` sequentially.
    pub fn evaluate(graph: &Graph, key: &str) -> u64 {
        fn eval(graph: &Graph, key: &Key) -> Value {
            let task = graph.get(key).expect("key in graph");
            let inputs: Vec<Value> = task.deps.iter().map(|d| eval(graph, d)).collect();
            task.run.run(&inputs).expect("task runs")
        }
        eval(graph, &Key::new(key))
            .extract::<u64>()
            .expect("u64 result")
    }
}

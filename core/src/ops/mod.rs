//! The op registry: what a task runs.
//!
//! A task names an op and carries encoded arguments, so it can cross a process
//! boundary. Ops come in three kinds:
//! - **registered ops**, compiled into the binary with [`op!`](crate::op) and found by
//!   name on any worker started from that binary;
//! - **closures** ([`closure`]), for in-process clusters only — a closure cannot
//!   travel, and trying to send one names the task and says how to register an op;
//! - **fused chains**, made by graph optimisation from linear chains of tasks.
//!
//! A task's [`RunSpec`] is an op and its [`Arg`]s (values carried in the task,
//! or inputs by position); [`next_arg`] takes them apart inside an op.
//!
//! ```
//! rask::op! {
//!     /// Adds two numbers.
//!     pub fn add(a: i64, b: i64) -> i64 { a + b }
//! }
//! assert_eq!(add::call(2, 3), 5);
//! let entry = rask::ops::lookup(rask::ops::Op::name(&add)).expect("registered at compile time");
//! assert!(entry.name.ends_with("::add"));
//! ```

mod args;
pub mod builtin;
mod closure;
mod macros;
mod registry;
mod run;

pub use args::next_arg;
pub use closure::{closure, ClosureOp, IntoClosure};
pub use registry::{lookup, registered, OpEntry, OpFn};
pub use run::{Arg, RunSpec};

use crate::value::{Data, Value};
use std::fmt;
use std::sync::Arc;

/// Why one run of a task failed (the scheduler adds the key and the blame).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{message}")]
pub struct TaskFailure {
    /// What went wrong, in the op's words.
    pub message: String,
}

/// The longest failure message kept (a longer one is cut, saying by how much).
pub const MAX_FAILURE_MESSAGE: usize = 16 << 10;

impl TaskFailure {
    /// A failure with this message (cut to [`MAX_FAILURE_MESSAGE`] bytes).
    pub fn new(message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_FAILURE_MESSAGE {
            let mut end = MAX_FAILURE_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            let cut = message.len() - end;
            message.truncate(end);
            message.push_str(&format!("… ({cut} more bytes)"));
        }
        TaskFailure { message }
    }
}

/// A closure's body after type erasure.
pub type ErasedFn = dyn Fn(&[Value]) -> Result<Value, TaskFailure> + Send + Sync;

/// How a task's op is found.
#[derive(Clone)]
pub enum OpRef {
    /// A registered op (compiled in, found by name).
    Registered(&'static OpEntry),
    /// An op of a plugin library loaded at run time ([`crate::plugin`]).
    Plugin(Arc<crate::plugin::host::PluginOp>),
    /// An op name that no registration in this binary matches: running it
    /// runs a plugin's op of that name if one is loaded by then, else fails.
    Missing(Arc<str>),
    /// An in-process closure with a readable name.
    Closure(Arc<str>, Arc<ErasedFn>),
    /// A fused linear chain: each step sees the task's inputs followed by the
    /// results of the steps before it; the last step's result is the task's.
    /// The names are the keys of the tasks the steps were (a failure names
    /// its step's).
    Fused(Arc<[RunSpec]>, Arc<[Arc<str>]>),
}

impl OpRef {
    /// A readable name: the registered name, the closure's name, or `fused(a→b)`.
    pub fn name(&self) -> String {
        match self {
            OpRef::Registered(entry) => entry.name.to_string(),
            OpRef::Plugin(op) => op.name().to_string(),
            OpRef::Missing(name) | OpRef::Closure(name, _) => name.to_string(),
            OpRef::Fused(steps, _) => {
                let names: Vec<String> = steps.iter().map(|s| s.op.name()).collect();
                format!("fused({})", names.join("→"))
            }
        }
    }

    /// Whether running this op (or a fused step) takes a plugin: the op is
    /// not registered in this binary.
    pub fn needs_plugin(&self) -> bool {
        match self {
            OpRef::Missing(_) | OpRef::Plugin(_) => true,
            OpRef::Fused(steps, _) => steps.iter().any(|s| s.op.needs_plugin()),
            _ => false,
        }
    }

    /// Whether this op (or any fused step) is an in-process closure.
    pub fn is_closure(&self) -> bool {
        match self {
            OpRef::Closure(..) => true,
            OpRef::Fused(steps, _) => steps.iter().any(|s| s.op.is_closure()),
            _ => false,
        }
    }

    /// Runs the op on its arguments.
    pub fn call(&self, args: &[Value]) -> Result<Value, TaskFailure> {
        match self {
            OpRef::Registered(entry) => (entry.run)(args),
            OpRef::Plugin(op) => op.call(args),
            OpRef::Missing(name) => match crate::plugin::op(name) {
                Some(op) => op.call(args),
                None => Err(TaskFailure::new(format!(
                    "op `{name}` is not registered in this worker's binary nor in a plugin \
                     it loaded; upload the crate that defines it with Client::upload_plugin, \
                     or start workers from a binary that registers it with rask::op!"
                ))),
            },
            OpRef::Closure(_, body) => body(args),
            OpRef::Fused(steps, keys) => {
                let mut env: Vec<Value> = args.to_vec();
                let mut last = None;
                for (k, step) in steps.iter().enumerate() {
                    let value = step.run(&env).map_err(|failure| match keys.get(k) {
                        // The last step is the task itself; an earlier one
                        // is the user's step that was fused into it.
                        Some(key) if k + 1 < steps.len() => TaskFailure {
                            message: format!(
                                "in {key} (fused into this task): {}",
                                failure.message
                            ),
                        },
                        _ => failure,
                    })?;
                    env.push(value.clone());
                    last = Some(value);
                }
                last.ok_or_else(|| TaskFailure::new("fused task has no steps"))
            }
        }
    }
}

impl fmt::Debug for OpRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Op({})", self.name())
    }
}

/// A typed op: what [`Client::submit`](crate::Client::submit) and
/// [`delayed`](crate::delayed()) accept. Made by [`op!`](crate::op) or [`closure`].
pub trait Op: Send + Sync + 'static {
    /// The argument types, as a tuple.
    type Args;
    /// The result type.
    type Output: Data;
    /// How workers find the op.
    fn op_ref(&self) -> OpRef;
    /// A short name for keys (`add` → keys `add-<token>`).
    fn name(&self) -> &str;
}

/// The short name of a registered op: the last path segment.
pub fn short_name(full: &str) -> &str {
    full.rsplit("::").next().unwrap_or(full)
}

/// The op named `name`: registered in this binary, else from a loaded plugin.
pub fn resolve(name: &str) -> Option<OpRef> {
    match lookup(name) {
        Some(entry) => Some(OpRef::Registered(entry)),
        None => crate::plugin::op(name),
    }
}

/// Runs an op body, turning a panic into a [`TaskFailure`] so a worker thread survives it.
pub fn catch_panics(
    body: impl FnOnce() -> Result<Value, TaskFailure>,
) -> Result<Value, TaskFailure> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".to_string());
            Err(TaskFailure::new(format!("task panicked: {message}")))
        }
    }
}

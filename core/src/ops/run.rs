//! What a worker runs for a task: an op and its arguments, some carried in the
//! task, some the results of its inputs.

use super::{catch_panics, OpRef, TaskFailure};
use crate::value::Value;

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
        catch_panics(|| self.op.call(&args))
    }
}

//! The wire form of tasks: how a task crosses a process boundary.
//!
//! Registered ops travel by name and arguments as encoded bytes; a closure cannot
//! travel and is refused with [`GraphError::ClosureNotTransportable`].

use super::{Annotations, Arg, GraphError, Key, RunSpec, TaskSpec};
use crate::ops::OpRef;
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A task as sent between processes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireTask {
    /// The task's key.
    pub key: Key,
    /// What to run.
    pub run: WireRun,
    /// Its inputs' keys.
    pub deps: Vec<Key>,
    /// Scheduler hints.
    pub annotations: Annotations,
}

/// An op and its arguments, as sent between processes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireRun {
    /// The op.
    pub op: WireOp,
    /// The arguments.
    pub args: Vec<WireArg>,
}

/// An op, as sent between processes.
///
/// Fused chains may contain fused chains, but at most [`MAX_FUSED_DEPTH`]
/// deep: decoding counts the depth as it goes, so a hostile message nested a
/// million levels deep is an error, not a stack overflow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum WireOp {
    /// A registered op's full name.
    Named(String),
    /// A fused chain, and the keys of the tasks its steps were.
    Fused(Vec<WireRun>, Vec<String>),
}

/// How deep fused chains may nest on the wire.
pub const MAX_FUSED_DEPTH: usize = 16;

thread_local! {
    /// Fused chains being decoded on this thread, outermost first.
    static DECODING_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The decoded shape of [`WireOp`]; decoding goes through its depth check.
#[derive(Deserialize)]
enum WireOpRepr {
    Named(String),
    Fused(Vec<WireRun>, Vec<String>),
}

impl<'de> Deserialize<'de> for WireOp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let depth = DECODING_DEPTH.with(|d| d.get());
        if depth >= MAX_FUSED_DEPTH {
            return Err(serde::de::Error::custom(format!(
                "fused chains nest deeper than {MAX_FUSED_DEPTH} levels"
            )));
        }
        DECODING_DEPTH.with(|d| d.set(depth + 1));
        let decoded = WireOpRepr::deserialize(deserializer);
        DECODING_DEPTH.with(|d| d.set(depth));
        Ok(match decoded? {
            WireOpRepr::Named(name) => WireOp::Named(name),
            WireOpRepr::Fused(steps, keys) => WireOp::Fused(steps, keys),
        })
    }
}

/// An argument, as sent between processes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WireArg {
    /// An encoded value (kept as it arrived; it becomes the argument as it is).
    Bytes(bytes::Bytes),
    /// The result of input `n`.
    Dep(u32),
}

impl TaskSpec {
    /// The task's wire form; fails for closures and unencodable arguments.
    pub fn to_wire(&self) -> Result<WireTask, GraphError> {
        Ok(WireTask {
            key: self.key.clone(),
            run: run_to_wire(&self.key, &self.run)?,
            deps: self.deps.clone(),
            annotations: self.annotations.clone(),
        })
    }
}

impl WireTask {
    /// The task this wire form describes. An op unknown to this binary becomes
    /// [`OpRef::Missing`]: the task then fails with a message naming the op.
    pub fn into_spec(self) -> Result<TaskSpec, GraphError> {
        let spec = TaskSpec {
            key: self.key,
            run: Arc::new(run_from_wire(self.run)),
            deps: self.deps,
            annotations: self.annotations,
        };
        check_arguments(&spec)?;
        Ok(spec)
    }
}

/// The wire form of one run spec (`key` names the task in errors).
pub(crate) fn run_to_wire(key: &Key, run: &RunSpec) -> Result<WireRun, GraphError> {
    run_to_wire_at(key, run, 0)
}

fn run_to_wire_at(key: &Key, run: &RunSpec, depth: usize) -> Result<WireRun, GraphError> {
    if depth >= MAX_FUSED_DEPTH {
        return Err(GraphError::TooDeep {
            key: key.clone(),
            limit: MAX_FUSED_DEPTH,
        });
    }
    let op = match &run.op {
        OpRef::Registered(entry) => WireOp::Named(entry.name.to_string()),
        OpRef::Missing(name) => WireOp::Named(name.to_string()),
        OpRef::Plugin(op) => WireOp::Named(op.name().to_string()),
        OpRef::Closure(name, _) => {
            return Err(GraphError::ClosureNotTransportable {
                key: key.clone(),
                op: name.to_string(),
            })
        }
        OpRef::Fused(steps, keys) => WireOp::Fused(
            steps
                .iter()
                .map(|s| run_to_wire_at(key, s, depth + 1))
                .collect::<Result<_, _>>()?,
            keys.iter().map(|k| k.to_string()).collect(),
        ),
    };
    let args = run
        .args
        .iter()
        .map(|a| match a {
            Arg::Dep(n) => Ok(WireArg::Dep(*n)),
            Arg::Value(v) => v
                .to_bytes()
                .map(WireArg::Bytes)
                .map_err(|error| GraphError::Encode {
                    key: key.clone(),
                    error,
                }),
        })
        .collect::<Result<_, _>>()?;
    Ok(WireRun { op, args })
}

/// The run spec a wire form describes.
pub(crate) fn run_from_wire(run: WireRun) -> RunSpec {
    let op = match run.op {
        WireOp::Named(name) => {
            crate::ops::resolve(&name).unwrap_or_else(|| OpRef::Missing(Arc::from(name)))
        }
        WireOp::Fused(steps, keys) => OpRef::Fused(
            steps.into_iter().map(run_from_wire).collect(),
            keys.into_iter().map(Arc::from).collect(),
        ),
    };
    let args = run
        .args
        .into_iter()
        .map(|a| match a {
            WireArg::Dep(n) => Arg::Dep(n),
            WireArg::Bytes(b) => Arg::Value(Value::Encoded(b)),
        })
        .collect();
    RunSpec { op, args }
}

/// Checks that every `Arg::Dep` names an input the task has.
pub(crate) fn check_arguments(task: &TaskSpec) -> Result<(), GraphError> {
    let ninputs = task.deps.len();
    let bad = |index: u32| GraphError::BadArgument {
        key: task.key.clone(),
        index,
        ninputs,
    };
    for arg in &task.run.args {
        if let Arg::Dep(n) = arg {
            if *n as usize >= ninputs {
                return Err(bad(*n));
            }
        }
    }
    if let OpRef::Fused(steps, _) = &task.run.op {
        // Step k sees the inputs and the k results before it.
        for (k, step) in steps.iter().enumerate() {
            for arg in &step.args {
                if let Arg::Dep(n) = arg {
                    if *n as usize >= task.run.args.len() + k {
                        return Err(bad(*n));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{chain, evaluate};
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn registered_and_fused_tasks_round_trip_through_bytes() {
        let graph = chain(&["a", "b", "c"]).fuse(&HashSet::from([Key::new("c")]));
        let task = &graph.tasks()[0];
        let bytes = crate::value::encode(&task.to_wire().unwrap()).unwrap();
        let back: WireTask = crate::value::decode(&bytes).unwrap();
        let spec = back.into_spec().unwrap();
        let rebuilt: super::super::Graph = std::iter::once(spec).collect();
        assert_eq!(
            evaluate(&rebuilt, "c"),
            evaluate(&chain(&["a", "b", "c"]), "c")
        );
    }

    #[test]
    fn closures_refuse_to_travel_and_say_what_to_do() {
        let op = crate::ops::closure(|x: u64| x + 1).named("inc");
        let task = TaskSpec::new(
            Key::new("inc-1"),
            crate::ops::Op::op_ref(&op),
            vec![Arg::Value(Value::new(1_u64))],
            vec![],
        );
        let err = task.to_wire().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("inc-1") && text.contains("rask::op!"),
            "{text}"
        );
    }

    #[test]
    fn unknown_ops_fail_when_run_not_when_decoded() {
        let wire = WireTask {
            key: Key::new("x"),
            run: WireRun {
                op: WireOp::Named("nowhere::op".into()),
                args: vec![],
            },
            deps: vec![],
            annotations: Annotations::default(),
        };
        let spec = wire.into_spec().unwrap();
        let err = spec.run.run(&[]).unwrap_err();
        assert!(err.message.contains("nowhere::op"), "{}", err.message);
    }

    #[test]
    fn out_of_range_inputs_are_rejected() {
        let wire = WireTask {
            key: Key::new("x"),
            run: WireRun {
                op: WireOp::Named("a".into()),
                args: vec![WireArg::Dep(3)],
            },
            deps: vec![],
            annotations: Annotations::default(),
        };
        assert!(matches!(
            wire.into_spec(),
            Err(GraphError::BadArgument { index: 3, .. })
        ));
    }

    /// postcard bytes of a run whose op is fused `depth` levels deep.
    fn nested(depth: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for _ in 0..depth {
            bytes.extend_from_slice(&[1, 1]); // op: Fused, one step
        }
        bytes.extend_from_slice(&[0, 1, b'x', 0]); // op: Named("x"), no args
        bytes.extend(std::iter::repeat_n(0u8, 2 * depth)); // each level: no keys, no args
        bytes
    }

    #[test]
    fn deeply_nested_fused_chains_are_an_error_not_a_stack_overflow() {
        let shallow: WireRun = postcard::from_bytes(&nested(MAX_FUSED_DEPTH - 1)).unwrap();
        assert!(matches!(shallow.op, WireOp::Fused(..)));
        assert!(postcard::from_bytes::<WireRun>(&nested(1_000_000)).is_err());
        // The depth count starts afresh after an error.
        let again: Result<WireRun, _> = postcard::from_bytes(&nested(3));
        assert!(again.is_ok());
        // Encoding refuses what decoding would.
        let mut run = RunSpec {
            op: OpRef::Missing("x".into()),
            args: vec![],
        };
        for _ in 0..MAX_FUSED_DEPTH {
            run = RunSpec {
                op: OpRef::Fused(Arc::from(vec![run]), Arc::from(Vec::new())),
                args: vec![],
            };
        }
        assert!(matches!(
            run_to_wire(&Key::new("deep"), &run),
            Err(GraphError::TooDeep { .. })
        ));
    }
}

//! Linear fusion: a chain `a → b → c`, where each link is a task's only dependency
//! and its parent's only dependent, becomes one task keyed `c`. Fewer tasks, same
//! parallelism, and no intermediate results stored.

use super::{Arg, Graph, Key, RunSpec, TaskSpec};
use crate::ops::OpRef;
use hashbrown::HashTable;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::Arc;

impl Graph {
    /// Fuses linear chains, never fusing away a key in `keep` (keys someone asked for).
    pub fn fuse<S: BuildHasher>(&self, keep: &HashSet<Key, S>) -> Graph {
        fuse_tasks(self.tasks().to_vec(), |key| keep.contains(key))
            .into_iter()
            .collect()
    }
}

/// Fuses linear chains of `tasks` (keys distinct), never fusing away a key for
/// which `keep` holds. Tasks move into the result (fused chains are built
/// anew), in their order, each chain where its last task was.
pub fn fuse_tasks(tasks: Vec<TaskSpec>, keep: impl Fn(&Key) -> bool) -> Vec<TaskSpec> {
    // Positions by key: 4-byte slots on the keys' own hashes.
    let mut at: HashTable<u32> = HashTable::with_capacity(tasks.len());
    for (i, task) in tasks.iter().enumerate() {
        at.insert_unique(task.key.precomputed_hash(), i as u32, |&j| {
            tasks[j as usize].key.precomputed_hash()
        });
    }
    let position = |key: &Key| -> Option<usize> {
        at.find(key.precomputed_hash(), |&j| tasks[j as usize].key == *key)
            .map(|&j| j as usize)
    };
    let mut ndependents = vec![0_u32; tasks.len()];
    for task in &tasks {
        for dep in &task.deps {
            if let Some(p) = position(dep) {
                ndependents[p] += 1;
            }
        }
    }
    // parent_of[x] = the task fused into x's front, if any.
    let mut parent_of: Vec<Option<u32>> = vec![None; tasks.len()];
    let mut absorbed = vec![false; tasks.len()];
    let mut any = false;
    for (x, task) in tasks.iter().enumerate() {
        let [dep] = task.deps.as_slice() else {
            continue;
        };
        let Some(p) = position(dep) else { continue };
        let parent = &tasks[p];
        if ndependents[p] == 1 && !keep(&parent.key) && parent.annotations == task.annotations {
            parent_of[x] = Some(p as u32);
            absorbed[p] = true;
            any = true;
        }
    }
    if !any {
        return tasks;
    }
    drop(at);
    // Singletons move to the result; chains are built from their members.
    let mut slots: Vec<Option<TaskSpec>> = tasks.into_iter().map(Some).collect();
    let mut fused = Vec::with_capacity(slots.len());
    for x in 0..slots.len() {
        if absorbed[x] {
            continue;
        }
        let mut chain = vec![x];
        while let Some(p) = parent_of[chain[chain.len() - 1]] {
            chain.push(p as usize);
        }
        if chain.len() == 1 {
            fused.extend(slots[x].take());
            continue;
        }
        chain.reverse();
        // Every member is still in place: only singletons were taken.
        let members: Option<Vec<&TaskSpec>> = chain.iter().map(|&i| slots[i].as_ref()).collect();
        fused.extend(members.map(|members| fuse_chain(&members)));
    }
    fused
}

/// One task running `chain` (head first) in sequence.
fn fuse_chain(chain: &[&TaskSpec]) -> TaskSpec {
    let head = chain[0];
    let tail = chain[chain.len() - 1];
    let ninputs = head.deps.len() as u32;
    let mut steps = Vec::with_capacity(chain.len());
    for (k, task) in chain.iter().enumerate() {
        let run = &task.run;
        let args = if k == 0 {
            run.args.clone()
        } else {
            // A later link's only input is the previous step's result.
            let previous = ninputs + k as u32 - 1;
            run.args
                .iter()
                .map(|a| match a {
                    Arg::Dep(_) => Arg::Dep(previous),
                    value => value.clone(),
                })
                .collect()
        };
        steps.push(RunSpec {
            op: run.op.clone(),
            args,
        });
    }
    TaskSpec {
        key: tail.key.clone(),
        run: Arc::new(RunSpec {
            op: OpRef::Fused(
                Arc::from(steps),
                chain.iter().map(|t| Arc::from(t.key.as_str())).collect(),
            ),
            args: (0..ninputs).map(Arg::Dep).collect(),
        }),
        deps: head.deps.clone(),
        annotations: tail.annotations.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{chain, evaluate};
    use super::*;

    #[test]
    fn a_chain_becomes_one_task_with_the_same_result() {
        let graph = chain(&["a", "b", "c", "d"]);
        let fused = graph.fuse(&HashSet::from([Key::new("d")]));
        assert_eq!(fused.len(), 1);
        assert_eq!(fused.tasks()[0].key.as_str(), "d");
        assert_eq!(evaluate(&fused, "d"), evaluate(&graph, "d"));
    }

    #[test]
    fn two_chains_into_one_task_fuse_each_and_keep_the_order() {
        // a → b → c and x → y, both inputs of z (two inputs: z is not fused).
        let mut tasks = chain(&["a", "b", "c"]).into_tasks();
        tasks.extend(chain(&["x", "y"]).into_tasks());
        tasks.push(TaskSpec::new(
            Key::new("z"),
            crate::ops::Op::op_ref(&crate::ops::builtin::add),
            vec![Arg::Dep(0), Arg::Dep(1)],
            vec![Key::new("c"), Key::new("y")],
        ));
        let graph: Graph = tasks.iter().cloned().collect();
        let fused = fuse_tasks(tasks, |key| key.as_str() == "z");
        let keys: Vec<&str> = fused.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["c", "y", "z"]);
        let fused: Graph = fused.into_iter().collect();
        assert_eq!(evaluate(&fused, "z"), evaluate(&graph, "z"));
    }

    #[test]
    fn a_failing_step_is_named_by_its_own_key_not_the_fused_tasks() {
        // b's op is unknown to this binary (as a user's op on a stock worker).
        let mut tasks = chain(&["a", "b", "c"]).into_tasks();
        tasks[1].run = Arc::new(RunSpec {
            op: OpRef::Missing(Arc::from("my_crate::score")),
            args: vec![Arg::Dep(0)],
        });
        let fused = fuse_tasks(tasks, |key| key.as_str() == "c");
        assert_eq!(fused.len(), 1);
        let task = &fused[0];
        let inputs = vec![crate::value::Value::new(1u64)];
        let message = task.run.run(&inputs).unwrap_err().message;
        assert!(
            message.starts_with("in b (fused into this task): op `my_crate::score`"),
            "{message}"
        );
        // On the wire the step names travel with the steps.
        let back = task.to_wire().unwrap().into_spec().unwrap();
        let message = back.run.run(&inputs).unwrap_err().message;
        assert!(message.starts_with("in b (fused"), "{message}");
    }

    #[test]
    fn wanted_keys_are_not_fused_away() {
        let graph = chain(&["a", "b", "c"]);
        let fused = graph.fuse(&HashSet::from([Key::new("b"), Key::new("c")]));
        let keys: Vec<&str> = fused.tasks().iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["b", "c"]);
        assert_eq!(evaluate(&fused, "c"), evaluate(&graph, "c"));
    }
}

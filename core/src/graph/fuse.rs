//! Linear fusion: a chain `a → b → c`, where each link is a task's only dependency
//! and its parent's only dependent, becomes one task keyed `c`. Fewer tasks, same
//! parallelism, and no intermediate results stored.

use super::{Arg, Graph, Key, RunSpec, TaskSpec};
use crate::ops::OpRef;
use foldhash::HashMap;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::Arc;

impl Graph {
    /// Fuses linear chains, never fusing away a key in `keep` (keys someone asked for).
    pub fn fuse<S: BuildHasher>(&self, keep: &HashSet<Key, S>) -> Graph {
        let tasks = self.tasks();
        let at: HashMap<&Key, usize> = tasks.iter().enumerate().map(|(i, t)| (&t.key, i)).collect();
        let mut ndependents = vec![0_u32; tasks.len()];
        for task in tasks {
            for dep in &task.deps {
                if let Some(&p) = at.get(dep) {
                    ndependents[p] += 1;
                }
            }
        }
        // parent_of[x] = the task fused into x's front, if any.
        let mut parent_of: Vec<Option<usize>> = vec![None; tasks.len()];
        let mut absorbed = vec![false; tasks.len()];
        for (x, task) in tasks.iter().enumerate() {
            let [dep] = task.deps.as_slice() else {
                continue;
            };
            let Some(&p) = at.get(dep) else { continue };
            let parent = &tasks[p];
            if ndependents[p] == 1
                && !keep.contains(&parent.key)
                && parent.annotations == task.annotations
            {
                parent_of[x] = Some(p);
                absorbed[p] = true;
            }
        }
        tasks
            .iter()
            .enumerate()
            .filter(|(x, _)| !absorbed[*x])
            .map(|(x, task)| {
                let mut chain = vec![x];
                while let Some(p) = parent_of[*chain.last().unwrap_or(&x)] {
                    chain.push(p);
                }
                if chain.len() == 1 {
                    return task.clone();
                }
                chain.reverse();
                fuse_chain(tasks, &chain)
            })
            .collect()
    }
}

/// One task running `chain` (head first) in sequence.
fn fuse_chain(tasks: &[TaskSpec], chain: &[usize]) -> TaskSpec {
    let head = &tasks[chain[0]];
    let tail = &tasks[chain[chain.len() - 1]];
    let ninputs = head.deps.len() as u32;
    let mut steps = Vec::with_capacity(chain.len());
    for (k, &i) in chain.iter().enumerate() {
        let run = &tasks[i].run;
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
            op: OpRef::Fused(Arc::from(steps)),
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
    fn wanted_keys_are_not_fused_away() {
        let graph = chain(&["a", "b", "c"]);
        let fused = graph.fuse(&HashSet::from([Key::new("b"), Key::new("c")]));
        let keys: Vec<&str> = fused.tasks().iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["b", "c"]);
        assert_eq!(evaluate(&fused, "c"), evaluate(&graph, "c"));
    }
}

//! Owners for peer-to-peer shuffles, chosen when a graph is submitted: each
//! output partition goes to one of the workers connected now (round robin by
//! id), the shuffle's layout task is told who, and each output task prefers its
//! owner (see `crate::collections::shuffle`).

use super::{Client, Error};
use crate::graph::{Arg, RunSpec, ShuffleRole, TaskSpec};
use crate::value::Value;
use std::collections::HashSet;
use std::sync::Arc;

impl Client {
    /// Fills in the owners of every shuffle in `tasks`. Without a connected
    /// worker it leaves them to the layout task, which picks its peers.
    pub(crate) fn assign_shuffle_owners(&self, tasks: &mut [TaskSpec]) -> Result<(), Error> {
        let has_shuffle = tasks
            .iter()
            .any(|t| matches!(t.annotations.shuffle, Some(ShuffleRole::Layout { .. })));
        if !has_shuffle {
            return Ok(());
        }
        let mut workers = self.workers()?;
        if workers.is_empty() {
            return Ok(());
        }
        workers.sort_by_key(|w| w.id);
        let owners: Vec<u32> = workers.iter().map(|w| w.id.0).collect();
        let names: Vec<String> = workers.iter().map(|w| w.name.clone()).collect();
        // Shuffles whose layout is in this graph (an output's layout may have
        // been submitted before, with owners of its own).
        let mut in_graph: HashSet<String> = HashSet::new();
        for task in tasks.iter_mut() {
            if let Some(ShuffleRole::Layout { id, .. }) = &task.annotations.shuffle {
                in_graph.insert(id.clone());
                task.run = Arc::new(RunSpec {
                    op: task.run.op.clone(),
                    args: vec![Arg::Value(Value::new(owners.clone()))],
                });
            }
        }
        for task in tasks.iter_mut() {
            if let Some(ShuffleRole::Output { id, part }) = &task.annotations.shuffle {
                if in_graph.contains(id) {
                    task.annotations.workers = vec![names[*part as usize % names.len()].clone()];
                }
            }
        }
        Ok(())
    }
}

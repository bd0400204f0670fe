//! Restarting peer-to-peer shuffles when a worker leaves (Dask restarts its
//! P2P shuffles the same way). A shuffle's transfers pushed shards to every
//! owner, so a lost worker took shards of other workers' inputs with it: no
//! output partition it owned can be gathered again from lineage alone. Every
//! shuffle with an output still to compute is therefore run again from its
//! layout: the layout, transfers and barrier forget their results (receipts
//! that count shards which are gone) and run once more, and the new layout
//! leaves out workers that are gone. Outputs already computed and held
//! elsewhere stay as they are.

use super::ids::WorkerId;
use super::state::{State, TaskId, TaskState};
use crate::graph::ShuffleRole;
use foldhash::HashSet;

impl State {
    /// Runs again, from its layout, every shuffle that has an output still to
    /// compute. Called after a worker was removed.
    pub(crate) fn restart_unfinished_shuffles(&mut self) {
        let mut stages: HashSet<TaskId> = HashSet::default();
        for task in self.tasks.iter().flatten() {
            let is_output = matches!(
                task.annotations().and_then(|a| a.shuffle.as_ref()),
                Some(ShuffleRole::Output { .. })
            );
            if !is_output || matches!(task.state, TaskState::Memory | TaskState::Erred) {
                continue;
            }
            if task.state == TaskState::Released && task.waiters == 0 && task.who_wants.is_empty() {
                continue;
            }
            for &d in &task.deps {
                let key = self.task(d).key.as_str();
                if key.starts_with(ShuffleRole::LAYOUT_KEY_PREFIX) {
                    stages.insert(d);
                } else if key.starts_with(ShuffleRole::BARRIER_KEY_PREFIX) {
                    stages.insert(d);
                    // The barrier's inputs are the transfers.
                    stages.extend(self.task(d).deps.iter().copied());
                }
            }
        }
        if stages.is_empty() {
            return;
        }
        let mut stages: Vec<TaskId> = stages.into_iter().collect();
        stages.sort_unstable();
        tracing::info!(
            tasks = stages.len(),
            "a worker left during a shuffle: running its layout, transfers and barrier again"
        );
        // Stages running now are stopped and placed again once their inputs are back.
        let mut rerun = Vec::new();
        for &t in &stages {
            if self.task(t).state == TaskState::Processing {
                if let Some(w) = self.detach(t) {
                    let key = self.task(t).key.clone();
                    self.release_on(w, key);
                }
                rerun.push(t);
            }
        }
        // Copies of a layout fetched for tasks elsewhere are unknown here: every
        // worker hears it is released, so that nothing there runs again with the
        // old owners (nor hands an old copy back as the new result), and drops
        // the shards of the old run. A finished layout is released everywhere
        // with the other finished stages below.
        let workers: Vec<WorkerId> = self.live_workers().collect();
        for &t in &stages {
            let key = &self.task(t).key;
            if key.as_str().starts_with(ShuffleRole::LAYOUT_KEY_PREFIX)
                && self.task(t).state != TaskState::Memory
            {
                let key = key.clone();
                for &w in &workers {
                    self.release_on(w, key.clone());
                }
            }
        }
        // Finished stages drop every copy: their results describe shards that are gone.
        let finished: Vec<TaskId> = stages
            .iter()
            .copied()
            .filter(|&t| self.task(t).state == TaskState::Memory)
            .collect();
        for &t in &finished {
            self.release_copies(t);
        }
        self.lose_replicas(&finished, &[], rerun);
    }
}

//! Graceful retirement: a retiring worker gets no new work; every result only it
//! holds is copied to another worker first; then it is told to close.

use super::ids::WorkerId;
use super::messages::Command;
use super::state::{State, TaskId, TaskState};
use crate::graph::Key;

impl State {
    pub(crate) fn retire_workers(&mut self, workers: Vec<WorkerId>) {
        for &w in &workers {
            if self.worker(w).is_some() && self.retiring.insert(w) {
                tracing::info!(worker = %w, "retiring worker");
                self.running_workers.retain(|&x| x != w);
            }
        }
        for w in workers {
            self.advance_retirement(w);
        }
    }

    /// Moves a retiring worker's unique data on, or closes it when none is left.
    pub(crate) fn advance_retirement(&mut self, w: WorkerId) {
        if !self.retiring.contains(&w) {
            return;
        }
        let Some(record) = self.worker(w) else {
            self.retiring.remove(&w);
            return;
        };
        if !record.processing.is_empty() {
            return;
        }
        let unique: Vec<TaskId> = record
            .has_what
            .iter()
            .copied()
            .filter(|&t| {
                self.task(t)
                    .who_has
                    .as_slice()
                    .iter()
                    .all(|h| self.retiring.contains(h))
            })
            .collect();
        if unique.is_empty() || self.running_workers.is_empty() {
            if !unique.is_empty() {
                tracing::warn!(worker = %w, keys = unique.len(),
                    "no worker is left to take this worker's data; it will be recomputed if needed");
            }
            self.retiring.remove(&w);
            self.out.push(Command::CloseWorker { worker: w });
            self.remove_worker(w, "retired");
            return;
        }
        for t in unique {
            if !self.replicating.insert(t) {
                continue;
            }
            let Some(target) = self.replica_target() else {
                return;
            };
            let key = self.task(t).key.clone();
            let nbytes = self.task(t).nbytes;
            if let Some(record) = self.worker_mut(target) {
                // Count the copy now, so the next choice spreads the load.
                record.nbytes += nbytes;
            }
            self.out.push(Command::Replicate {
                worker: target,
                key,
                holders: vec![w],
            });
        }
    }

    /// The running worker holding the fewest bytes.
    fn replica_target(&self) -> Option<WorkerId> {
        self.running_workers
            .iter()
            .copied()
            .filter_map(|w| self.worker(w).map(|r| (w, r.nbytes)))
            .min_by_key(|&(w, nbytes)| (nbytes, w))
            .map(|(w, _)| w)
    }

    pub(crate) fn replicated(&mut self, w: WorkerId, key: &Key, nbytes: Option<u64>) {
        let Some(t) = self.id_of(key) else {
            if nbytes.is_some() {
                self.out.push(Command::Release {
                    worker: w,
                    key: key.clone(),
                });
            }
            return;
        };
        self.replicating.remove(&t);
        let task_bytes = self.task(t).nbytes;
        if let Some(record) = self.worker_mut(w) {
            record.nbytes = record.nbytes.saturating_sub(task_bytes);
        }
        match nbytes {
            Some(nbytes)
                if self.task(t).state == TaskState::Memory
                    && self.worker(w).is_some()
                    && self.task_mut(t).who_has.insert(w) =>
            {
                if let Some(record) = self.worker_mut(w) {
                    record.has_what.insert(t);
                    record.nbytes += nbytes;
                }
            }
            Some(_) if self.task(t).who_has.contains(w) => {}
            Some(_) => self.out.push(Command::Release {
                worker: w,
                key: key.clone(),
            }),
            None => {}
        }
        let retiring: Vec<WorkerId> = self.retiring.iter().copied().collect();
        for r in retiring {
            self.advance_retirement(r);
        }
    }
}

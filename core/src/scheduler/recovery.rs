//! Recovery: a worker leaves or dies, or a worker cannot fetch an input. Running
//! tasks are rescheduled, lost results that are still needed are recomputed from
//! lineage, and a task whose workers keep dying fails with "killed worker".

use super::ids::{RunId, WorkerId};
use super::messages::{Report, TaskError};
use super::state::{State, TaskId, TaskState};
use crate::graph::Key;
use foldhash::HashSet;

impl State {
    pub(crate) fn remove_worker(&mut self, w: WorkerId, reason: &str) {
        let Some(record) = self.workers.get_mut(w.0 as usize).and_then(|r| r.take()) else {
            return;
        };
        tracing::info!(worker = %w, name = %record.name, reason, "worker removed");
        self.running_workers.retain(|&x| x != w);
        self.retiring.remove(&w);
        self.forget_copies_of(w);
        self.total_threads -= record.nthreads;

        let mut rerun: Vec<TaskId> = Vec::new();
        let mut killed: Vec<TaskId> = Vec::new();
        for &t in &record.processing {
            let allowed = self.config.allowed_failures;
            let task = self.task_mut(t);
            task.processing_on = None;
            task.suspicious += 1;
            let extra = task.extra_mut();
            extra.steal_to = None;
            extra.killed_on.push(record.name.clone());
            if task.suspicious >= allowed {
                killed.push(t);
            } else {
                rerun.push(t);
            }
        }
        // Tasks that killed too many workers fail first, so that placing the
        // others again (below) cannot pick them up as well.
        for t in killed {
            let task = self.task(t);
            if task.state != TaskState::Processing {
                // Failed already, as a dependent of another killed task.
                continue;
            }
            let names = task
                .extra
                .as_ref()
                .map(|e| e.killed_on.join(", "))
                .unwrap_or_default();
            let error = TaskError::new(
                task.key.clone(),
                format!(
                    "killed worker: {} workers died while running this task (on {names}; last: {reason}). \
                     It may crash its worker, e.g. by running out of memory",
                    task.suspicious
                ),
            );
            self.set_state(t, TaskState::Waiting);
            self.mark_erred(t, error);
        }
        rerun.retain(|&t| self.task(t).state == TaskState::Processing);
        let held: Vec<TaskId> = record.has_what.iter().copied().collect();
        self.lose_replicas(&held, &[w], rerun);
        // Shuffle shards it held are gone too, and the scheduler never saw them.
        self.restart_unfinished_shuffles();
    }

    /// Worker `w` could not fetch `missing` (an input of `key`) from any of
    /// `tried`. Those copies are treated as gone; copies elsewhere (made since
    /// the task was sent, e.g. by a retiring worker) still count, and the task
    /// is placed again with the holders known now.
    pub(crate) fn missing_data(
        &mut self,
        w: WorkerId,
        key: &Key,
        run_id: RunId,
        missing: &Key,
        tried: &[WorkerId],
    ) {
        let Some(m) = self.id_of(missing) else { return };
        tracing::debug!(worker = %w, %key, %missing, ?tried, "worker could not fetch an input");
        let holders: Vec<WorkerId> = self
            .task(m)
            .who_has
            .as_slice()
            .iter()
            .copied()
            .filter(|h| tried.contains(h))
            .collect();
        let mut rerun = Vec::new();
        if let Some(t) = self.answered_task(key, run_id) {
            if self.is_current(t, w, run_id) {
                self.detach(t);
                rerun.push(t);
            }
        }
        for &h in &holders {
            if let Some(worker) = self.worker_mut(h) {
                worker.has_what.remove(&m);
            }
        }
        self.lose_replicas(&[m], &holders, rerun);
    }

    /// Drops `workers`' copies of `held`; results left with no copy are lost.
    /// `rerun` are detached tasks that must be placed again.
    pub(super) fn lose_replicas(
        &mut self,
        held: &[TaskId],
        workers: &[WorkerId],
        mut rerun: Vec<TaskId>,
    ) {
        let mut lost = Vec::new();
        for &t in held {
            let task = self.task_mut(t);
            for &w in workers {
                task.who_has.remove(w);
            }
            if task.who_has.is_empty() && task.state == TaskState::Memory {
                self.set_state(t, TaskState::Released);
                lost.push(t);
            }
        }
        // Dependents that were about to use a lost result must wait for it again.
        let mut recount: Vec<TaskId> = Vec::new();
        for &t in &lost {
            let dependents = self.task(t).dependents.clone();
            for d in dependents {
                match self.task(d).state {
                    TaskState::Processing => {
                        if let Some(w) = self.detach(d) {
                            let key = self.task(d).key.clone();
                            self.release_on(w, key);
                        }
                        rerun.push(d);
                    }
                    TaskState::Queued => rerun.push(d),
                    TaskState::NoWorker => {
                        self.no_worker.remove(&d);
                        rerun.push(d);
                    }
                    TaskState::Waiting => recount.push(d),
                    _ => {}
                }
            }
        }
        for &t in &rerun {
            self.set_state(t, TaskState::Waiting);
        }
        let mut needed = Vec::new();
        let mut unneeded = Vec::new();
        for &t in &lost {
            self.report(t, |key| Report::Lost { key: key.clone() });
            let task = self.task(t);
            if task.waiters > 0 || !task.who_wants.is_empty() {
                needed.push(t);
            } else {
                unneeded.push(t);
            }
        }
        self.make_waiting(&needed);
        let mut seen = HashSet::default();
        for t in rerun.into_iter().chain(recount) {
            if !seen.insert(t) {
                continue;
            }
            let task = self.task(t);
            if task.state != TaskState::Waiting {
                continue;
            }
            let waiting_on = task
                .deps
                .iter()
                .filter(|&&d| self.task(d).state != TaskState::Memory)
                .count() as u32;
            self.task_mut(t).waiting_on = waiting_on;
            if waiting_on == 0 {
                self.ready(t);
            }
        }
        self.settle(unneeded);
    }
}

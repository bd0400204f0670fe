//! Graceful retirement (Dask's `retire_workers`): a retiring worker gets no new
//! work and gives back the tasks it has not started (they go to other workers);
//! once the tasks it is running have finished, every result only it holds is
//! copied to another worker; then it is told to close.
//!
//! Progress is counted, not rescanned: each retirement knows how many copies
//! it is waiting for, so a worker holding 100,000 results costs one scan to
//! start copying and one to check at the end, however the answers arrive.

use super::ids::WorkerId;
use super::messages::Command;
use super::state::{State, TaskId, TaskState};
use crate::graph::Key;

/// Copy rounds a retirement tries before it gives up on data that will not
/// move (it is then recomputed from lineage if needed).
const MAX_COPY_ROUNDS: u32 = 3;

/// Where one worker's retirement stands.
#[derive(Debug, Default)]
pub(crate) struct Retirement {
    /// Copies this retirement asked for and not yet answered.
    copying: u32,
    /// Rounds of copies asked for so far.
    rounds: u32,
    /// Some of its unique keys are being copied for another retiring worker.
    waiting_on_others: bool,
    /// No other worker runs to take its data: it waits for one to join.
    waiting_for_workers: bool,
}

/// One key being copied off a retiring worker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Copy {
    /// The retiring worker that asked for it.
    from: WorkerId,
    /// The worker making the copy.
    to: WorkerId,
}

impl State {
    pub(crate) fn retire_workers(&mut self, workers: Vec<WorkerId>) {
        for w in workers {
            if self.worker(w).is_none() || self.retiring.contains_key(&w) {
                continue;
            }
            tracing::info!(worker = %w, "retiring worker");
            self.retiring.insert(w, Retirement::default());
            self.running_workers.retain(|&x| x != w);
            self.give_back_unstarted(w);
            self.advance_retirement(w);
        }
    }

    /// Asks a retiring worker for every task it has not started; the answers
    /// (steal responses) put them back into placement.
    fn give_back_unstarted(&mut self, w: WorkerId) {
        let Some(record) = self.worker(w) else { return };
        let processing: Vec<TaskId> = record.processing.iter().copied().collect();
        for t in processing {
            let task = self.task_mut(t);
            if task.extra.as_ref().is_some_and(|e| e.steal_to.is_some()) {
                // Already being moved to a thief.
                continue;
            }
            // A steal "to the victim itself" means: back to the scheduler.
            task.extra_mut().steal_to = Some(w);
            let key = task.key.clone();
            self.out.push(Command::Steal { worker: w, key });
        }
    }

    /// Whether `w` is being retired.
    pub(crate) fn is_retiring(&self, w: WorkerId) -> bool {
        self.retiring.contains_key(&w)
    }

    /// Copies a retiring worker's unique data on once it runs nothing, or
    /// closes it when nothing is left to copy.
    pub(crate) fn advance_retirement(&mut self, w: WorkerId) {
        let Some(retirement) = self.retiring.get(&w) else {
            return;
        };
        if retirement.copying > 0 {
            return;
        }
        let rounds = retirement.rounds;
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
                    .all(|h| self.retiring.contains_key(h))
            })
            .collect();
        if !unique.is_empty() && self.running_workers.is_empty() && rounds < MAX_COPY_ROUNDS {
            // Keep the data until a worker joins (a batch job's replacement) or
            // the worker gives up waiting on its own.
            if let Some(retirement) = self.retiring.get_mut(&w) {
                if !retirement.waiting_for_workers {
                    tracing::info!(worker = %w, keys = unique.len(),
                        "retiring worker holds data no other worker has; waiting for a worker to join");
                }
                retirement.waiting_for_workers = true;
            }
            return;
        }
        if unique.is_empty() || rounds >= MAX_COPY_ROUNDS {
            if !unique.is_empty() {
                tracing::warn!(worker = %w, keys = unique.len(), rounds,
                    "no worker took this worker's data; it will be recomputed if needed");
            }
            self.close_retired(w);
            return;
        }
        let mut copying = 0;
        let mut waiting_on_others = false;
        for t in unique {
            if self.replicating.contains_key(&t) {
                waiting_on_others = true;
                continue;
            }
            let Some(target) = self.replica_target() else {
                break;
            };
            let key = self.task(t).key.clone();
            let nbytes = self.task(t).nbytes;
            if let Some(record) = self.worker_mut(target) {
                // Count the copy now, so the next choice spreads the load.
                record.nbytes += nbytes;
            }
            self.replicating.insert(
                t,
                Copy {
                    from: w,
                    to: target,
                },
            );
            copying += 1;
            self.out.push(Command::Replicate {
                worker: target,
                key,
                holders: vec![w],
            });
        }
        if let Some(retirement) = self.retiring.get_mut(&w) {
            retirement.copying = copying;
            retirement.rounds += u32::from(copying > 0);
            retirement.waiting_on_others = waiting_on_others;
            retirement.waiting_for_workers = false;
        }
    }

    /// A worker joined: retirements that had nowhere to copy to go on.
    pub(crate) fn worker_joined_for_retirements(&mut self) {
        let waiting: Vec<WorkerId> = self
            .retiring
            .iter()
            .filter(|(_, r)| r.waiting_for_workers)
            .map(|(&w, _)| w)
            .collect();
        for w in waiting {
            self.advance_retirement(w);
        }
    }

    fn close_retired(&mut self, w: WorkerId) {
        self.retiring.remove(&w);
        self.out.push(Command::CloseWorker { worker: w });
        self.remove_worker(w, "retired");
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
        let copy = match self.replicating.get(&t) {
            Some(copy) if copy.to == w => self.replicating.remove(&t),
            _ => None,
        };
        if copy.is_some() {
            let task_bytes = self.task(t).nbytes;
            if let Some(record) = self.worker_mut(w) {
                record.nbytes = record.nbytes.saturating_sub(task_bytes);
            }
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
        if let Some(copy) = copy {
            self.copy_done(copy.from);
        }
    }

    /// One copy asked for by `from`'s retirement was answered (or can never be).
    fn copy_done(&mut self, from: WorkerId) {
        let Some(retirement) = self.retiring.get_mut(&from) else {
            return;
        };
        retirement.copying = retirement.copying.saturating_sub(1);
        if retirement.copying > 0 {
            return;
        }
        self.advance_retirement(from);
        // Retirements that waited for keys this one was copying may go on now.
        let waiting: Vec<WorkerId> = self
            .retiring
            .iter()
            .filter(|(_, r)| r.waiting_on_others && r.copying == 0)
            .map(|(&w, _)| w)
            .collect();
        for w in waiting {
            if let Some(r) = self.retiring.get_mut(&w) {
                r.waiting_on_others = false;
            }
            self.advance_retirement(w);
        }
    }

    /// Worker `w` is gone: copies it was making will never arrive, and copies
    /// off it (if it was retiring) are moot.
    pub(crate) fn forget_copies_of(&mut self, w: WorkerId) {
        let affected: Vec<(TaskId, Copy)> = self
            .replicating
            .iter()
            .filter(|(_, c)| c.to == w || c.from == w)
            .map(|(&t, &c)| (t, c))
            .collect();
        for (t, copy) in affected {
            self.replicating.remove(&t);
            if copy.to == w && copy.from != w {
                self.copy_done(copy.from);
            } else if copy.to != w {
                // The bytes counted ahead on the copying worker will not come.
                let nbytes = self.task(t).nbytes;
                if let Some(record) = self.worker_mut(copy.to) {
                    record.nbytes = record.nbytes.saturating_sub(nbytes);
                }
            }
        }
    }
}

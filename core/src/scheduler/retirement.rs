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

/// Rounds with failed copies a retirement tolerates before it gives up on
/// data that will not move (it is then recomputed from lineage if needed).
/// Rounds whose copies landed on workers that then retired themselves do not
/// count: the data moved, just not far enough.
const MAX_FAILED_ROUNDS: u32 = 3;
/// How long a retiring worker whose data no other worker can take waits for
/// one to join (a batch job's replacement) before it leaves anyway.
pub const WAIT_FOR_WORKERS: std::time::Duration = std::time::Duration::from_secs(10);

/// Where one worker's retirement stands.
#[derive(Debug, Default)]
pub(crate) struct Retirement {
    /// Copies this retirement asked for and not yet answered.
    copying: u32,
    /// A copy of the current round failed.
    round_failed: bool,
    /// Rounds in which a copy failed.
    failed_rounds: u32,
    /// Some of its unique keys are being copied for another retiring worker.
    waiting_on_others: bool,
    /// No other worker runs to take its data: it waits for one to join,
    /// since this time (on the scheduler's clock).
    waiting_for_workers: Option<std::time::Duration>,
}

/// One key being copied off a retiring worker. Copies are tracked by key, not
/// task id: the task may be forgotten (its client let go) while the copy is
/// under way, and the answer must still count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Copy {
    /// The retiring worker that asked for it.
    from: WorkerId,
    /// The worker making the copy.
    to: WorkerId,
    /// The bytes counted ahead on `to`.
    nbytes: u64,
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
            let (key, run_id) = (task.key.clone(), task.run_id);
            self.out.push(Command::Steal {
                worker: w,
                key,
                run_id,
            });
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
        let failed_rounds = retirement.failed_rounds;
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
        let now = self.now;
        let waited_out = self
            .retiring
            .get(&w)
            .and_then(|r| r.waiting_for_workers)
            .is_some_and(|since| now.saturating_sub(since) >= WAIT_FOR_WORKERS);
        if !unique.is_empty()
            && self.running_workers.is_empty()
            && failed_rounds < MAX_FAILED_ROUNDS
            && !waited_out
        {
            // Keep the data until a worker joins (a batch job's replacement),
            // for a while.
            if let Some(retirement) = self.retiring.get_mut(&w) {
                if retirement.waiting_for_workers.is_none() {
                    tracing::info!(worker = %w, keys = unique.len(),
                        "retiring worker holds data no other worker has; waiting up to {WAIT_FOR_WORKERS:?} for a worker to join");
                    retirement.waiting_for_workers = Some(now);
                }
            }
            return;
        }
        if unique.is_empty() || failed_rounds >= MAX_FAILED_ROUNDS || waited_out {
            if !unique.is_empty() {
                tracing::warn!(worker = %w, keys = unique.len(), failed_rounds,
                    "no worker took this worker's data; it will be recomputed if needed");
            }
            self.close_retired(w);
            return;
        }
        let mut copying = 0;
        let mut waiting_on_others = false;
        for t in unique {
            let key = self.task(t).key.clone();
            if self.replicating.contains_key(&key) {
                waiting_on_others = true;
                continue;
            }
            let Some(target) = self.replica_target() else {
                break;
            };
            let nbytes = self.task(t).nbytes;
            if let Some(record) = self.worker_mut(target) {
                // Count the copy now, so the next choice spreads the load.
                record.nbytes += nbytes;
            }
            let copy = Copy {
                from: w,
                to: target,
                nbytes,
            };
            self.replicating.insert(key.clone(), copy);
            copying += 1;
            self.out.push(Command::Replicate {
                worker: target,
                key,
                holders: vec![w],
                nbytes,
            });
        }
        if let Some(retirement) = self.retiring.get_mut(&w) {
            retirement.copying = copying;
            retirement.round_failed = false;
            retirement.waiting_on_others = waiting_on_others;
            retirement.waiting_for_workers = None;
        }
    }

    /// Retirements that may move on now: their worker runs nothing and none of
    /// their copies is outstanding. Checked after every event, so no path that
    /// empties a worker's queue (a finish, a release, a cascade of failures)
    /// leaves a retirement waiting; waiting ones are woken by what they wait for.
    pub(crate) fn advance_ready_retirements(&mut self) {
        if self.retiring.is_empty() {
            return;
        }
        let ready: Vec<WorkerId> = self
            .retiring
            .iter()
            .filter(|(w, r)| {
                r.copying == 0
                    && !r.waiting_on_others
                    && r.waiting_for_workers.is_none()
                    && self.worker(**w).is_none_or(|rec| rec.processing.is_empty())
            })
            .map(|(&w, _)| w)
            .collect();
        for w in ready {
            self.advance_retirement(w);
        }
    }

    /// A worker joined, or time passed: retirements that had nowhere to copy
    /// to go on (and those that waited long enough leave).
    pub(crate) fn worker_joined_for_retirements(&mut self) {
        let waiting: Vec<WorkerId> = self
            .retiring
            .iter()
            .filter(|(_, r)| r.waiting_for_workers.is_some())
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
        let copy = match self.replicating.get(key) {
            Some(copy) if copy.to == w => self.replicating.remove(key),
            _ => None,
        };
        if let Some(copy) = copy {
            if let Some(record) = self.worker_mut(w) {
                record.nbytes = record.nbytes.saturating_sub(copy.nbytes);
            }
        }
        match (self.id_of(key), nbytes) {
            (None, Some(_)) => self.release_on(w, key.clone()),
            (None, None) | (Some(_), None) => {}
            (Some(t), Some(nbytes))
                if self.task(t).state == TaskState::Memory
                    && self.worker(w).is_some()
                    && self.task_mut(t).who_has.insert(w) =>
            {
                if let Some(record) = self.worker_mut(w) {
                    record.has_what.insert(t);
                    record.nbytes += nbytes;
                }
            }
            (Some(t), Some(_)) if self.task(t).who_has.contains(w) => {}
            // The key is being recomputed on this very worker (its source died
            // and the copy's answer came late): a Release would cancel the task.
            (Some(t), Some(_)) if self.task(t).processing_on == Some(w) => {}
            (Some(_), Some(_)) => self.release_on(w, key.clone()),
        }
        if let Some(copy) = copy {
            self.copy_done(copy.from, nbytes.is_some());
        }
    }

    /// One copy asked for by `from`'s retirement was answered (or can never be).
    fn copy_done(&mut self, from: WorkerId, copied: bool) {
        let Some(retirement) = self.retiring.get_mut(&from) else {
            return;
        };
        retirement.copying = retirement.copying.saturating_sub(1);
        retirement.round_failed |= !copied;
        if retirement.copying > 0 {
            return;
        }
        retirement.failed_rounds += u32::from(retirement.round_failed);
        self.advance_retirement(from);
        self.wake_retirements_waiting_on_others();
    }

    /// Retirements that waited for keys another retirement was copying may go
    /// on now (that one finished a round, or its worker is gone).
    fn wake_retirements_waiting_on_others(&mut self) {
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
        let affected: Vec<(Key, Copy)> = self
            .replicating
            .iter()
            .filter(|(_, c)| c.to == w || c.from == w)
            .map(|(k, &c)| (k.clone(), c))
            .collect();
        let dropped = !affected.is_empty();
        for (key, copy) in affected {
            self.replicating.remove(&key);
            if copy.to == w && copy.from != w {
                self.copy_done(copy.from, false);
            } else if copy.to != w {
                // The bytes counted ahead on the copying worker will not come.
                if let Some(record) = self.worker_mut(copy.to) {
                    record.nbytes = record.nbytes.saturating_sub(copy.nbytes);
                }
            }
        }
        if dropped {
            self.wake_retirements_waiting_on_others();
        }
    }
}

impl State {
    #[doc(hidden)]
    pub fn debug_retirement(&self, w: WorkerId) -> String {
        let r = self.retiring.get(&w);
        let rec = self.worker(w);
        format!(
            "retirement {:?}; processing {:?}; has_what {:?}; copies {:?}; running {:?}",
            r,
            rec.map(|r| r
                .processing
                .iter()
                .map(|&t| (
                    self.task(t).key.to_string(),
                    self.task(t).state,
                    self.task(t).extra.as_ref().and_then(|e| e.steal_to)
                ))
                .collect::<Vec<_>>()),
            rec.map(|r| r
                .has_what
                .iter()
                .map(|&t| (
                    self.task(t).key.to_string(),
                    self.task(t).who_has.as_slice().to_vec()
                ))
                .collect::<Vec<_>>()),
            self.replicating,
            self.running_workers
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::TaskSpec;
    use crate::scheduler::{ClientId, Event};
    use std::time::Duration;

    crate::op! { fn unit() -> u8 { 0 } }

    fn add_worker(state: &mut State, id: u32, at: Duration) -> Vec<Command> {
        state.handle_at(
            at,
            Event::AddWorker {
                worker: WorkerId(id),
                name: format!("w{id}"),
                nthreads: 1,
                resources: vec![],
                memory_limit: 0,
            },
        )
    }

    /// One worker holding the result of `one-1`, which a client wants.
    fn one_result() -> State {
        let mut state = State::new(Default::default());
        add_worker(&mut state, 0, Duration::ZERO);
        let key = Key::new("one-1");
        let task = TaskSpec::new(key.clone(), crate::ops::Op::op_ref(&unit), vec![], vec![]);
        let out = state.handle(Event::UpdateGraph {
            client: ClientId(0),
            tasks: vec![task],
            wanted: vec![key.clone()],
        });
        let Some(Command::Compute { task, .. }) = out.first() else {
            panic!("{out:?}")
        };
        let run_id = task.run_id;
        state.handle(Event::TaskFinished {
            worker: WorkerId(0),
            key,
            run_id,
            nbytes: 8,
            duration_us: 1,
            thread: 0,
        });
        state
    }

    fn closed(out: &[Command]) -> bool {
        out.iter().any(|c| {
            matches!(
                c,
                Command::CloseWorker {
                    worker: WorkerId(0)
                }
            )
        })
    }

    #[test]
    fn the_last_worker_keeps_unique_data_for_a_worker_that_joins() {
        let mut state = one_result();
        let out = state.handle_at(
            Duration::from_secs(1),
            Event::RetireWorkers {
                workers: vec![WorkerId(0)],
            },
        );
        assert!(!closed(&out), "nowhere to copy to yet: {out:?}");
        let out = add_worker(&mut state, 1, Duration::from_secs(5));
        assert!(
            matches!(
                &out[..],
                [Command::Replicate {
                    worker: WorkerId(1),
                    ..
                }]
            ),
            "{out:?}"
        );
        let out = state.handle_at(
            Duration::from_secs(6),
            Event::Replicated {
                worker: WorkerId(1),
                key: Key::new("one-1"),
                nbytes: Some(8),
            },
        );
        assert!(closed(&out), "{out:?}");
        assert_eq!(state.who_has(&Key::new("one-1")), [WorkerId(1)]);
    }

    #[test]
    fn the_last_worker_leaves_after_waiting_for_a_worker() {
        let mut state = one_result();
        state.handle_at(
            Duration::from_secs(1),
            Event::RetireWorkers {
                workers: vec![WorkerId(0)],
            },
        );
        let out = state.handle_at(Duration::from_secs(5), Event::Balance);
        assert!(!closed(&out), "still waiting: {out:?}");
        let out = state.handle_at(Duration::from_secs(1) + WAIT_FOR_WORKERS, Event::Balance);
        assert!(closed(&out), "{out:?}");
    }
}

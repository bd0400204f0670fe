//! Placement: which worker runs a ready task.
//!
//! Root-ish tasks (many tasks of one group with few inputs) wait in a queue and are
//! released to workers with room, so workers never load all inputs at once (Dask's
//! worker-saturation). Other tasks go where they can start earliest: estimated
//! queued work plus the time to fetch the inputs a worker lacks.

use super::ids::WorkerId;
use super::state::{Group, Prefix, State, TaskId, TaskState, WorkerRecord};
use std::sync::Arc;

/// Above this many workers, placement scores the workers holding inputs plus a sample.
const SCORE_ALL_WORKERS_UP_TO: usize = 64;
/// Short tasks may be pipelined up to this many per thread beyond the saturation limit.
const MAX_PIPELINED_PER_THREAD: f64 = 1024.0;

impl State {
    /// Dask's `is_rootish`: a big group with few inputs, and no placement
    /// restrictions or preferences.
    pub(crate) fn is_rootish(&self, t: TaskId) -> bool {
        let task = self.task(t);
        if task.annotations().is_some_and(|a| a.guides_placement()) {
            return false;
        }
        let group = &self.groups[task.group as usize];
        group.size > 2 * self.total_threads && group.external_deps < 5
    }

    /// How many tasks like `t` a worker may hold at once.
    fn slots(&self, worker: &WorkerRecord, t: TaskId) -> usize {
        let nthreads = f64::from(worker.nthreads);
        let base = (self.config.worker_saturation * nthreads).ceil().max(1.0);
        let pipelined = match self.known_duration(t) {
            Some(d) if self.config.pipeline_seconds > 0.0 => {
                (nthreads * self.config.pipeline_seconds / d.max(1e-9))
                    .min(nthreads * MAX_PIPELINED_PER_THREAD)
                    .floor()
            }
            _ => 0.0,
        };
        base.max(pipelined) as usize
    }

    /// Whether `t` would finish on `worker` before the worker's lifetime ends.
    fn finishes_in_time(&self, worker: &WorkerRecord, t: TaskId) -> bool {
        worker.deadline.is_none_or(|end| {
            let queued = worker.occupancy / f64::from(worker.nthreads);
            std::time::Duration::try_from_secs_f64(queued + self.duration_estimate(t))
                .ok()
                .and_then(|needed| self.now.checked_add(needed))
                .is_some_and(|done| done < end)
        })
    }

    /// The least busy worker that still has room for root-ish task `t`.
    pub(crate) fn worker_with_room(&self, t: TaskId) -> Option<WorkerId> {
        self.running_workers
            .iter()
            .filter_map(|&w| self.worker(w).map(|r| (w, r)))
            .filter(|(_, r)| r.processing.len() < self.slots(r, t) && self.finishes_in_time(r, t))
            .min_by(|(a, ra), (b, rb)| {
                let la = ra.processing.len() as f64 / f64::from(ra.nthreads);
                let lb = rb.processing.len() as f64 / f64::from(rb.nthreads);
                la.total_cmp(&lb).then(a.cmp(b))
            })
            .map(|(w, _)| w)
    }

    /// Releases queued root-ish tasks to worker `w` while it has room.
    pub(crate) fn fill_from_queue(&mut self, w: WorkerId) {
        if self.retiring.contains_key(&w) {
            return;
        }
        while let Some(&(priority, t)) = self.queued.peek() {
            let live = self.tasks[t as usize]
                .as_ref()
                .is_some_and(|task| task.state == TaskState::Queued && task.priority == priority);
            if !live {
                self.queued.pop();
                continue;
            }
            let Some(worker) = self.worker(w) else { return };
            if worker.processing.len() >= self.slots(worker, t) || !self.finishes_in_time(worker, t)
            {
                return;
            }
            self.queued.pop();
            self.assign(t, w);
        }
    }

    /// The worker where a non-root task would start earliest, among those allowed to run it.
    pub(crate) fn decide_worker(&self, t: TaskId) -> Option<WorkerId> {
        let task = self.task(t);
        let annotations = task.annotations();
        let allowed = |r: &WorkerRecord| -> bool {
            let Some(a) = annotations else { return true };
            let named =
                a.workers.is_empty() || a.allow_other_workers || a.workers.contains(&r.name);
            let resourced = a.resources.iter().all(|(name, need)| {
                r.resources
                    .iter()
                    .any(|(n, have)| n == name && have >= need)
            });
            named && resourced
        };
        let mut candidates: Vec<WorkerId> =
            if self.running_workers.len() <= SCORE_ALL_WORKERS_UP_TO {
                self.running_workers.clone()
            } else {
                let mut some: Vec<WorkerId> = task
                    .deps
                    .iter()
                    .flat_map(|&d| self.task(d).who_has.as_slice().iter().copied())
                    .collect();
                // Plus a rotating sample, so idle workers get considered.
                let n = self.running_workers.len();
                let start = (t as usize) % n;
                some.extend((0..16).map(|i| self.running_workers[(start + i) % n]));
                // Plus the workers it names.
                if let Some(a) = annotations.filter(|a| !a.workers.is_empty()) {
                    some.extend(
                        self.running_workers.iter().copied().filter(|&w| {
                            self.worker(w).is_some_and(|r| a.workers.contains(&r.name))
                        }),
                    );
                }
                some.sort_unstable();
                some.dedup();
                some
            };
        candidates.retain(|&w| {
            self.worker(w)
                .is_some_and(|r| allowed(r) && self.finishes_in_time(r, t))
        });
        // Loose restrictions (Dask's `allow_other_workers`): the named workers
        // when one of them can run the task, any other otherwise.
        if let Some(a) = annotations.filter(|a| a.allow_other_workers && !a.workers.is_empty()) {
            let named = |w: &WorkerId| self.worker(*w).is_some_and(|r| a.workers.contains(&r.name));
            if candidates.iter().any(named) {
                candidates.retain(named);
            }
        }
        candidates
            .into_iter()
            .filter_map(|w| self.worker(w).map(|r| (w, r)))
            .map(|(w, r)| {
                let missing: u64 = task
                    .deps
                    .iter()
                    .map(|&d| self.task(d))
                    .filter(|dep| !dep.who_has.contains(w))
                    .map(|dep| dep.nbytes)
                    .sum();
                let start =
                    r.occupancy / f64::from(r.nthreads) + missing as f64 / self.config.bandwidth;
                (start, r.processing.len(), w)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)))
            .map(|(_, _, w)| w)
    }

    // ---- durations and groups ---------------------------------------------------

    fn prefix_of(&self, t: TaskId) -> &Prefix {
        let group = &self.groups[self.task(t).group as usize];
        &self.prefixes[group.prefix as usize]
    }

    /// The learned duration of tasks like `t`, if one has run.
    pub(crate) fn known_duration(&self, t: TaskId) -> Option<f64> {
        self.prefix_of(t).duration
    }

    /// Estimated run time of `t`, seconds.
    pub(crate) fn duration_estimate(&self, t: TaskId) -> f64 {
        self.known_duration(t)
            .unwrap_or(self.config.unknown_task_duration)
    }

    /// Folds a measured duration into the estimate (an even exponential average, as Dask).
    pub(crate) fn learn_duration(&mut self, t: TaskId, seconds: f64) {
        let group = self.task(t).group;
        let prefix = self.groups[group as usize].prefix as usize;
        let slot = &mut self.prefixes[prefix].duration;
        *slot = Some(match *slot {
            Some(old) => 0.5 * old + 0.5 * seconds,
            None => seconds,
        });
    }

    /// The group id for `key`, creating the group (and its prefix) if new.
    /// The task joins in state `Released`.
    pub(crate) fn join_group(&mut self, key: &crate::graph::Key) -> u32 {
        if let Some(&g) = self.group_ids.get(key.group()) {
            let group = &mut self.groups[g as usize];
            group.size += 1;
            group.states[TaskState::Released as usize] += 1;
            return g;
        }
        let prefix = match self.prefix_ids.get(key.prefix()) {
            Some(&p) => p,
            None => {
                let p = self.prefixes.len() as u32;
                self.prefixes.push(Prefix {
                    duration: None,
                    name: Arc::from(key.prefix()),
                });
                self.prefix_ids.insert(Arc::from(key.prefix()), p);
                p
            }
        };
        let mut states = [0; TaskState::COUNT];
        states[TaskState::Released as usize] = 1;
        let group = Group {
            size: 1,
            external_deps: 0,
            prefix,
            name: Arc::from(key.group()),
            states,
            finished: 0,
            inputs: Vec::new(),
        };
        let g = match self.free_groups.pop() {
            Some(g) => {
                self.groups[g as usize] = group;
                g
            }
            None => {
                self.groups.push(group);
                self.groups.len() as u32 - 1
            }
        };
        self.group_ids.insert(Arc::from(key.group()), g);
        g
    }

    /// A task of group `g`, in `state`, was forgotten.
    pub(crate) fn leave_group(&mut self, g: u32, state: TaskState) {
        let group = &mut self.groups[g as usize];
        group.size = group.size.saturating_sub(1);
        let count = &mut group.states[state as usize];
        *count = count.saturating_sub(1);
        if group.size == 0 {
            let name = group.name.clone();
            if self.group_ids.get(&name) == Some(&g) {
                self.group_ids.remove(&name);
                self.free_groups.push(g);
            }
        }
    }
}

//! Work stealing: on each balance tick, idle workers take tasks that busy workers
//! have not started, preferring tasks cheap to move (few input bytes for their
//! expected run time), as Dask's stealing does.

use super::ids::{RunId, WorkerId};
use super::messages::Command;
use super::state::{State, TaskId, TaskState};

/// Tasks whose inputs take longer than this multiple of their run time to move stay put.
const MAX_TRANSFER_TO_COMPUTE: f64 = 2.0;
/// At most this many of a victim's tasks are looked at per tick.
const SCAN_LIMIT: usize = 256;

impl State {
    pub(crate) fn balance(&mut self) {
        self.worker_joined_for_retirements();
        let mut thieves: Vec<(WorkerId, usize)> = self
            .running_workers
            .iter()
            .filter_map(|&w| {
                let r = self.worker(w)?;
                let room = (r.nthreads as usize).saturating_sub(r.processing.len());
                (room > 0).then_some((w, room))
            })
            .collect();
        if thieves.is_empty() {
            return;
        }
        let mut victims: Vec<(WorkerId, usize)> = self
            .running_workers
            .iter()
            .filter_map(|&w| {
                let r = self.worker(w)?;
                let excess = r.processing.len().saturating_sub(r.nthreads as usize);
                (excess > 0).then_some((w, excess))
            })
            .collect();
        victims.sort_by_key(|&(w, excess)| (std::cmp::Reverse(excess), w));
        for (victim, excess) in victims {
            let mut movable = self.movable_tasks(victim);
            // Move at most half the excess: the victim keeps some to stay busy.
            let mut budget = excess.div_ceil(2);
            for (thief, room) in thieves.iter_mut() {
                while *room > 0 && budget > 0 {
                    let Some(t) = movable.pop() else { break };
                    let (key, run_id) = (self.task(t).key.clone(), self.task(t).run_id);
                    self.task_mut(t).extra_mut().steal_to = Some(*thief);
                    self.out.push(Command::Steal {
                        worker: victim,
                        key,
                        run_id,
                    });
                    *room -= 1;
                    budget -= 1;
                }
            }
            thieves.retain(|&(_, room)| room > 0);
            if thieves.is_empty() {
                return;
            }
        }
    }

    /// Tasks on `victim` worth moving, the best to steal last in the vector.
    fn movable_tasks(&self, victim: WorkerId) -> Vec<TaskId> {
        let Some(record) = self.worker(victim) else {
            return Vec::new();
        };
        let mut scored: Vec<(f64, TaskId)> = record
            .processing
            .iter()
            .take(SCAN_LIMIT)
            .copied()
            .filter(|&t| {
                let task = self.task(t);
                task.extra
                    .as_ref()
                    .is_none_or(|e| e.steal_to.is_none() && e.annotations.is_none())
            })
            .filter_map(|t| {
                let bytes: u64 = self.task(t).deps.iter().map(|&d| self.task(d).nbytes).sum();
                let ratio =
                    (bytes as f64 / self.config.bandwidth) / self.duration_estimate(t).max(1e-6);
                (ratio <= MAX_TRANSFER_TO_COMPUTE).then_some((ratio, t))
            })
            .collect();
        // Cheapest to move and latest in priority go first (popped from the end).
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then(self.task(a.1).priority.cmp(&self.task(b.1).priority))
        });
        scored.into_iter().map(|(_, t)| t).collect()
    }

    pub(crate) fn steal_response(
        &mut self,
        victim: WorkerId,
        key: &crate::graph::Key,
        run_id: RunId,
        stolen: bool,
    ) {
        let Some(t) = self.answered_task(key, run_id) else {
            return;
        };
        if !self.is_current(t, victim, run_id) {
            return;
        }
        let thief = self.task(t).extra.as_ref().and_then(|e| e.steal_to);
        let Some(thief) = thief else { return };
        if let Some(extra) = self.task_mut(t).extra.as_mut() {
            extra.steal_to = None;
        }
        if !stolen {
            return;
        }
        self.detach(t);
        self.set_state(t, TaskState::Waiting);
        // A steal to the victim itself gives the task back to placement (retirement).
        if thief != victim && self.worker(thief).is_some() && !self.is_retiring(thief) {
            self.assign(t, thief);
        } else {
            self.ready(t);
        }
        self.fill_from_queue(victim);
        self.advance_retirement(victim);
    }
}

//! What adaptive scaling asks the scheduler: how many workers it wants
//! (Dask's `adaptive_target`) and which workers to close first.

use super::ids::WorkerId;
use super::state::{State, TaskState};

/// Seconds of queued work one worker should have by default (Dask's `target_duration`).
pub const TARGET_DURATION: f64 = 5.0;
/// Stored data above this fraction of the memory limit asks for more workers.
pub const MEMORY_FRACTION: f64 = 0.6;

impl State {
    /// How many workers the scheduler would like: enough to finish the queued and
    /// running work in `config.target_duration` seconds (at most one per ready or running
    /// task), twice as many when stored data passes 60% of the memory limit, and
    /// at least one while anything is left to run.
    pub fn adaptive_target(&self) -> u32 {
        let mut busy_tasks = 0usize;
        let mut queued_seconds = 0.0;
        for (t, task) in self.tasks.iter().enumerate() {
            let Some(task) = task else { continue };
            match task.state {
                TaskState::Queued | TaskState::NoWorker => {
                    busy_tasks += 1;
                    queued_seconds += self.duration_estimate(t as u32);
                }
                TaskState::Processing => busy_tasks += 1,
                _ => {}
            }
        }
        let mut occupancy = queued_seconds;
        let mut stored = 0u64;
        let mut limit = 0u64;
        for record in self.workers.iter().flatten() {
            occupancy += record.occupancy;
            stored += record.nbytes;
            limit += record.memory_limit;
        }
        let threads_per_worker = if self.running_workers.is_empty() {
            1.0
        } else {
            f64::from(self.total_threads.max(1)) / self.running_workers.len() as f64
        };
        let cpu = ((occupancy / self.config.target_duration.max(1e-3) / threads_per_worker).ceil()
            as usize)
            .min(busy_tasks)
            .max(usize::from(busy_tasks > 0));
        let current = self.running_workers.len();
        let memory = if limit > 0 && stored as f64 > MEMORY_FRACTION * limit as f64 {
            2 * current
        } else {
            0
        };
        cpu.max(memory) as u32
    }

    /// The `n` workers to close first: idle ones holding the least data, keeping
    /// enough memory on the others for twice the data stored.
    pub fn workers_to_close(&self, n: usize) -> Vec<WorkerId> {
        let mut idle: Vec<(WorkerId, u64, u64)> = self
            .running_workers
            .iter()
            .filter_map(|&w| self.worker(w).map(|r| (w, r)))
            .filter(|(_, r)| r.processing.is_empty())
            .map(|(w, r)| (w, r.nbytes, r.memory_limit))
            .collect();
        idle.sort_by_key(|&(w, nbytes, _)| (nbytes, w));
        let stored: u64 = self.workers.iter().flatten().map(|r| r.nbytes).sum();
        let mut remaining_limit: u64 = self
            .running_workers
            .iter()
            .filter_map(|&w| self.worker(w))
            .map(|r| r.memory_limit)
            .sum();
        let mut chosen = Vec::new();
        for (w, _, limit) in idle {
            if chosen.len() >= n {
                break;
            }
            let after = remaining_limit.saturating_sub(limit);
            if limit > 0 && stored > 0 && after < 2 * stored {
                break;
            }
            remaining_limit = after;
            chosen.push(w);
        }
        chosen
    }

    /// Sum of the estimated seconds of work assigned to workers.
    pub fn total_occupancy(&self) -> f64 {
        self.workers.iter().flatten().map(|r| r.occupancy).sum()
    }
}

//! Adaptive scaling decisions, kept apart from the batch commands so they can
//! be tested alone.
//!
//! - The scheduler says how many workers it wants (`adaptive_target`); the
//!   launcher keeps that within `[minimum, maximum]`.
//! - Scaling up submits whole jobs, with at most `backlog` jobs pending at once.
//! - Scaling down retires whole jobs, and only jobs whose every worker the
//!   scheduler would close, `wait_count` decisions in a row. Retiring single
//!   workers of a multi-worker job made dask-jobqueue resubmit the job
//!   (adaptive flapping, jobqueue #498).
//! - After a failed submission it waits, as HyperQueue does: 0, 60 s, 15 min,
//!   30 min, then an hour between tries.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long to wait after the n-th failed submission in a row (HyperQueue's schedule).
pub const BACKOFF: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_secs(60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
];

/// Bounds and pacing of adaptive scaling.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptivePolicy {
    /// Fewest workers.
    pub minimum: u32,
    /// Most workers.
    pub maximum: u32,
    /// Decisions in a row a job must be idle before it is retired.
    pub wait_count: u32,
}

impl AdaptivePolicy {
    /// The scheduler's wish, within bounds.
    pub fn target(&self, scheduler_target: u32) -> u32 {
        scheduler_target.clamp(self.minimum, self.maximum.max(self.minimum))
    }
}

/// Jobs to submit so that `planned` workers (connected or on their way) reach
/// `target`, with `processes` workers per job and at most `backlog` jobs
/// pending (of which `pending` already are).
pub fn jobs_to_submit(
    target: u32,
    planned: u32,
    processes: u32,
    pending: usize,
    backlog: usize,
) -> usize {
    if target <= planned {
        return 0;
    }
    let wanted = (target - planned).div_ceil(processes.max(1)) as usize;
    wanted.min(backlog.saturating_sub(pending))
}

/// Counts how many decisions in a row each job was found idle, and says which
/// to retire once that reaches `wait_count`.
#[derive(Debug, Default)]
pub struct Hysteresis {
    counts: HashMap<String, u32>,
}

impl Hysteresis {
    /// `idle` are the jobs that could go now (every worker idle), best first;
    /// `excess` how many jobs too many there are. Returns the jobs to retire.
    pub fn retire(&mut self, idle: &[String], excess: usize, wait_count: u32) -> Vec<String> {
        let considered: Vec<String> = idle.iter().take(excess).cloned().collect();
        self.counts.retain(|job, _| considered.contains(job));
        let mut out = Vec::new();
        for job in considered {
            let count = self.counts.entry(job.clone()).or_insert(0);
            *count += 1;
            if *count >= wait_count.max(1) {
                out.push(job);
            }
        }
        for job in &out {
            self.counts.remove(job);
        }
        out
    }

    /// Forgets all counts (after scaling up, or a manual scale).
    pub fn reset(&mut self) {
        self.counts.clear();
    }
}

/// Submission pacing after failures.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: usize,
    not_before: Option<Instant>,
}

impl Backoff {
    /// Whether a submission may be tried at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    /// A submission failed at `now`; returns how long until the next try.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let wait = BACKOFF[self.failures.min(BACKOFF.len() - 1)];
        self.failures += 1;
        self.not_before = Some(now + wait);
        wait
    }

    /// A submission went through.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.not_before = None;
    }

    /// Failed submissions in a row.
    pub fn failures(&self) -> usize {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_stay_within_bounds() {
        let policy = AdaptivePolicy {
            minimum: 1,
            maximum: 3,
            wait_count: 2,
        };
        assert_eq!(policy.target(0), 1);
        assert_eq!(policy.target(2), 2);
        assert_eq!(policy.target(40), 3);
    }

    #[test]
    fn submissions_are_whole_jobs_within_the_backlog() {
        assert_eq!(jobs_to_submit(3, 0, 1, 0, 4), 3);
        assert_eq!(jobs_to_submit(3, 0, 2, 0, 4), 2);
        assert_eq!(jobs_to_submit(8, 0, 1, 1, 4), 3);
        assert_eq!(jobs_to_submit(2, 2, 1, 0, 4), 0);
        assert_eq!(jobs_to_submit(5, 1, 1, 4, 4), 0);
    }

    #[test]
    fn jobs_retire_after_wait_count_idle_decisions_in_a_row() {
        let mut h = Hysteresis::default();
        let idle = vec!["1".to_string(), "2".to_string()];
        assert!(h.retire(&idle, 1, 3).is_empty());
        assert!(h.retire(&idle, 1, 3).is_empty());
        // Busy again: the count starts over.
        assert!(h.retire(&[], 0, 3).is_empty());
        assert!(h.retire(&idle, 1, 3).is_empty());
        assert!(h.retire(&idle, 1, 3).is_empty());
        assert_eq!(h.retire(&idle, 1, 3), vec!["1".to_string()]);
    }

    #[test]
    fn backoff_follows_the_schedule() {
        let mut b = Backoff::default();
        let now = Instant::now();
        assert!(b.ready(now));
        assert_eq!(b.failed(now), Duration::ZERO);
        assert!(b.ready(now));
        assert_eq!(b.failed(now), Duration::from_secs(60));
        assert!(!b.ready(now + Duration::from_secs(59)));
        assert!(b.ready(now + Duration::from_secs(60)));
        for _ in 0..5 {
            b.failed(now);
        }
        assert_eq!(b.failed(now), Duration::from_secs(3600));
        b.succeeded();
        assert!(b.ready(now));
        assert_eq!(b.failures(), 0);
    }
}

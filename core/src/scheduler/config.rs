//! Scheduler settings, with Dask's defaults where Dask has one.

use super::adaptive::TARGET_DURATION;

/// Tunables of the scheduler state machine.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Root-ish tasks are released to a worker while it runs fewer than
    /// `ceil(worker_saturation × nthreads)` tasks (Dask's `worker-saturation`, 1.1).
    /// `f64::INFINITY` turns queuing off.
    pub worker_saturation: f64,
    /// Short root-ish tasks may fill a worker beyond the saturation limit, up to this
    /// many seconds of estimated work per thread, so that a worker is never starved
    /// while a round trip to the scheduler is under way. 0 disables it.
    pub pipeline_seconds: f64,
    /// A task fails with "killed worker" once this many workers died while running it.
    pub allowed_failures: u32,
    /// Assumed network bandwidth for placement, bytes/s (Dask: 100 MB/s).
    pub bandwidth: f64,
    /// Duration assumed for a task whose kind has never run, seconds (Dask: 0.5).
    pub unknown_task_duration: f64,
    /// Seconds of queued work one worker should have when adaptive scaling asks
    /// for workers (Dask's `target_duration`, 5 s).
    pub target_duration: f64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            worker_saturation: 1.1,
            pipeline_seconds: 0.002,
            allowed_failures: 3,
            bandwidth: 100e6,
            unknown_task_duration: 0.5,
            target_duration: TARGET_DURATION,
        }
    }
}

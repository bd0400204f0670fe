//! Requests about the cluster itself (its jobs, its size), which the scheduler
//! passes on to the launcher that started it (`rask cluster up`), and the
//! launcher's answers (the wire types). A scheduler started alone answers them
//! with an error.

use serde::{Deserialize, Serialize};

/// A client's request to the cluster's launcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClusterRequest {
    /// The jobs and workers now.
    Status,
    /// Run this many workers (Dask's `cluster.scale(n)`); stops adaptive scaling.
    Scale {
        /// Workers wanted.
        workers: u32,
    },
    /// Scale between `minimum` and `maximum` workers by load (Dask's `cluster.adapt`).
    Adapt {
        /// Fewest workers.
        minimum: u32,
        /// Most workers.
        maximum: u32,
    },
}

/// One batch job as the launcher sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// The batch system's job id.
    pub id: String,
    /// `pending`, `running`, `retiring`, `finished`, `failed` (lower case).
    pub state: String,
    /// Workers of this job connected now.
    pub workers: u32,
    /// Seconds until its walltime ends, when it has one and runs.
    pub remaining_seconds: Option<u64>,
}

/// The launcher's view of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// `slurm`, `pbs`, `sge`, `lsf`.
    pub backend: String,
    /// Workers connected.
    pub workers: u32,
    /// Workers the launcher is working towards.
    pub target: u32,
    /// Adaptive bounds, when adapting.
    pub adaptive: Option<(u32, u32)>,
    /// Jobs submitted and not yet gone.
    pub jobs: Vec<JobSummary>,
    /// Jobs submitted since the start.
    pub submitted: u32,
}

//! The config's shape, key for key with dask-jobqueue.

use super::values::{Memory, Name, Text, Walltime};
use serde::Deserialize;

/// Adaptive scaling bounds and pacing (Dask's `adapt(minimum, maximum, ...)`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Adaptive {
    /// Fewest workers.
    #[serde(default)]
    pub minimum: usize,
    /// Most workers.
    pub maximum: usize,
    /// Times in a row a worker must be idle before it is retired.
    #[serde(default = "default_wait_count")]
    pub wait_count: usize,
    /// Seconds between decisions.
    #[serde(default = "default_interval")]
    pub interval: f64,
    /// Seconds of work a worker should have queued.
    #[serde(default = "default_target_duration")]
    pub target_duration: f64,
    /// Most jobs waiting in the queue at once (HyperQueue's backlog).
    #[serde(default = "default_backlog")]
    pub backlog: usize,
}

fn default_wait_count() -> usize {
    3
}
fn default_interval() -> f64 {
    1.0
}
fn default_target_duration() -> f64 {
    5.0
}
fn default_backlog() -> usize {
    8
}

/// A batch-system backend's settings (dask-jobqueue's keys).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JobQueue {
    /// Job name.
    #[serde(default = "default_name")]
    pub name: Name,
    /// Cores per job.
    pub cores: usize,
    /// Memory per job.
    pub memory: Memory,
    /// Worker processes per job (the cores and memory are split between them).
    #[serde(default = "default_processes")]
    pub processes: usize,
    /// Queue (SLURM partition).
    #[serde(default)]
    pub queue: Option<Name>,
    /// Account to charge (SLURM, PBS).
    #[serde(default)]
    pub account: Option<Name>,
    /// Project (Grid Engine, LSF).
    #[serde(default)]
    pub project: Option<Name>,
    /// Wall-clock limit per job.
    #[serde(default)]
    pub walltime: Option<Walltime>,
    /// Extra scheduler directives, one per line, without the prefix.
    #[serde(default)]
    pub job_extra_directives: Vec<Text>,
    /// Directives to leave out (any containing one of these strings).
    #[serde(default)]
    pub job_directives_skip: Vec<Text>,
    /// Shell lines run before the worker starts (these run by design).
    #[serde(default)]
    pub job_script_prologue: Vec<Text>,
    /// Shell lines run after the worker exits.
    #[serde(default)]
    pub job_script_epilogue: Vec<Text>,
    /// Extra arguments for `rask worker`.
    #[serde(default)]
    pub worker_extra_args: Vec<Text>,
    /// Network interface the worker serves data on.
    #[serde(default)]
    pub interface: Option<Name>,
    /// Seconds a worker waits for an unreachable scheduler before exiting.
    #[serde(default)]
    pub death_timeout: Option<u64>,
    /// Where workers spill data.
    #[serde(default)]
    pub local_directory: Option<Text>,
    /// Where job stdout/stderr files go.
    #[serde(default)]
    pub log_directory: Option<Text>,
    /// Resource request (`-l` of PBS and Grid Engine, `-R` of LSF).
    #[serde(default)]
    pub resource_spec: Option<Text>,
    /// SLURM: CPUs to request, if not `cores`.
    #[serde(default)]
    pub job_cpu: Option<usize>,
    /// SLURM: memory to request, if not `memory`.
    #[serde(default)]
    pub job_mem: Option<Memory>,
    /// The first line of the script.
    #[serde(default = "default_shebang")]
    pub shebang: Text,
    /// The `rask` program on the compute nodes (dask-jobqueue's `python`);
    /// by default the executable that renders the script (the `rask` that runs
    /// `cluster up`), as dask-jobqueue uses `sys.executable`.
    #[serde(default)]
    pub rask: Option<Text>,
    /// Adaptive scaling.
    #[serde(default)]
    pub adaptive: Option<Adaptive>,
}

fn default_name() -> Name {
    Name("rask-worker".into())
}
fn default_processes() -> usize {
    1
}
fn default_shebang() -> Text {
    Text("#!/usr/bin/env bash".into())
}

/// Workers on this machine.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Local {
    /// Worker processes.
    #[serde(default = "default_processes")]
    pub workers: usize,
    /// Threads per worker.
    #[serde(default = "default_processes")]
    pub threads_per_worker: usize,
    /// Memory limit per worker.
    #[serde(default)]
    pub memory_limit: Option<Memory>,
    /// Adaptive scaling.
    #[serde(default)]
    pub adaptive: Option<Adaptive>,
}

/// Workers as pods on Kubernetes, made and deleted by `rask cluster up`
/// itself, beside a scheduler pod and its service (the keys of
/// dask-kubernetes' KubeCluster, in this file's kebab-case).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Kubernetes {
    /// The cluster's name (its pods are `{name}-default-{i}`): lowercase
    /// letters, digits and `-`.
    #[serde(default = "default_kubernetes_name")]
    pub name: String,
    /// The namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The image (default: `localhost/rask:latest`).
    #[serde(default)]
    pub image: Option<String>,
    /// Workers (Dask's `n_workers`), unless `adaptive` is set.
    #[serde(default)]
    pub workers: Option<u32>,
    /// Threads per worker.
    #[serde(default)]
    pub threads: Option<u32>,
    /// The workers' resource requests and limits (`{requests: {cpu, memory}, limits: {memory}}`).
    #[serde(default)]
    pub resources: Option<serde_json::Value>,
    /// Environment variables of every pod.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Labels of every pod.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The scheduler service's type: `ClusterIP`, `NodePort` or `LoadBalancer`.
    #[serde(default = "default_service_type")]
    pub service_type: String,
    /// A Secret with key `token` that clients and workers present.
    #[serde(default)]
    pub token_secret: Option<String>,
    /// A Secret with `ca.crt`, `tls.crt` and `tls.key` for mutual TLS
    /// (as cert-manager writes them).
    #[serde(default)]
    pub tls_secret: Option<String>,
    /// Adaptive scaling (a worker leaves after `wait-count` decisions of
    /// `interval` seconds with less work).
    #[serde(default)]
    pub adaptive: Option<Adaptive>,
}

fn default_kubernetes_name() -> String {
    "rask".into()
}
fn default_namespace() -> String {
    "default".into()
}
fn default_service_type() -> String {
    "ClusterIP".into()
}

/// Which system runs the workers.
#[derive(Clone, Debug, PartialEq)]
pub enum Backend {
    /// Processes on this machine.
    Local(Local),
    /// SLURM (sbatch, squeue, scancel).
    Slurm(JobQueue),
    /// PBS / Torque (qsub, qstat, qdel).
    Pbs(JobQueue),
    /// Grid Engine (qsub, qstat, qdel).
    Sge(JobQueue),
    /// LSF (bsub, bjobs, bkill).
    Lsf(JobQueue),
    /// Pods on Kubernetes.
    Kubernetes(Kubernetes),
}

/// A checked cluster config.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// The backend and its settings.
    pub backend: Backend,
}

/// The whole file: the backend sections, optionally under dask-jobqueue's
/// `jobqueue:` key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    jobqueue: Option<Box<File>>,
    local: Option<Local>,
    slurm: Option<JobQueue>,
    pbs: Option<JobQueue>,
    sge: Option<JobQueue>,
    lsf: Option<JobQueue>,
    kubernetes: Option<Kubernetes>,
}

/// A failed check: the key to point at, and the message.
type Invalid = (Option<&'static str>, String);

impl Backend {
    /// The backend's section name.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Local(_) => "local",
            Backend::Slurm(_) => "slurm",
            Backend::Pbs(_) => "pbs",
            Backend::Sge(_) => "sge",
            Backend::Lsf(_) => "lsf",
            Backend::Kubernetes(_) => "kubernetes",
        }
    }

    /// The job-queue section (`None` for the local and Kubernetes backends).
    pub fn job_queue(&self) -> Option<&JobQueue> {
        match self {
            Backend::Local(_) | Backend::Kubernetes(_) => None,
            Backend::Slurm(j) | Backend::Pbs(j) | Backend::Sge(j) | Backend::Lsf(j) => Some(j),
        }
    }

    /// Adaptive bounds, if configured.
    pub fn adaptive(&self) -> Option<&Adaptive> {
        match self {
            Backend::Local(l) => l.adaptive.as_ref(),
            Backend::Kubernetes(k) => k.adaptive.as_ref(),
            Backend::Slurm(j) | Backend::Pbs(j) | Backend::Sge(j) | Backend::Lsf(j) => {
                j.adaptive.as_ref()
            }
        }
    }
}

fn check_adaptive(adaptive: Option<&Adaptive>) -> Result<(), Invalid> {
    if let Some(a) = adaptive {
        if a.minimum > a.maximum {
            return Err((
                Some("minimum"),
                format!(
                    "adaptive minimum {} is above maximum {}",
                    a.minimum, a.maximum
                ),
            ));
        }
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if a.wait_count == 0
            || a.backlog == 0
            || !positive(a.interval)
            || !positive(a.target_duration)
        {
            return Err((
                Some("adaptive"),
                "adaptive wait-count, interval, target-duration and backlog must be above zero"
                    .into(),
            ));
        }
    }
    Ok(())
}

fn check_jobqueue(backend: &str, j: &JobQueue) -> Result<(), Invalid> {
    if j.cores == 0 {
        return Err((Some("cores"), "cores must be at least 1".into()));
    }
    if j.processes == 0 || j.processes > j.cores {
        return Err((
            Some("processes"),
            format!(
                "processes must be between 1 and cores ({}), not {}",
                j.cores, j.processes
            ),
        ));
    }
    if j.memory.0 < (1 << 20) * j.processes as u64 {
        return Err((
            Some("memory"),
            format!(
                "memory {} is too little for {} worker(s)",
                j.memory, j.processes
            ),
        ));
    }
    let misplaced: &[(&'static str, bool, &str)] = &[
        (
            "account",
            j.account.is_some() && !matches!(backend, "slurm" | "pbs"),
            "slurm and pbs",
        ),
        (
            "project",
            j.project.is_some() && !matches!(backend, "sge" | "lsf"),
            "sge and lsf",
        ),
        (
            "job-cpu",
            j.job_cpu.is_some() && backend != "slurm",
            "slurm",
        ),
        (
            "job-mem",
            j.job_mem.is_some() && backend != "slurm",
            "slurm",
        ),
        (
            "resource-spec",
            j.resource_spec.is_some() && backend == "slurm",
            "pbs, sge and lsf",
        ),
    ];
    for &(key, wrong, valid) in misplaced {
        if wrong {
            return Err((
                Some(key),
                format!("`{key}` does not apply to {backend} (only to {valid})"),
            ));
        }
    }
    check_adaptive(j.adaptive.as_ref())
}

/// A Kubernetes name (RFC 1123 label): what `name` and `namespace` must be.
fn dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 40
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

fn check_kubernetes(k: &Kubernetes) -> Result<(), Invalid> {
    for (key, value) in [("name", &k.name), ("namespace", &k.namespace)] {
        if !dns_label(value) {
            return Err((
                Some(key),
                format!(
                    "{key} {value:?} is not a Kubernetes name: up to 40 lowercase letters, digits and `-`, \
                     starting and ending with a letter or digit"
                ),
            ));
        }
    }
    if !matches!(
        k.service_type.as_str(),
        "ClusterIP" | "NodePort" | "LoadBalancer"
    ) {
        return Err((
            Some("service-type"),
            format!(
                "service-type {:?}: expected ClusterIP, NodePort or LoadBalancer",
                k.service_type
            ),
        ));
    }
    for (key, value) in [
        ("token-secret", &k.token_secret),
        ("tls-secret", &k.tls_secret),
    ] {
        if let Some(value) = value.as_ref().filter(|v| !dns_label(v)) {
            return Err((
                Some(key),
                format!("{key} {value:?} is not the name of a Secret (lowercase letters, digits and `-`)"),
            ));
        }
    }
    if matches!(k.threads, Some(0)) {
        return Err((Some("threads"), "threads must be at least 1".into()));
    }
    if k.resources.as_ref().is_some_and(|r| !r.is_object()) {
        return Err((
            Some("resources"),
            "resources is a mapping with `requests` and `limits`".into(),
        ));
    }
    check_adaptive(k.adaptive.as_ref())
}

impl File {
    pub(super) fn into_config(self) -> Result<ClusterConfig, Invalid> {
        let sections = match self.jobqueue {
            Some(inner) => *inner,
            None => self,
        };
        if sections.jobqueue.is_some() {
            return Err((Some("jobqueue"), "`jobqueue:` inside `jobqueue:`".into()));
        }
        let mut found = Vec::new();
        if let Some(l) = sections.local {
            found.push(Backend::Local(l));
        }
        if let Some(j) = sections.slurm {
            found.push(Backend::Slurm(j));
        }
        if let Some(j) = sections.pbs {
            found.push(Backend::Pbs(j));
        }
        if let Some(j) = sections.sge {
            found.push(Backend::Sge(j));
        }
        if let Some(j) = sections.lsf {
            found.push(Backend::Lsf(j));
        }
        if let Some(k) = sections.kubernetes {
            found.push(Backend::Kubernetes(k));
        }
        if found.len() != 1 {
            return Err((
                None,
                format!(
                    "a config needs exactly one backend section (local, slurm, pbs, sge, lsf or kubernetes); found {}",
                    found.len()
                ),
            ));
        }
        let backend = found.remove(0);
        match &backend {
            Backend::Local(l) => {
                if l.workers == 0 || l.threads_per_worker == 0 {
                    return Err((
                        Some("workers"),
                        "workers and threads-per-worker must be at least 1".into(),
                    ));
                }
                check_adaptive(l.adaptive.as_ref())?;
            }
            Backend::Slurm(j) | Backend::Pbs(j) | Backend::Sge(j) | Backend::Lsf(j) => {
                check_jobqueue(backend.name(), j)?
            }
            Backend::Kubernetes(k) => check_kubernetes(k)?,
        }
        Ok(ClusterConfig { backend })
    }
}

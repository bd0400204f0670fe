//! The launcher beside a scheduler (`rask cluster up`): submits worker jobs,
//! follows their state, matches workers to jobs, scales (by hand or
//! adaptively), replaces jobs before their walltime ends, answers cluster
//! requests, and at the end retires every worker and cancels every job.

use super::batch::{hopeless_reason, BatchError, BatchSystem, JobState};
use super::script::walltime_margin;
use crate::adaptive::{jobs_to_submit, AdaptivePolicy, Backoff, Hysteresis};
use crate::config::JobQueue;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rask::comm::launcher::{ClusterRequest, ClusterStatus, JobSummary};
use rask::comm::protocol::{Reply, Request, WorkerSummary};
use rask::server::LauncherCall;
use rask::server::ToScheduler;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How many workers the launcher works towards.
#[derive(Clone, Debug, PartialEq)]
pub enum Scaling {
    /// Exactly this many.
    Fixed(u32),
    /// By load, within bounds.
    Adaptive(AdaptivePolicy),
}

/// What the launcher tells people as it goes.
#[derive(Clone, Debug, PartialEq)]
pub enum LauncherEvent {
    /// Jobs were submitted.
    Submitted(Vec<String>),
    /// A job started running.
    JobRunning(String),
    /// A worker connected.
    WorkerJoined {
        /// Its name.
        name: String,
        /// Workers connected now.
        connected: u32,
        /// Workers wanted.
        target: u32,
    },
    /// A worker left.
    WorkerLeft {
        /// Its name.
        name: String,
    },
    /// A job ended before any of its workers connected.
    JobFailed {
        /// The job.
        id: String,
        /// The batch system's final word on it.
        state: String,
        /// Where its stderr went.
        stderr: PathBuf,
        /// How long until the next submission (failures back off).
        retry_in: Duration,
    },
    /// A job has waited in the queue a while; why, in the batch system's words.
    JobPending {
        /// The job.
        id: String,
        /// The batch system's reason (`Resources`, `Priority`, …).
        reason: String,
        /// How long it has waited.
        waited: Duration,
    },
    /// A pending job can never start as configured (it asks for more than its
    /// partition or QOS allows a job); it was cancelled.
    JobCannotStart {
        /// The job.
        id: String,
        /// The batch system's reason (`PartitionConfig`, `ReqNodeNotAvail`, …).
        reason: String,
        /// How long until the next submission (failures back off).
        retry_in: Duration,
    },
    /// A job nears its walltime; a replacement is on its way.
    Replacing(String),
    /// Jobs are retired or cancelled because there are too many.
    ScaledDown(Vec<String>),
    /// A submission failed; the next try waits.
    SubmitFailed {
        /// The batch system's error.
        error: String,
        /// The wait before the next try.
        retry_in: Duration,
    },
}

/// How a launcher runs.
#[derive(Clone, Debug)]
pub struct LauncherOptions {
    /// The batch system.
    pub system: BatchSystem,
    /// The backend section of the config.
    pub job: JobQueue,
    /// The rendered job script, written to `script_path` before submitting.
    pub script: String,
    /// Where the job script is written.
    pub script_path: PathBuf,
    /// Directory the batch commands run in (their default output location).
    pub workdir: PathBuf,
    /// Initial scaling.
    pub scaling: Scaling,
    /// Seconds between decisions.
    pub interval: Duration,
    /// Most jobs pending at once.
    pub backlog: usize,
    /// Submit several jobs as one job array where the system has them.
    pub arrays: bool,
}

#[derive(Debug)]
struct Job {
    state: JobState,
    submitted: Instant,
    running_since: Option<Instant>,
    workers: Vec<WorkerSummary>,
    ever_connected: bool,
    retiring_since: Option<Instant>,
    cancelled: bool,
    replaced: bool,
    /// SLURM array tasks' plain job id (their output files use it).
    plain_id: Option<String>,
    /// Why it waits, while pending (where the batch system says).
    reason: Option<String>,
    /// The reason last told to the user.
    reason_told: Option<String>,
}

impl Job {
    /// Whether it counts towards the workers the launcher plans on.
    fn planned(&self) -> bool {
        !(self.replaced
            || self.retiring_since.is_some()
            || self.cancelled
            || matches!(self.state, JobState::Ended(_)))
    }
}

/// The launcher's state; [`Launcher::run`] drives it.
pub struct Launcher {
    options: LauncherOptions,
    inbox: Sender<ToScheduler>,
    calls: Receiver<LauncherCall>,
    jobs: BTreeMap<String, Job>,
    scaling: Scaling,
    hysteresis: Hysteresis,
    backoff: Backoff,
    submitted: u32,
    target: u32,
    events: Box<dyn FnMut(LauncherEvent) + Send>,
}

/// How long a retiring job may take to leave before it is cancelled.
const RETIRE_GRACE: Duration = Duration::from_secs(30);
/// How long teardown waits for the queue to empty.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// A job the queue does not list yet, this soon after submission, is not gone.
const LISTING_GRACE: Duration = Duration::from_secs(5);
/// A job pending this long has its reason told (again when the reason changes).
const PENDING_NOTICE: Duration = Duration::from_secs(20);

impl Launcher {
    /// A launcher for the scheduler behind `inbox`; it takes the scheduler's
    /// cluster requests from now on.
    pub fn new(
        options: LauncherOptions,
        inbox: Sender<ToScheduler>,
        events: Box<dyn FnMut(LauncherEvent) + Send>,
    ) -> std::io::Result<Launcher> {
        write_private(&options.script_path, &options.script)?;
        let (calls_tx, calls) = crossbeam_channel::unbounded();
        let _ = inbox.send(ToScheduler::AttachLauncher { calls: calls_tx });
        Ok(Launcher {
            scaling: options.scaling.clone(),
            options,
            inbox,
            calls,
            jobs: BTreeMap::new(),
            hysteresis: Hysteresis::default(),
            backoff: Backoff::default(),
            submitted: 0,
            target: 0,
            events,
        })
    }

    /// Decides every interval and answers requests until `stop` is set, then
    /// tears down; returns the ids of jobs still queued after teardown.
    pub fn run(&mut self, stop: &AtomicBool) -> Vec<String> {
        while !stop.load(Ordering::Relaxed) {
            self.tick();
            let until = Instant::now() + self.options.interval;
            while !stop.load(Ordering::Relaxed) {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match self
                    .calls
                    .recv_timeout(left.min(Duration::from_millis(200)))
                {
                    Ok(call) => {
                        let reply = self.answer(call.request);
                        let _ = self.inbox.send(ToScheduler::LauncherReply {
                            token: call.token,
                            reply,
                        });
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return self.teardown(),
                }
            }
        }
        self.teardown()
    }

    fn answer(&mut self, request: ClusterRequest) -> Reply {
        match request {
            ClusterRequest::Status => {}
            ClusterRequest::Scale { workers } => {
                self.scaling = Scaling::Fixed(workers);
                self.hysteresis.reset();
                self.tick();
            }
            ClusterRequest::Adapt { minimum, maximum } => {
                if minimum > maximum {
                    return Reply::Error(format!(
                        "adapt: minimum {minimum} is more than maximum {maximum}"
                    ));
                }
                let wait_count = self
                    .options
                    .job
                    .adaptive
                    .as_ref()
                    .map_or(3, |a| a.wait_count as u32);
                self.scaling = Scaling::Adaptive(AdaptivePolicy {
                    minimum,
                    maximum,
                    wait_count,
                });
                self.tick();
            }
        }
        Reply::Cluster(self.status())
    }

    /// The jobs and workers now.
    pub fn status(&self) -> ClusterStatus {
        let now = Instant::now();
        ClusterStatus {
            backend: self.options.system.name().into(),
            workers: self.jobs.values().map(|j| j.workers.len() as u32).sum(),
            target: self.target,
            adaptive: match &self.scaling {
                Scaling::Adaptive(p) => Some((p.minimum, p.maximum)),
                Scaling::Fixed(_) => None,
            },
            jobs: self
                .jobs
                .iter()
                .map(|(id, job)| JobSummary {
                    id: id.clone(),
                    state: match (&job.state, job.retiring_since) {
                        (JobState::Pending, _) => match &job.reason {
                            Some(reason) => format!("pending ({reason})"),
                            None => "pending".into(),
                        },
                        (JobState::Running, Some(_)) => "retiring".into(),
                        (JobState::Running, None) => "running".into(),
                        (JobState::Ended(s), _) => s.to_lowercase(),
                    },
                    workers: job.workers.len() as u32,
                    remaining_seconds: self.remaining(job, now).map(|d| d.as_secs()),
                })
                .collect(),
            submitted: self.submitted,
        }
    }

    fn remaining(&self, job: &Job, now: Instant) -> Option<Duration> {
        let walltime = Duration::from_secs(self.options.job.walltime?.0);
        let started = job.running_since?;
        Some(walltime.saturating_sub(now - started))
    }

    /// One round: poll the queue, match workers, decide, act.
    pub fn tick(&mut self) {
        let now = Instant::now();
        self.poll_queue(now);
        self.match_workers();
        self.target = match &self.scaling {
            Scaling::Fixed(n) => *n,
            Scaling::Adaptive(policy) => {
                let wish = match self.query(Request::AdaptiveTarget) {
                    Some(Reply::Count(n)) => n,
                    _ => self.target,
                };
                policy.target(wish)
            }
        };
        self.replace_expiring(now);
        self.scale(now);
    }

    fn query(&self, request: Request) -> Option<Reply> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.inbox
            .send(ToScheduler::Query { request, reply })
            .ok()?;
        answer.recv_timeout(Duration::from_secs(10)).ok()
    }

    fn poll_queue(&mut self, now: Instant) {
        let queue = match self.options.system.poll() {
            Ok(queue) => queue,
            Err(error) => {
                tracing::warn!(%error, "polling the batch queue");
                return;
            }
        };
        let system = self.options.system;
        let mut gone = Vec::new();
        let mut failed = Vec::new();
        for (id, job) in &mut self.jobs {
            let key = system.poll_key(id);
            if let Some(plain) = queue.plain_ids.get(&key) {
                job.plain_id = Some(plain.clone());
            }
            let listed = queue.states.get(&key).cloned();
            let state = match listed {
                Some(state) => state,
                None if now - job.submitted < LISTING_GRACE => continue,
                None => {
                    JobState::Ended(system.final_state(id).unwrap_or_else(|| "gone".to_string()))
                }
            };
            job.reason = match state {
                JobState::Pending => queue.reasons.get(&key).cloned(),
                _ => None,
            };
            if state == JobState::Running && job.running_since.is_none() {
                job.running_since = Some(now);
                (self.events)(LauncherEvent::JobRunning(id.clone()));
            }
            if let JobState::Ended(word) = &state {
                if !job.ever_connected && !job.cancelled {
                    let stderr = stderr_path(system, &self.options, id, job.plain_id.as_deref());
                    failed.push((id.clone(), word.clone(), stderr));
                }
                gone.push(id.clone());
            }
            job.state = state;
        }
        // Jobs that die before any worker connects count as failed
        // submissions (one per poll, so a failed array is one failure): the
        // launcher backs off instead of resubmitting a broken job every tick.
        if !failed.is_empty() {
            let retry_in = self.backoff.failed(now);
            for (id, state, stderr) in failed {
                (self.events)(LauncherEvent::JobFailed {
                    id,
                    state,
                    stderr,
                    retry_in,
                });
            }
        }
        for id in gone {
            if let Some(job) = self.jobs.remove(&id) {
                for worker in job.workers {
                    (self.events)(LauncherEvent::WorkerLeft { name: worker.name });
                }
            }
        }
        self.judge_pending(now);
    }

    /// Pending jobs that can never start are cancelled and reported (as a
    /// failed submission: the next one backs off); those that wait long have
    /// their reason told.
    fn judge_pending(&mut self, now: Instant) {
        let system = self.options.system;
        let mut hopeless = Vec::new();
        for (id, job) in &mut self.jobs {
            let Some(reason) = job.reason.clone().filter(|_| !job.cancelled) else {
                continue;
            };
            if hopeless_reason(system, &reason) {
                hopeless.push((id.clone(), reason));
            } else if now - job.submitted >= PENDING_NOTICE
                && job.reason_told.as_ref() != Some(&reason)
            {
                job.reason_told = Some(reason.clone());
                (self.events)(LauncherEvent::JobPending {
                    id: id.clone(),
                    reason,
                    waited: now - job.submitted,
                });
            }
        }
        if hopeless.is_empty() {
            return;
        }
        let ids: Vec<String> = hopeless.iter().map(|(id, _)| id.clone()).collect();
        self.cancel(&ids);
        let retry_in = self.backoff.failed(now);
        for (id, reason) in hopeless {
            (self.events)(LauncherEvent::JobCannotStart {
                id,
                reason,
                retry_in,
            });
        }
    }

    /// Workers are named `{name}-{job id}-{i}`; this puts each under its job.
    fn match_workers(&mut self) {
        let Some(Reply::Workers(workers)) = self.query(Request::Info) else {
            return;
        };
        let prefix = format!("{}-", self.options.job.name.0);
        let mut by_job: BTreeMap<String, Vec<WorkerSummary>> = BTreeMap::new();
        for worker in workers {
            let job = worker
                .name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.rsplit_once('-'))
                .map(|(job, _)| job.to_string());
            if let Some(job) = job {
                by_job.entry(job).or_default().push(worker);
            }
        }
        let connected_before: u32 = self.jobs.values().map(|j| j.workers.len() as u32).sum();
        let mut connected = connected_before;
        for (id, job) in &mut self.jobs {
            let now_there = by_job.remove(id).unwrap_or_default();
            for left in job
                .workers
                .iter()
                .filter(|w| !now_there.iter().any(|n| n.id == w.id))
            {
                connected -= 1;
                (self.events)(LauncherEvent::WorkerLeft {
                    name: left.name.clone(),
                });
            }
            for joined in now_there
                .iter()
                .filter(|n| !job.workers.iter().any(|w| w.id == n.id))
            {
                connected += 1;
                (self.events)(LauncherEvent::WorkerJoined {
                    name: joined.name.clone(),
                    connected,
                    target: self.target,
                });
            }
            if !job.ever_connected && !now_there.is_empty() {
                job.ever_connected = true;
                // The config works: failures start counting afresh.
                self.backoff.succeeded();
            }
            if !now_there.is_empty() && job.running_since.is_none() {
                job.running_since = Some(Instant::now());
            }
            job.workers = now_there;
        }
    }

    /// Jobs whose walltime ends within twice the retirement margin stop
    /// counting, so that their replacement is submitted while they still work.
    fn replace_expiring(&mut self, now: Instant) {
        let Some(walltime) = self.options.job.walltime else {
            return;
        };
        let lead = Duration::from_secs(2 * walltime_margin(walltime.0));
        let expiring: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, job)| job.planned())
            .filter(|(_, job)| self.remaining(job, now).is_some_and(|left| left <= lead))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expiring {
            if let Some(job) = self.jobs.get_mut(&id) {
                job.replaced = true;
                (self.events)(LauncherEvent::Replacing(id));
            }
        }
    }

    fn scale(&mut self, now: Instant) {
        let processes = self.options.job.processes as u32;
        let planned: u32 = self
            .jobs
            .values()
            .filter(|j| j.planned())
            .map(|_| processes)
            .sum();
        let pending = self
            .jobs
            .values()
            .filter(|j| j.planned() && j.state == JobState::Pending)
            .count();
        if self.target > planned {
            self.hysteresis.reset();
            let n = jobs_to_submit(
                self.target,
                planned,
                processes,
                pending,
                self.options.backlog,
            );
            if n > 0 && self.backoff.ready(now) {
                self.submit(n, now);
            }
        } else if self.target + processes <= planned {
            let excess = ((planned - self.target) / processes) as usize;
            let wait_count = match &self.scaling {
                Scaling::Adaptive(p) => p.wait_count,
                Scaling::Fixed(_) => 1,
            };
            let idle = self.idle_jobs();
            let chosen = self.hysteresis.retire(&idle, excess, wait_count);
            if !chosen.is_empty() {
                self.retire_jobs(&chosen, now);
            }
        } else {
            self.hysteresis.reset();
        }
        // Retired jobs that linger are cancelled.
        let overdue: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, j)| {
                j.retiring_since.is_some_and(|t| now - t > RETIRE_GRACE) && !j.cancelled
            })
            .map(|(id, _)| id.clone())
            .collect();
        self.cancel(&overdue);
    }

    /// Jobs that could go now: pending ones (newest first), then running
    /// ones whose every worker the scheduler would close.
    fn idle_jobs(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.planned() && j.state == JobState::Pending)
            .map(|(id, _)| id.clone())
            .rev()
            .collect();
        let connected: u32 = self.jobs.values().map(|j| j.workers.len() as u32).sum();
        let closable = match self.query(Request::WorkersToClose { n: connected }) {
            Some(Reply::Workers(ws)) => ws,
            _ => Vec::new(),
        };
        let processes = self.options.job.processes;
        for (id, job) in &self.jobs {
            let whole = job.workers.len() == processes
                && job
                    .workers
                    .iter()
                    .all(|w| closable.iter().any(|c| c.id == w.id));
            if job.planned() && job.state == JobState::Running && whole {
                out.push(id.clone());
            }
        }
        out
    }

    fn retire_jobs(&mut self, ids: &[String], now: Instant) {
        let mut cancel = Vec::new();
        let mut workers = Vec::new();
        for id in ids {
            let Some(job) = self.jobs.get_mut(id) else {
                continue;
            };
            if job.state == JobState::Pending || job.workers.is_empty() {
                cancel.push(id.clone());
            } else {
                job.retiring_since = Some(now);
                workers.extend(job.workers.iter().map(|w| w.id));
            }
        }
        if !workers.is_empty() {
            // Graceful: the scheduler copies their unique data away, then closes them,
            // and the job script ends by itself.
            let _ = self.query(Request::RetireWorkers { workers, n: 0 });
        }
        self.cancel(&cancel);
        (self.events)(LauncherEvent::ScaledDown(ids.to_vec()));
    }

    fn cancel(&mut self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        if let Err(error) = self.options.system.cancel(ids) {
            tracing::warn!(%error, "cancelling jobs");
        }
        for id in ids {
            if let Some(job) = self.jobs.get_mut(id) {
                job.cancelled = true;
            }
        }
    }

    fn submit(&mut self, n: usize, now: Instant) {
        let array = (n > 1 && self.options.arrays && self.options.system.has_arrays()).then_some(n);
        let rounds = if array.is_some() { 1 } else { n };
        let mut ids = Vec::new();
        for _ in 0..rounds {
            match self.submit_once(array) {
                Ok(mut new) => {
                    ids.append(&mut new);
                }
                Err(error) => {
                    let retry_in = self.backoff.failed(now);
                    (self.events)(LauncherEvent::SubmitFailed {
                        error: error.to_string(),
                        retry_in,
                    });
                    break;
                }
            }
        }
        for id in &ids {
            self.jobs.insert(
                id.clone(),
                Job {
                    state: JobState::Pending,
                    submitted: now,
                    running_since: None,
                    workers: Vec::new(),
                    ever_connected: false,
                    retiring_since: None,
                    cancelled: false,
                    replaced: false,
                    plain_id: None,
                    reason: None,
                    reason_told: None,
                },
            );
        }
        self.submitted += ids.len() as u32;
        if !ids.is_empty() {
            (self.events)(LauncherEvent::Submitted(ids));
        }
    }

    fn submit_once(&self, array: Option<usize>) -> Result<Vec<String>, BatchError> {
        self.options
            .system
            .submit(&self.options.script_path, array, &self.options.workdir)
    }

    /// Retires every worker, cancels every job, and waits for the queue to
    /// forget them; returns the ids still listed at the end.
    pub fn teardown(&mut self) -> Vec<String> {
        self.scaling = Scaling::Fixed(0);
        self.target = 0;
        // Every worker of this scheduler is ours, matched to a job yet or not.
        if let Some(Reply::Workers(workers)) = self.query(Request::Info) {
            let _ = self.query(Request::RetireWorkers {
                workers: workers.iter().map(|w| w.id).collect(),
                n: 0,
            });
        }
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            match self.query(Request::Info) {
                Some(Reply::Workers(ws)) if !ws.is_empty() => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                _ => break,
            }
        }
        let deadline = Instant::now() + TEARDOWN_TIMEOUT;
        let mut last_cancel: Option<Instant> = None;
        loop {
            let now = Instant::now();
            self.poll_queue(now);
            let left: Vec<String> = self.jobs.keys().cloned().collect();
            if left.is_empty() || now > deadline {
                return left;
            }
            if last_cancel.is_none_or(|t| now - t > Duration::from_secs(5)) {
                for job in self.jobs.values_mut() {
                    job.cancelled = true;
                }
                if let Err(error) = self.options.system.cancel(&left) {
                    tracing::warn!(%error, "cancelling jobs at teardown");
                }
                last_cancel = Some(now);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// Where a job's stderr goes, from the config and the batch system's defaults.
/// `plain` is a SLURM array task's own job id, which `%J` in file names means.
/// Writes a file only its owner may read (a job script may carry the token).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode through `open`; narrow it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}

fn stderr_path(
    system: BatchSystem,
    options: &LauncherOptions,
    id: &str,
    plain: Option<&str>,
) -> PathBuf {
    let name = &options.job.name.0;
    let dir = match &options.job.log_directory {
        Some(log) => options.workdir.join(&log.0),
        None => options.workdir.clone(),
    };
    let numeric = id.split('.').next().unwrap_or(id);
    dir.join(match (system, options.job.log_directory.is_some()) {
        (BatchSystem::Slurm, true) => format!("{name}-{}.err", plain.unwrap_or(id)),
        (BatchSystem::Lsf, true) => format!("{name}-{id}.err"),
        (BatchSystem::Slurm, false) => format!("slurm-{id}.out"),
        (BatchSystem::Lsf, false) => format!("{name}-{id}.err"),
        (BatchSystem::Sge, _) => match id.split_once('.') {
            Some((job, task)) => format!("{name}.o{job}.{task}"),
            None => format!("{name}.o{id}"),
        },
        (BatchSystem::Pbs, _) => format!("{name}.e{numeric}"),
    })
}

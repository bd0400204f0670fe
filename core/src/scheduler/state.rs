//! The scheduler's tables (tasks, workers, clients, groups) and the event dispatch.

use super::config::SchedulerConfig;
use super::ids::{ClientId, Priority, RunId, WorkerId};
use super::key_index::KeyIndex;
use super::messages::{Command, Event, TaskError};
use super::retirement::{Copy, Retirement};
use super::small_set::SmallSet;
use super::task_queue::TaskQueue;
use crate::graph::{Annotations, Key, RunSpec};
use foldhash::{HashMap, HashMapExt, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Index of a task in the scheduler's table.
pub(crate) type TaskId = u32;

/// Where a task stands, as the scheduler sees it (Dask's states; forgotten tasks
/// are not in the table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Known, but not needed now; its result, if it had one, is gone.
    Released,
    /// Needed; waiting for inputs.
    Waiting,
    /// Ready, but no worker can run it (none connected, or none meets its restrictions).
    NoWorker,
    /// Ready root-ish task, held back until a worker has room.
    Queued,
    /// Assigned to a worker.
    Processing,
    /// Its result is held by one or more workers.
    Memory,
    /// It failed, or an input did.
    Erred,
}

impl TaskState {
    /// How many states there are.
    pub const COUNT: usize = 7;
    /// Every state, in order.
    pub const ALL: [TaskState; TaskState::COUNT] = [
        TaskState::Released,
        TaskState::Waiting,
        TaskState::NoWorker,
        TaskState::Queued,
        TaskState::Processing,
        TaskState::Memory,
        TaskState::Erred,
    ];

    /// Its name, as Dask spells it (`no-worker`, `processing`).
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Released => "released",
            TaskState::Waiting => "waiting",
            TaskState::NoWorker => "no-worker",
            TaskState::Queued => "queued",
            TaskState::Processing => "processing",
            TaskState::Memory => "memory",
            TaskState::Erred => "erred",
        }
    }
}

/// What the scheduler keeps per task. Kept small: a million of these must fit in
/// well under 500 MB.
pub(crate) struct Task {
    pub key: Key,
    pub run: Arc<RunSpec>,
    pub state: TaskState,
    /// Ranks the task among ready tasks.
    pub priority: Priority,
    pub group: u32,
    /// The client whose graph added it: its progress counts there.
    pub client: ClientId,
    /// Inputs, in `Arg::Dep` order.
    pub deps: Vec<TaskId>,
    /// Tasks that take this one as input.
    pub dependents: Vec<TaskId>,
    /// Inputs not yet in memory (while waiting).
    pub waiting_on: u32,
    /// Dependents that still need this result.
    pub waiters: u32,
    pub who_wants: SmallSet<ClientId>,
    pub who_has: SmallSet<WorkerId>,
    pub processing_on: Option<WorkerId>,
    /// The latest assignment to a worker.
    pub run_id: RunId,
    pub nbytes: u64,
    pub retries_left: u32,
    /// How many workers died while running it.
    pub suspicious: u32,
    /// Rarely used fields, allocated only when needed.
    pub extra: Option<Box<TaskExtra>>,
}

/// The rarely needed part of a task.
#[derive(Default)]
pub(crate) struct TaskExtra {
    /// Restrictions and hints from annotations, when they restrict placement.
    pub annotations: Option<Annotations>,
    /// Why it erred.
    pub error: Option<TaskError>,
    /// Names of the workers that died while running it.
    pub killed_on: Vec<String>,
    /// A steal in flight: the worker that will get the task.
    pub steal_to: Option<WorkerId>,
}

impl Task {
    pub fn extra_mut(&mut self) -> &mut TaskExtra {
        self.extra.get_or_insert_with(Default::default)
    }

    pub fn annotations(&self) -> Option<&Annotations> {
        self.extra.as_ref().and_then(|e| e.annotations.as_ref())
    }

    pub fn error(&self) -> Option<&TaskError> {
        self.extra.as_ref().and_then(|e| e.error.as_ref())
    }
}

/// What the scheduler keeps per worker.
pub(crate) struct WorkerRecord {
    pub name: String,
    pub nthreads: u32,
    pub resources: Vec<(String, f64)>,
    pub used_resources: Vec<f64>,
    /// Tasks assigned to it and not finished.
    pub processing: HashSet<TaskId>,
    /// Estimated seconds of work in `processing`.
    pub occupancy: f64,
    /// Results it holds.
    pub has_what: HashSet<TaskId>,
    /// Bytes it holds.
    pub nbytes: u64,
    /// Its memory limit (0: none).
    pub memory_limit: u64,
    /// When its lifetime ends (a batch job's walltime), on the scheduler's
    /// clock: tasks that would not finish by then go elsewhere.
    pub deadline: Option<Duration>,
}

/// Tasks of one group: one collection's chunks, or one op's calls made together.
pub(crate) struct Group {
    /// Live tasks in the group.
    pub size: u32,
    /// Distinct tasks outside the group that its tasks depend on (approximate:
    /// counted per submission).
    pub external_deps: u32,
    /// Index of the prefix (for durations).
    pub prefix: u32,
    /// The group's name.
    pub name: Arc<str>,
    /// Its live tasks by state, indexed by `TaskState as usize`.
    pub states: [u32; TaskState::COUNT],
    /// Tasks of the group that have finished (entered memory) since it was made.
    pub finished: u32,
    /// Groups its tasks take inputs from (for the dashboard's graph page).
    pub inputs: Vec<u32>,
}

/// Learned durations of one kind of task.
pub(crate) struct Prefix {
    /// Exponential average of measured durations, seconds; `None` until one ran.
    pub duration: Option<f64>,
    /// The op's name (the keys' prefix).
    pub name: Arc<str>,
}

/// The scheduler state machine. Feed it [`Event`]s with [`State::handle`]; carry out
/// the [`Command`]s it returns.
pub struct State {
    pub(crate) config: SchedulerConfig,
    pub(crate) tasks: Vec<Option<Task>>,
    pub(crate) free_ids: Vec<TaskId>,
    pub(crate) by_key: KeyIndex,
    pub(crate) workers: Vec<Option<WorkerRecord>>,
    pub(crate) running_workers: Vec<WorkerId>,
    pub(crate) total_threads: u32,
    pub(crate) clients: HashMap<ClientId, HashSet<TaskId>>,
    /// Each client's work in flight, for progress bars.
    pub(crate) work: HashMap<ClientId, super::progress::Progress>,
    pub(crate) groups: Vec<Group>,
    pub(crate) free_groups: Vec<u32>,
    pub(crate) group_ids: HashMap<Arc<str>, u32>,
    pub(crate) prefixes: Vec<Prefix>,
    pub(crate) prefix_ids: HashMap<Arc<str>, u32>,
    /// Ready root-ish tasks, best first.
    pub(crate) queued: TaskQueue<TaskId>,
    pub(crate) no_worker: HashSet<TaskId>,
    /// Workers being retired: they get no new work.
    pub(crate) retiring: HashMap<WorkerId, Retirement>,
    /// Keys being copied off retiring workers.
    pub(crate) replicating: HashMap<Key, Copy>,
    /// The time of the event being handled, on the runtime's clock (time since
    /// it started); the state machine reads no clock of its own.
    pub(crate) now: Duration,
    pub(crate) generation: u32,
    /// The last assignment handed out.
    pub(crate) last_run_id: u32,
    pub(crate) out: Vec<Command>,
}

impl State {
    /// An empty scheduler.
    pub fn new(config: SchedulerConfig) -> Self {
        State {
            config,
            tasks: Vec::new(),
            free_ids: Vec::new(),
            by_key: KeyIndex::default(),
            workers: Vec::new(),
            running_workers: Vec::new(),
            total_threads: 0,
            clients: HashMap::new(),
            work: HashMap::new(),
            groups: Vec::new(),
            free_groups: Vec::new(),
            group_ids: HashMap::new(),
            prefixes: Vec::new(),
            prefix_ids: HashMap::new(),
            queued: TaskQueue::default(),
            no_worker: HashSet::default(),
            retiring: HashMap::default(),
            replicating: HashMap::default(),
            now: Duration::ZERO,
            generation: 0,
            last_run_id: 0,
            out: Vec::new(),
        }
    }

    /// Applies one event at the time of the last one and returns what to do about it.
    pub fn handle(&mut self, event: Event) -> Vec<Command> {
        self.apply(event);
        std::mem::take(&mut self.out)
    }

    /// Applies one event that happened at `now` (time since the runtime
    /// started; it never goes back) and returns what to do about it.
    pub fn handle_at(&mut self, now: Duration, event: Event) -> Vec<Command> {
        self.advance_clock(now);
        self.handle(event)
    }

    /// Applies several events that happened at `now`; their commands are
    /// appended to `out`.
    pub fn handle_batch(
        &mut self,
        now: Duration,
        events: impl IntoIterator<Item = Event>,
        out: &mut Vec<Command>,
    ) {
        self.advance_clock(now);
        for event in events {
            self.apply(event);
        }
        out.append(&mut self.out);
    }

    fn advance_clock(&mut self, now: Duration) {
        self.now = self.now.max(now);
    }

    /// The time of the latest event, on the runtime's clock.
    pub fn now(&self) -> Duration {
        self.now
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::AddWorker {
                worker,
                name,
                nthreads,
                resources,
                memory_limit,
            } => self.add_worker(worker, name, nthreads, resources, memory_limit),
            Event::RemoveWorker { worker, reason } => self.remove_worker(worker, &reason),
            Event::WorkerDeadline { worker, seconds } => {
                // A lifetime too long for the clock (a hostile or silly value) is none.
                let end = Duration::try_from_secs_f64(seconds.max(0.0))
                    .ok()
                    .and_then(|left| self.now.checked_add(left));
                if let Some(record) = self.worker_mut(worker) {
                    record.deadline = end;
                }
            }
            Event::AddClient { client } => {
                self.clients.entry(client).or_default();
                self.work.entry(client).or_default();
            }
            Event::RemoveClient { client } => self.remove_client(client),
            Event::UpdateGraph {
                client,
                tasks,
                wanted,
            } => self.update_graph(client, tasks, wanted),
            Event::ReleaseKeys { client, keys } => self.client_releases_keys(client, &keys),
            Event::Cancel { client, keys } => self.cancel(client, &keys),
            Event::TaskFinished {
                worker,
                key,
                run_id,
                nbytes,
                duration_us,
                ..
            } => {
                self.task_finished(worker, &key, run_id, nbytes, duration_us);
                self.advance_retirement(worker);
            }
            Event::TaskErred {
                worker,
                key,
                run_id,
                failure,
            } => {
                self.task_erred(worker, &key, run_id, failure);
                self.advance_retirement(worker);
            }
            Event::MissingData {
                worker,
                key,
                run_id,
                missing,
                tried,
            } => self.missing_data(worker, &key, run_id, &missing, &tried),
            Event::StealResponse {
                worker,
                key,
                run_id,
                stolen,
            } => self.steal_response(worker, &key, run_id, stolen),
            Event::Scatter { client, keys } => self.scatter(client, keys),
            Event::RetireWorkers { workers } => self.retire_workers(workers),
            Event::Replicated {
                worker,
                key,
                nbytes,
            } => self.replicated(worker, &key, nbytes),
            Event::Balance => self.balance(),
        }
        self.advance_ready_retirements();
    }

    // ---- lookups -------------------------------------------------------------

    pub(crate) fn task(&self, id: TaskId) -> &Task {
        self.tasks[id as usize]
            .as_ref()
            .expect("task ids in the scheduler's tables are live")
    }

    pub(crate) fn task_mut(&mut self, id: TaskId) -> &mut Task {
        self.tasks[id as usize]
            .as_mut()
            .expect("task ids in the scheduler's tables are live")
    }

    pub(crate) fn id_of(&self, key: &Key) -> Option<TaskId> {
        self.by_key.get(key, &self.tasks)
    }

    pub(crate) fn worker(&self, id: WorkerId) -> Option<&WorkerRecord> {
        self.workers.get(id.0 as usize).and_then(|w| w.as_ref())
    }

    pub(crate) fn worker_mut(&mut self, id: WorkerId) -> Option<&mut WorkerRecord> {
        self.workers.get_mut(id.0 as usize).and_then(|w| w.as_mut())
    }

    // ---- queries for runtimes, tests and diagnostics --------------------------

    /// The state of a task, or `None` when it is forgotten (or never existed).
    pub fn task_state(&self, key: &Key) -> Option<TaskState> {
        self.id_of(key).map(|id| self.task(id).state)
    }

    /// Number of tasks in the table (not forgotten).
    pub fn ntasks(&self) -> usize {
        self.by_key.len()
    }

    /// Number of tasks in each state.
    pub fn count_by_state(&self) -> Vec<(TaskState, usize)> {
        TaskState::ALL
            .into_iter()
            .zip(self.tasks_by_state())
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| (s, n as usize))
            .collect()
    }

    /// Workers holding `key`'s result.
    pub fn who_has(&self, key: &Key) -> Vec<WorkerId> {
        self.id_of(key)
            .map(|id| self.task(id).who_has.as_slice().to_vec())
            .unwrap_or_default()
    }

    /// The connected workers.
    pub fn workers(&self) -> &[WorkerId] {
        &self.running_workers
    }

    /// Total threads of connected workers.
    pub fn total_threads(&self) -> u32 {
        self.total_threads
    }

    // ---- workers --------------------------------------------------------------

    fn add_worker(
        &mut self,
        id: WorkerId,
        name: String,
        nthreads: u32,
        resources: Vec<(String, f64)>,
        memory_limit: u64,
    ) {
        let at = id.0 as usize;
        if self.worker(id).is_some() {
            tracing::warn!(%id, "a worker with this id is already connected; ignoring");
            return;
        }
        if self.workers.len() <= at {
            self.workers.resize_with(at + 1, || None);
        }
        let nthreads = nthreads.max(1);
        let used_resources = vec![0.0; resources.len()];
        self.workers[at] = Some(WorkerRecord {
            name,
            nthreads,
            resources,
            used_resources,
            processing: HashSet::default(),
            occupancy: 0.0,
            has_what: HashSet::default(),
            deadline: None,
            nbytes: 0,
            memory_limit,
        });
        self.running_workers.push(id);
        self.total_threads += nthreads;
        // Work that had nowhere to go may go here now.
        let stuck: Vec<TaskId> = self.no_worker.drain().collect();
        for t in stuck {
            if self.tasks[t as usize].as_ref().map(|t| t.state) == Some(TaskState::NoWorker) {
                self.set_state(t, TaskState::Waiting);
                self.ready(t);
            }
        }
        self.fill_from_queue(id);
        self.worker_joined_for_retirements();
    }
}

impl State {
    /// Checks the tables against each other (for tests; linear in the graph):
    /// every result's `waiters` count equals its dependents that still need it,
    /// and the workers' `has_what` and `processing` agree with the tasks.
    #[doc(hidden)]
    pub fn check_consistency(&self) -> Result<(), String> {
        for task in self.tasks.iter().flatten() {
            let needing = task
                .dependents
                .iter()
                .filter(|&&d| {
                    matches!(
                        self.task(d).state,
                        TaskState::Waiting
                            | TaskState::Queued
                            | TaskState::NoWorker
                            | TaskState::Processing
                    )
                })
                .count() as u32;
            if task.waiters != needing {
                let dependents: Vec<String> = task
                    .dependents
                    .iter()
                    .map(|&d| format!("{} {:?}", self.task(d).key, self.task(d).state))
                    .collect();
                return Err(format!(
                    "{} ({:?}) has {} waiters, but {needing} dependents need it: {dependents:?}",
                    task.key, task.state, task.waiters
                ));
            }
        }
        for (id, task) in self.tasks.iter().enumerate() {
            let Some(task) = task else { continue };
            for &w in task.who_has.as_slice() {
                if !self
                    .worker(w)
                    .is_some_and(|r| r.has_what.contains(&(id as TaskId)))
                {
                    return Err(format!(
                        "{} lists {w} as a holder that does not list it",
                        task.key
                    ));
                }
            }
            if task.state == TaskState::Processing {
                if let Some(&d) = task
                    .deps
                    .iter()
                    .find(|&&d| self.task(d).state != TaskState::Memory)
                {
                    return Err(format!(
                        "{} is processing, but its input {} is {:?}",
                        task.key,
                        self.task(d).key,
                        self.task(d).state
                    ));
                }
                let on = task.processing_on;
                if !on
                    .and_then(|w| self.worker(w))
                    .is_some_and(|r| r.processing.contains(&(id as TaskId)))
                {
                    return Err(format!(
                        "{} is processing on {on:?}, which does not list it",
                        task.key
                    ));
                }
            }
            if task.state == TaskState::Memory && task.who_has.is_empty() {
                return Err(format!("{} is in memory with no holder", task.key));
            }
        }
        for (client, work) in &self.work {
            let pending = self
                .tasks
                .iter()
                .flatten()
                .filter(|t| t.client == *client && t.state.is_pending())
                .count() as u64;
            if work.pending != pending {
                return Err(format!(
                    "{client} has {pending} tasks pending, but its progress says {}",
                    work.pending
                ));
            }
        }
        Ok(())
    }
}

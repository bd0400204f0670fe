//! The runtime around a worker's state machine, shared by in-process and TCP
//! workers: the state behind a mutex, `nthreads` threads that run tasks, a data
//! store, and [`Links`] that reach the scheduler and peers.
//!
//! Results go to the scheduler in batches: when a thread runs out of work, every
//! [`FLUSH_EVERY`] results, or after [`FLUSH_AFTER`], whichever comes first.

use super::shuffle_buffers::{Shard, ShuffleBuffers};
use super::state::{WorkerCommand, WorkerEvent, WorkerState};
use super::store::DataStore;
use crate::comm::protocol::WorkerMessage;
use crate::graph::{Key, RunSpec};
use crate::ops::TaskFailure;
use crate::scheduler::{RunId, WorkerId};
use crate::value::Value;
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Results buffered before a send to the scheduler.
pub const FLUSH_EVERY: usize = 256;
/// The longest a result waits in the buffer.
pub const FLUSH_AFTER: Duration = Duration::from_millis(1);

/// How a worker reaches the scheduler and its peers.
pub trait Links: Send + Sync + 'static {
    /// Sends messages to the scheduler, in order.
    fn send(&self, worker: WorkerId, messages: Vec<WorkerMessage>);
    /// Fetches `key` (about `nbytes` big; 0 when unknown) from one of
    /// `holders`. Returns the outcome when it is known at once (`Some(None)`: no
    /// holder had it); otherwise returns `None` and later calls
    /// [`WorkerCore::fetched_many`].
    fn fetch(
        &self,
        core: &Arc<WorkerCore>,
        key: Key,
        holders: Vec<WorkerId>,
        nbytes: u64,
    ) -> Option<Option<Value>>;
    /// Pushes shuffle shards to peer `target`; returns once it kept them.
    fn push_shards(
        &self,
        target: WorkerId,
        shuffle: &str,
        shards: Vec<Shard>,
    ) -> Result<(), String>;
    /// Takes every shard of output partition `part` of `shuffle` from peer `owner`.
    fn take_shards(
        &self,
        owner: WorkerId,
        shuffle: &str,
        part: u32,
    ) -> Result<BTreeMap<u32, Bytes>, String>;
    /// The peers this worker can reach, by id.
    fn peers(&self) -> Vec<WorkerId>;
}

/// How long a shuffle task that could not reach a peer waits for the
/// scheduler to say the peer is gone: a little over the scheduler's heartbeat
/// timeout (15 s), after which it removes a silent worker.
const PEER_GONE_WAIT: Duration = Duration::from_secs(17);

thread_local! {
    /// The worker whose task this thread is running, for ops that talk to
    /// peers themselves (shuffles).
    static CURRENT: std::cell::RefCell<Option<Weak<WorkerCore>>> = const { std::cell::RefCell::new(None) };
    /// The assignment this thread's task runs for.
    static ASSIGNMENT: std::cell::Cell<Option<RunId>> = const { std::cell::Cell::new(None) };
}

/// The worker running the calling task, if it runs on a worker's thread.
pub fn current_worker() -> Option<Arc<WorkerCore>> {
    CURRENT.with(|current| current.borrow().as_ref().and_then(Weak::upgrade))
}

/// The scheduler's assignment the calling task runs for, if it runs on a
/// worker's thread (a shuffle's layout names its run after it).
pub fn current_assignment() -> Option<RunId> {
    ASSIGNMENT.get()
}

struct Job {
    key: Key,
    run_id: RunId,
    run: Arc<RunSpec>,
    inputs: Vec<Key>,
}

struct Inner {
    state: WorkerState,
    jobs: VecDeque<Job>,
    outgoing: Vec<WorkerMessage>,
    first_unflushed: Option<Instant>,
}

/// The part of a worker its threads and links share.
pub struct WorkerCore {
    id: WorkerId,
    store: Arc<DataStore>,
    shuffles: Arc<ShuffleBuffers>,
    inner: Mutex<Inner>,
    work: Condvar,
    links: Box<dyn Links>,
    stop: AtomicBool,
    /// Cleared when the worker is killed: nothing more reaches the scheduler.
    alive: AtomicBool,
    /// Set by the memory manager: no new task starts.
    paused: AtomicBool,
    /// Under memory pressure: at most one task runs at a time.
    narrowed: AtomicBool,
    executing: AtomicU32,
}

/// A running worker: its core and threads.
pub struct WorkerRuntime {
    core: Arc<WorkerCore>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerRuntime {
    /// Starts `nthreads` task threads.
    pub fn start(
        id: WorkerId,
        nthreads: u32,
        resources: Vec<(String, f64)>,
        store: Arc<DataStore>,
        shuffles: Arc<ShuffleBuffers>,
        links: Box<dyn Links>,
    ) -> std::io::Result<Self> {
        let core = Arc::new(WorkerCore {
            id,
            store,
            shuffles,
            inner: Mutex::new(Inner {
                state: WorkerState::new(nthreads, resources),
                jobs: VecDeque::new(),
                outgoing: Vec::new(),
                first_unflushed: None,
            }),
            work: Condvar::new(),
            links,
            stop: AtomicBool::new(false),
            alive: AtomicBool::new(true),
            paused: AtomicBool::new(false),
            narrowed: AtomicBool::new(false),
            executing: AtomicU32::new(0),
        });
        let mut threads = Vec::new();
        for i in 0..nthreads.max(1) {
            let exec = core.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("{id}-thread-{i}"))
                    .spawn(move || exec.execute_loop(i as u16))?,
            );
        }
        Ok(WorkerRuntime { core, threads })
    }

    /// The shared core.
    pub fn core(&self) -> &Arc<WorkerCore> {
        &self.core
    }

    /// Stops the threads (a running task finishes first) and waits for them.
    pub fn close(mut self) {
        self.core.halt();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }

    /// Stops at once without waiting; nothing more reaches the scheduler.
    pub fn kill(self) {
        self.core.alive.store(false, Ordering::SeqCst);
        self.core.halt();
        self.core.store.clear();
    }
}

impl WorkerCore {
    /// The worker's id.
    pub fn id(&self) -> WorkerId {
        self.id
    }

    /// The worker's store.
    pub fn store(&self) -> &Arc<DataStore> {
        &self.store
    }

    /// The shuffle shards this worker keeps for its peers.
    pub fn shuffles(&self) -> &Arc<ShuffleBuffers> {
        &self.shuffles
    }

    /// Pushes shards to `target` (this worker or a peer); returns once they are kept.
    pub fn push_shards(
        &self,
        target: WorkerId,
        shuffle: &str,
        shards: Vec<Shard>,
    ) -> Result<(), String> {
        if target == self.id {
            self.shuffles
                .receive(shuffle, shards)
                .map_err(|e| e.to_string())
        } else {
            self.links
                .push_shards(target, shuffle, shards)
                .map_err(|error| self.after_peer_failure(target, error))
        }
    }

    /// Takes output partition `part`'s shards from `owner` (this worker or a peer).
    pub fn take_shards(
        &self,
        owner: WorkerId,
        shuffle: &str,
        part: u32,
    ) -> Result<BTreeMap<u32, Bytes>, String> {
        if owner == self.id {
            self.shuffles.take(shuffle, part).map_err(|e| e.to_string())
        } else {
            self.links
                .take_shards(owner, shuffle, part)
                .map_err(|error| self.after_peer_failure(owner, error))
        }
    }

    /// After a failed shuffle exchange with `peer`: waits until the scheduler
    /// says `peer` is gone (it then runs the shuffle again and ignores this
    /// task's answer, so the failure does not fail the computation) or until it
    /// would have noticed a silent worker, then gives the error back.
    fn after_peer_failure(&self, peer: WorkerId, error: String) -> String {
        let deadline = Instant::now() + PEER_GONE_WAIT;
        while self.links.peers().contains(&peer) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.links.peers().contains(&peer) {
            error
        } else {
            format!("{error} ({peer} left; the shuffle runs again without it)")
        }
    }

    /// Every worker this one can reach, itself included, by id.
    pub fn reachable_workers(&self) -> Vec<WorkerId> {
        let mut ids = self.links.peers();
        ids.push(self.id);
        ids.sort();
        ids.dedup();
        ids
    }

    /// Tasks executing now.
    pub fn executing(&self) -> u32 {
        self.executing.load(Ordering::Relaxed)
    }

    /// Pauses or resumes starting tasks (memory pressure).
    pub fn set_paused(&self, paused: bool) {
        if self.paused.swap(paused, Ordering::SeqCst) != paused {
            if paused {
                tracing::warn!(worker = %self.id, "memory is high: pausing task execution");
            } else {
                tracing::info!(worker = %self.id, "memory is back down: resuming");
                let _guard = self.lock();
                self.work.notify_all();
            }
        }
    }

    /// Runs one task at a time, or as many as there are threads again. Under
    /// memory pressure two big tasks started together can pass the limit
    /// between two of the memory manager's looks; pausing only stops tasks
    /// from starting.
    pub fn set_narrowed(&self, narrowed: bool) {
        if self.narrowed.swap(narrowed, Ordering::SeqCst) != narrowed {
            if narrowed {
                tracing::info!(worker = %self.id, "memory is getting high: one task at a time");
            } else {
                let _guard = self.lock();
                self.work.notify_all();
            }
        }
    }

    /// Whether task execution is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    fn halt(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _guard = self.lock();
        self.work.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Feeds events from the scheduler, in order, and sends what they cause.
    pub fn deliver(self: &Arc<Self>, events: impl IntoIterator<Item = WorkerEvent>) {
        let mut inner = self.lock();
        for event in events {
            self.process(&mut inner, event);
        }
        if !inner.jobs.is_empty() {
            self.work.notify_all();
        }
        // Steal answers and the like should not wait for a task to finish.
        self.flush(&mut inner);
    }

    /// An asynchronous fetch finished: the value (stored here), or `None`.
    pub fn fetched(self: &Arc<Self>, key: Key, value: Option<Value>) {
        self.fetched_many(vec![(key, value)]);
    }

    /// Asynchronous fetches finished: each value (stored here), or `None`.
    pub fn fetched_many(self: &Arc<Self>, results: Vec<(Key, Option<Value>)>) {
        let events: Vec<WorkerEvent> = results
            .into_iter()
            .map(|(key, value)| {
                let nbytes = value.map(|value| {
                    let nbytes = value.nbytes() as u64;
                    self.store.put(key.clone(), value);
                    nbytes
                });
                WorkerEvent::Fetched { key, nbytes }
            })
            .collect();
        self.deliver(events);
    }

    /// Runs jobs until the worker stops, as its thread number `thread`.
    fn execute_loop(self: Arc<Self>, thread: u16) {
        CURRENT.with(|current| *current.borrow_mut() = Some(Arc::downgrade(&self)));
        let mut inner = self.lock();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let held_back = self.paused.load(Ordering::Relaxed)
                || (self.narrowed.load(Ordering::Relaxed)
                    && self.executing.load(Ordering::Relaxed) > 0);
            let job = if held_back {
                None
            } else {
                inner.jobs.pop_front()
            };
            let Some(job) = job else {
                self.flush(&mut inner);
                inner = self
                    .work
                    .wait_timeout(inner, Duration::from_millis(100))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
                continue;
            };
            // Counted before the lock is let go: another thread deciding
            // whether it may start a task sees this one.
            self.executing.fetch_add(1, Ordering::Relaxed);
            drop(inner);
            let started = Instant::now();
            ASSIGNMENT.set(Some(job.run_id));
            let result = self.run(&job);
            ASSIGNMENT.set(None);
            let duration_us = started.elapsed().as_micros() as u64;
            self.executing.fetch_sub(1, Ordering::Relaxed);
            inner = self.lock();
            self.process(
                &mut inner,
                WorkerEvent::Executed {
                    key: job.key,
                    result,
                    duration_us,
                    thread,
                },
            );
            let due = inner.outgoing.len() >= FLUSH_EVERY
                || inner
                    .first_unflushed
                    .is_some_and(|t| t.elapsed() >= FLUSH_AFTER);
            if due || inner.jobs.is_empty() {
                self.flush(&mut inner);
            }
        }
    }

    fn run(&self, job: &Job) -> Result<u64, TaskFailure> {
        let mut inputs = Vec::with_capacity(job.inputs.len());
        for key in &job.inputs {
            match self.store.get(key) {
                Some(value) => inputs.push(value),
                None => {
                    return Err(TaskFailure::new(format!(
                        "input {key} is not in this worker's memory"
                    )))
                }
            }
        }
        let value: Value = job.run.run(&inputs)?;
        drop(inputs);
        let nbytes = value.nbytes() as u64;
        self.store.put(job.key.clone(), value);
        Ok(nbytes)
    }

    /// Feeds one event to the state machine and carries out the commands,
    /// including fetches that finish at once and the events they cause.
    fn process(self: &Arc<Self>, inner: &mut Inner, event: WorkerEvent) {
        let mut events = VecDeque::from([event]);
        let mut commands = Vec::new();
        while let Some(event) = events.pop_front() {
            inner.state.handle(event, &mut commands);
            for command in commands.drain(..) {
                match command {
                    WorkerCommand::Execute {
                        key,
                        run_id,
                        run,
                        inputs,
                    } => inner.jobs.push_back(Job {
                        key,
                        run_id,
                        run,
                        inputs,
                    }),
                    WorkerCommand::Fetch {
                        key,
                        holders,
                        nbytes,
                    } => {
                        if let Some(outcome) = self.links.fetch(self, key.clone(), holders, nbytes)
                        {
                            let nbytes = outcome.map(|value| {
                                let nbytes = value.nbytes() as u64;
                                self.store.put(key.clone(), value);
                                nbytes
                            });
                            events.push_back(WorkerEvent::Fetched { key, nbytes });
                        }
                    }
                    WorkerCommand::Free(key) => {
                        self.store.remove(&key);
                    }
                    WorkerCommand::ForgetShuffle { id, through } => {
                        self.shuffles.forget(&id, through)
                    }
                    WorkerCommand::Send(message) => {
                        inner.first_unflushed.get_or_insert_with(Instant::now);
                        inner.outgoing.push(message);
                    }
                }
            }
        }
    }

    fn flush(&self, inner: &mut Inner) {
        inner.first_unflushed = None;
        if inner.outgoing.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut inner.outgoing);
        if self.alive.load(Ordering::SeqCst) {
            self.links.send(self.id, batch);
        }
    }

    /// Tasks assigned to this worker and not finished.
    pub fn npending(&self) -> usize {
        self.lock().state.npending()
    }
}

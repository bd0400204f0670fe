//! A worker inside this process: its state machine behind a mutex, a thread that
//! takes messages from the scheduler, and `nthreads` threads that run tasks.
//!
//! Results go to the scheduler in batches: when a thread runs out of work, every
//! [`FLUSH_EVERY`] results, or after [`FLUSH_AFTER`], whichever comes first.

use super::state::{WorkerCommand, WorkerEvent, WorkerMessage, WorkerState};
use super::store::DataStore;
use crate::comm::local::{Peers, ToScheduler, ToWorker};
use crate::graph::{Key, RunSpec};
use crate::ops::TaskFailure;
use crate::scheduler::{Event, WorkerId};
use crate::value::Value;
use crossbeam_channel::{Receiver, Sender};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Results buffered before a send to the scheduler.
pub const FLUSH_EVERY: usize = 256;
/// The longest a result waits in the buffer.
pub const FLUSH_AFTER: Duration = Duration::from_millis(1);

struct Job {
    key: Key,
    run: Arc<RunSpec>,
    inputs: Vec<Key>,
}

struct Inner {
    state: WorkerState,
    jobs: VecDeque<Job>,
    outgoing: Vec<Event>,
    first_unflushed: Option<Instant>,
}

struct Shared {
    id: WorkerId,
    store: Arc<DataStore>,
    inner: Mutex<Inner>,
    work: Condvar,
    scheduler: Sender<ToScheduler>,
    peers: Arc<Peers>,
    stop: AtomicBool,
    /// Cleared when the worker is killed: nothing more reaches the scheduler.
    alive: AtomicBool,
}

/// A running in-process worker.
pub struct LocalWorker {
    id: WorkerId,
    shared: Arc<Shared>,
    inbox: Sender<ToWorker>,
    threads: Vec<JoinHandle<()>>,
}

impl LocalWorker {
    /// Starts a worker with `nthreads` task threads and announces it to the scheduler.
    pub fn start(
        id: WorkerId,
        name: String,
        nthreads: u32,
        resources: Vec<(String, f64)>,
        scheduler: Sender<ToScheduler>,
        peers: Arc<Peers>,
    ) -> std::io::Result<Self> {
        let (inbox, rx) = crossbeam_channel::unbounded();
        let store = Arc::new(DataStore::default());
        peers.insert(id, store.clone());
        let shared = Arc::new(Shared {
            id,
            store,
            inner: Mutex::new(Inner {
                state: WorkerState::new(nthreads, resources.clone()),
                jobs: VecDeque::new(),
                outgoing: Vec::new(),
                first_unflushed: None,
            }),
            work: Condvar::new(),
            scheduler: scheduler.clone(),
            peers,
            stop: AtomicBool::new(false),
            alive: AtomicBool::new(true),
        });
        let mut threads = Vec::new();
        let pump = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("{id}-inbox"))
                .spawn(move || pump.pump(rx))?,
        );
        for i in 0..nthreads.max(1) {
            let exec = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("{id}-thread-{i}"))
                    .spawn(move || exec.execute_loop())?,
            );
        }
        let event = Event::AddWorker {
            worker: id,
            name,
            nthreads,
            resources,
        };
        let _ = scheduler.send(ToScheduler::AddWorker {
            event,
            inbox: inbox.clone(),
        });
        Ok(LocalWorker {
            id,
            shared,
            inbox,
            threads,
        })
    }

    /// The worker's id.
    pub fn id(&self) -> WorkerId {
        self.id
    }

    /// The worker's store.
    pub fn store(&self) -> &Arc<DataStore> {
        &self.shared.store
    }

    /// Simulates a crash: the worker stops at once, its data is gone, and the
    /// scheduler hears that it died. Running tasks finish in the background and
    /// their results are dropped.
    pub fn kill(self) {
        self.shared.alive.store(false, Ordering::SeqCst);
        self.halt();
        self.shared.peers.remove(self.id);
        self.shared.store.clear();
        let event = Event::RemoveWorker {
            worker: self.id,
            reason: "worker killed".into(),
        };
        let _ = self.shared.scheduler.send(ToScheduler::Events(vec![event]));
    }

    /// Stops the worker's threads and waits for them (used at cluster shutdown).
    pub fn close(mut self) {
        self.halt();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        self.shared.peers.remove(self.id);
    }

    fn halt(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.inbox.send(ToWorker::Shutdown);
        let _guard = self.shared.lock();
        self.shared.work.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes messages from the scheduler and feeds them to the state machine.
    fn pump(&self, rx: Receiver<ToWorker>) {
        while let Ok(message) = rx.recv() {
            let ToWorker::Events(events) = message else {
                return;
            };
            let mut inner = self.lock();
            for event in events {
                self.process(&mut inner, event);
            }
            for extra in rx.try_iter() {
                let ToWorker::Events(events) = extra else {
                    return;
                };
                for event in events {
                    self.process(&mut inner, event);
                }
            }
            if !inner.jobs.is_empty() {
                self.work.notify_all();
            }
            // Steal answers and the like should not wait for a task to finish.
            self.flush(&mut inner);
        }
    }

    /// Runs jobs until the worker stops.
    fn execute_loop(&self) {
        let mut inner = self.lock();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let Some(job) = inner.jobs.pop_front() else {
                self.flush(&mut inner);
                inner = self.work.wait(inner).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            drop(inner);
            let started = Instant::now();
            let result = self.run(&job);
            let duration_us = started.elapsed().as_micros() as u64;
            inner = self.lock();
            self.process(
                &mut inner,
                WorkerEvent::Executed {
                    key: job.key,
                    result,
                    duration_us,
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
        let nbytes = value.nbytes() as u64;
        self.store.put(job.key.clone(), value);
        Ok(nbytes)
    }

    /// Feeds one event to the state machine and carries out the commands,
    /// including fetches (instant in-process) and the events they cause.
    fn process(&self, inner: &mut Inner, event: WorkerEvent) {
        let mut events = VecDeque::from([event]);
        let mut commands = Vec::new();
        while let Some(event) = events.pop_front() {
            inner.state.handle(event, &mut commands);
            for command in commands.drain(..) {
                match command {
                    WorkerCommand::Execute { key, run, inputs } => {
                        inner.jobs.push_back(Job { key, run, inputs })
                    }
                    WorkerCommand::Fetch { key, holders } => {
                        let nbytes = self.peers.fetch(&key, &holders).map(|value| {
                            let nbytes = value.nbytes() as u64;
                            self.store.put(key.clone(), value);
                            nbytes
                        });
                        events.push_back(WorkerEvent::Fetched { key, nbytes });
                    }
                    WorkerCommand::Free(key) => {
                        self.store.remove(&key);
                    }
                    WorkerCommand::Send(message) => {
                        inner.first_unflushed.get_or_insert_with(Instant::now);
                        inner.outgoing.push(to_event(self.id, message));
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
            let _ = self.scheduler.send(ToScheduler::Events(batch));
        }
    }
}

fn to_event(worker: WorkerId, message: WorkerMessage) -> Event {
    match message {
        WorkerMessage::TaskFinished {
            key,
            nbytes,
            duration_us,
        } => Event::TaskFinished {
            worker,
            key,
            nbytes,
            duration_us,
        },
        WorkerMessage::TaskErred { key, failure } => Event::TaskErred {
            worker,
            key,
            failure,
        },
        WorkerMessage::MissingData { key, missing } => Event::MissingData {
            worker,
            key,
            missing,
        },
        WorkerMessage::StealResponse { key, stolen } => Event::StealResponse {
            worker,
            key,
            stolen,
        },
    }
}

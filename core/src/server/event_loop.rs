//! The scheduler loop: one thread that owns the state machine, folds incoming
//! messages into batches of events, and routes the resulting commands to
//! workers and clients — over channels (local cluster) or TCP outboxes.
//!
//! Beside the state machine it keeps what is not about tasks: published datasets,
//! coordination primitives, worker addresses and liveness, and the metrics.
//! It owns the clock: every batch of events is handled at the loop's time
//! (since it started), which is all the state machine knows of time.

use super::channels::{LauncherCall, ToClient, ToScheduler, ToWorker};
use super::liveness::Liveness;
use crate::comm::connection::{Outbox, Outgoing};
use crate::comm::protocol::{Message, Reply, WorkerMetrics};
use crate::coordination::Primitives;
use crate::graph::Key;
use crate::scheduler::{ClientId, Event, SchedulerConfig, State, WorkerId};
use crate::server::metrics::{render, MetricsSnapshot};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the scheduler balances work between workers (Dask: 1 s).
const BALANCE_INTERVAL: Duration = Duration::from_secs(1);
/// The most messages folded into one pass of the state machine.
const MAX_BATCH: usize = 1024;
/// A TCP worker whose connection has heard nothing for this long is removed
/// (it sends a heartbeat every second).
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(15);
/// A cluster request the launcher leaves unanswered this long fails, and the
/// launcher no longer serves them: a `rask cluster up` started again takes
/// over (the old one's connection may be half-open, its process gone).
pub const LAUNCHER_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The pseudo-client that holds published datasets.
pub const DATASETS: ClientId = ClientId(u32::MAX);

pub(super) enum WorkerLink {
    Local(Sender<ToWorker>),
    /// A worker process: its connection's outbox, and what its reader heard.
    Remote(Outbox, Arc<Liveness>),
}

pub(super) struct WorkerEntry {
    pub link: WorkerLink,
    pub name: String,
    pub nthreads: u32,
    pub data_address: String,
    pub pid: u32,
    pub metrics: WorkerMetrics,
    /// The resources it offers (`rask:plugins` among them if it loads plugins).
    pub resources: Vec<(String, f64)>,
    /// The plugins it loaded, by file name.
    pub plugins: Vec<String>,
}

pub(super) enum ClientLink {
    Local(Sender<ToClient>),
    Remote(Outbox),
}

/// Who waits for a primitive's answer.
pub(super) enum Waiter {
    Client(ClientId, u64),
    Query(Sender<Reply>),
}

/// Where the scheduler passes cluster requests on.
pub(super) enum LauncherLink {
    /// The launcher in this process (`rask cluster up` on a batch system).
    InProcess(Sender<LauncherCall>),
    /// A client that asked to serve them (`rask cluster up` on Kubernetes).
    Client(ClientId),
}

pub(super) struct Loop {
    pub state: State,
    pub workers: HashMap<WorkerId, WorkerEntry>,
    pub clients: HashMap<ClientId, ClientLink>,
    pub datasets: HashMap<String, Vec<Key>>,
    pub primitives: Primitives<Waiter>,
    /// The launcher that started this scheduler, if any, and requests waiting for it.
    pub launcher: Option<LauncherLink>,
    /// Cluster requests handed to the launcher, by token, and when.
    pub launcher_waiters: HashMap<u64, (Waiter, Instant)>,
    pub next_launcher_token: u64,
    /// Time spent handling events, seconds.
    pub busy_seconds: f64,
    pub events_handled: u64,
    /// Where the loop's clock starts.
    pub epoch: Instant,
    /// Plugin libraries clients uploaded, in order.
    pub plugins: Vec<super::plugins::StoredPlugin>,
    /// Uploads waiting for the workers' answers.
    pub plugin_uploads: Vec<super::plugins::PendingUpload>,
    /// The task stream and timeline for the dashboard.
    pub recorder: crate::diagnostics::Recorder,
}

/// Runs the scheduler state machine until [`ToScheduler::Shutdown`], routing its
/// commands to worker and client links, one batch per destination per pass.
pub fn run_scheduler(config: SchedulerConfig, inbox: Receiver<ToScheduler>) {
    let mut this = Loop {
        state: State::new(config),
        workers: HashMap::new(),
        clients: HashMap::new(),
        datasets: HashMap::new(),
        primitives: Primitives::default(),
        launcher: None,
        launcher_waiters: HashMap::new(),
        next_launcher_token: 0,
        busy_seconds: 0.0,
        events_handled: 0,
        epoch: Instant::now(),
        plugins: Vec::new(),
        plugin_uploads: Vec::new(),
        recorder: crate::diagnostics::Recorder::default(),
    };
    let mut commands = Vec::new();
    let mut next_balance = Instant::now() + BALANCE_INTERVAL;
    loop {
        let wait = next_balance
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        let first = match inbox.recv_timeout(wait) {
            Ok(message) => Some(message),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let started = Instant::now();
        let mut events = Vec::new();
        let mut stop = false;
        for message in first.into_iter().chain(inbox.try_iter().take(MAX_BATCH)) {
            this.recorder.messages += 1;
            if this.take(message, &mut events) {
                stop = true;
            }
        }
        let now = Instant::now();
        if now >= next_balance {
            events.push(Event::Balance);
            this.check_liveness(&mut events);
            this.expire_launcher_calls(now);
            this.take_sample();
            next_balance = now + BALANCE_INTERVAL;
        }
        let expired = this.primitives.expire(now);
        this.answer(expired);
        for event in &events {
            match event {
                Event::RemoveWorker { worker, .. } => this.worker_gone(*worker),
                Event::RemoveClient { client } => {
                    this.clients.remove(client);
                    this.launcher_client_gone(*client);
                    let gone = *client;
                    this.primitives
                        .forget_waiters(|w| matches!(w, Waiter::Client(c, _) if *c == gone));
                }
                _ => {}
            }
        }
        this.events_handled += events.len() as u64;
        let now = this.now();
        this.state.handle_batch(now, events, &mut commands);
        this.route(&mut commands);
        this.busy_seconds += started.elapsed().as_secs_f64();
        if stop {
            return;
        }
    }
}

impl Loop {
    /// The loop's clock: time since it started.
    pub(super) fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Folds one message into `events`; returns true to stop.
    fn take(&mut self, message: ToScheduler, events: &mut Vec<Event>) -> bool {
        match message {
            ToScheduler::Events(mut batch) => {
                self.recorder.events(&batch, self.now());
                events.append(&mut batch)
            }
            ToScheduler::AddWorker { event, inbox } => {
                let pid = std::process::id();
                self.add_worker(&event, WorkerLink::Local(inbox), String::new(), pid);
                events.push(event);
            }
            ToScheduler::AddRemoteWorker {
                event,
                outbox,
                liveness,
                data_address,
                pid,
            } => {
                let link = WorkerLink::Remote(outbox, liveness);
                self.add_worker(&event, link, data_address, pid);
                events.push(event);
            }
            ToScheduler::AddClient { client, inbox } => {
                self.clients.insert(client, ClientLink::Local(inbox));
                events.push(Event::AddClient { client });
            }
            ToScheduler::AddRemoteClient { client, outbox } => {
                let added = self.addresses();
                outbox.send(Message::PeerAddresses {
                    added,
                    removed: Vec::new(),
                });
                self.clients.insert(client, ClientLink::Remote(outbox));
                events.push(Event::AddClient { client });
            }
            ToScheduler::PluginLoaded {
                worker,
                hash,
                outcome,
            } => self.plugin_loaded(worker, hash, outcome),
            ToScheduler::Heartbeat { worker, metrics } => {
                if let Some(entry) = self.workers.get_mut(&worker) {
                    self.recorder
                        .heartbeat(worker, &metrics, self.epoch.elapsed());
                    entry.metrics = metrics;
                }
            }
            ToScheduler::Request {
                client,
                id,
                request,
            } => {
                let reply = self.request(Waiter::Client(client, id), request, events);
                if let Some((waiter, reply)) = reply {
                    self.answer_one(waiter, reply);
                }
            }
            ToScheduler::Query { request, reply } => {
                if let Some((waiter, reply)) = self.request(Waiter::Query(reply), request, events) {
                    self.answer_one(waiter, reply);
                }
            }
            ToScheduler::Metrics { reply } => {
                let _ = reply.send(render(&self.snapshot()));
            }
            ToScheduler::AttachLauncher { calls } => {
                self.launcher = Some(LauncherLink::InProcess(calls))
            }
            ToScheduler::LauncherReply { token, reply } => {
                if let Some((waiter, _)) = self.launcher_waiters.remove(&token) {
                    self.answer_one(waiter, reply);
                }
            }
            ToScheduler::Inbound { message, credit } => {
                // The budget goes back as soon as the message is out of the queue.
                drop(credit);
                return self.take(*message, events);
            }
            ToScheduler::Shutdown => return true,
        }
        false
    }

    fn add_worker(&mut self, event: &Event, link: WorkerLink, data_address: String, pid: u32) {
        let Event::AddWorker {
            worker,
            name,
            nthreads,
            resources,
            ..
        } = event
        else {
            return;
        };
        if let WorkerLink::Remote(outbox, _) = &link {
            outbox.send(Message::PeerAddresses {
                added: self.addresses(),
                removed: Vec::new(),
            });
            // Before any order that may run their ops.
            self.send_plugins(outbox);
            let news = Message::PeerAddresses {
                added: vec![(*worker, data_address.clone())],
                removed: Vec::new(),
            };
            self.broadcast(news);
        }
        self.workers.insert(
            *worker,
            WorkerEntry {
                link,
                name: name.clone(),
                nthreads: *nthreads,
                data_address,
                pid,
                metrics: WorkerMetrics::default(),
                resources: resources.clone(),
                plugins: Vec::new(),
            },
        );
    }

    pub(super) fn worker_gone(&mut self, worker: WorkerId) {
        self.plugin_worker_gone(worker);
        self.recorder.worker_gone(worker);
        if let Some(entry) = self.workers.remove(&worker) {
            if matches!(entry.link, WorkerLink::Remote(..)) {
                self.broadcast(Message::PeerAddresses {
                    added: Vec::new(),
                    removed: vec![worker],
                });
            }
        }
    }

    /// Remote workers' and clients' connections all hear `message`.
    fn broadcast(&self, message: Message) {
        let outgoing = Outgoing::from(message);
        for entry in self.workers.values() {
            if let WorkerLink::Remote(outbox, _) = &entry.link {
                outbox.send(outgoing.clone());
            }
        }
        for link in self.clients.values() {
            if let ClientLink::Remote(outbox) = link {
                outbox.send(outgoing.clone());
            }
        }
    }

    pub(super) fn addresses(&self) -> Vec<(WorkerId, String)> {
        self.workers
            .iter()
            .filter(|(_, e)| !e.data_address.is_empty())
            .map(|(id, e)| (*id, e.data_address.clone()))
            .collect()
    }

    /// Removes worker processes whose connection has heard nothing for
    /// [`HEARTBEAT_TIMEOUT`] (a hung process, a dead host). A worker whose
    /// packets wait for this loop is not silent.
    fn check_liveness(&self, events: &mut Vec<Event>) {
        for (id, entry) in &self.workers {
            let WorkerLink::Remote(_, liveness) = &entry.link else {
                continue;
            };
            let silent = liveness.silent_for();
            if silent > HEARTBEAT_TIMEOUT {
                tracing::warn!(worker = %id, name = %entry.name, ?silent,
                    "nothing heard from the worker for {HEARTBEAT_TIMEOUT:?}; removing it");
                events.push(Event::RemoveWorker {
                    worker: *id,
                    reason: format!(
                        "nothing heard from it for {} s",
                        HEARTBEAT_TIMEOUT.as_secs()
                    ),
                });
            }
        }
    }

    pub(super) fn snapshot(&self) -> MetricsSnapshot {
        let mut snapshot = MetricsSnapshot {
            tasks_by_state: self
                .state
                .count_by_state()
                .into_iter()
                .map(|(s, n)| (format!("{s:?}").to_lowercase(), n))
                .collect(),
            workers: self.workers.len(),
            clients: self.clients.len(),
            busy_seconds: self.busy_seconds,
            events: self.events_handled,
            adaptive_target: self.state.adaptive_target(),
            ..Default::default()
        };
        for entry in self.workers.values() {
            snapshot.threads += entry.nthreads as u64;
            snapshot.memory_bytes += entry.metrics.rss;
            snapshot.managed_bytes += entry.metrics.managed;
            snapshot.spilled_bytes += entry.metrics.spilled;
            snapshot.bytes_sent += entry.metrics.bytes_sent;
            snapshot.bytes_received += entry.metrics.bytes_received;
            snapshot.paused_workers += u64::from(entry.metrics.paused);
        }
        snapshot
    }
}

//! The scheduler loop: one thread that owns the state machine, folds incoming
//! messages into batches of events, and routes the resulting commands to
//! workers and clients — over channels (local cluster) or TCP outboxes.
//!
//! Beside the state machine it keeps what is not about tasks: published datasets,
//! coordination primitives, worker addresses and heartbeats, and the metrics.

use super::channels::{LauncherCall, ToClient, ToScheduler, ToWorker};
use crate::comm::connection::{Outbox, Outgoing};
use crate::comm::protocol::{Message, Reply, Request, WorkerMetrics, WorkerOrder, WorkerSummary};
use crate::coordination::Primitives;
use crate::diagnostics::metrics::{render, MetricsSnapshot};
use crate::graph::Key;
use crate::scheduler::{ClientId, Command, Event, Report, SchedulerConfig, State, WorkerId};
use crate::worker::WorkerEvent;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often the scheduler balances work between workers (Dask: 1 s).
const BALANCE_INTERVAL: Duration = Duration::from_secs(1);
/// The most messages folded into one pass of the state machine.
const MAX_BATCH: usize = 1024;
/// A TCP worker silent for this long is removed (it sends a heartbeat every second).
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(15);
/// The pseudo-client that holds published datasets.
pub const DATASETS: ClientId = ClientId(u32::MAX);

enum WorkerLink {
    Local(Sender<ToWorker>),
    Remote(Outbox),
}

struct WorkerEntry {
    link: WorkerLink,
    name: String,
    nthreads: u32,
    data_address: String,
    pid: u32,
    metrics: WorkerMetrics,
    last_seen: Instant,
}

enum ClientLink {
    Local(Sender<ToClient>),
    Remote(Outbox),
}

/// Who waits for a primitive's answer.
enum Waiter {
    Client(ClientId, u64),
    Query(Sender<Reply>),
}

struct Loop {
    state: State,
    workers: HashMap<WorkerId, WorkerEntry>,
    clients: HashMap<ClientId, ClientLink>,
    datasets: HashMap<String, Vec<Key>>,
    primitives: Primitives<Waiter>,
    /// The launcher that started this scheduler, if any, and requests waiting for it.
    launcher: Option<Sender<LauncherCall>>,
    launcher_waiters: HashMap<u64, Waiter>,
    next_launcher_token: u64,
    /// Time spent handling events, seconds.
    busy_seconds: f64,
    events_handled: u64,
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
            if this.take(message, &mut events) {
                stop = true;
            }
        }
        let now = Instant::now();
        if now >= next_balance {
            events.push(Event::Balance);
            this.check_heartbeats(now, &mut events);
            next_balance = now + BALANCE_INTERVAL;
        }
        let expired = this.primitives.expire(now);
        this.answer(expired);
        for event in &events {
            match event {
                Event::RemoveWorker { worker, .. } => this.worker_gone(*worker),
                Event::RemoveClient { client } => {
                    this.clients.remove(client);
                    let gone = *client;
                    this.primitives
                        .forget_waiters(|w| matches!(w, Waiter::Client(c, _) if *c == gone));
                }
                _ => {}
            }
        }
        this.events_handled += events.len() as u64;
        this.state.handle_batch(events, &mut commands);
        this.route(&mut commands);
        this.busy_seconds += started.elapsed().as_secs_f64();
        if stop {
            return;
        }
    }
}

impl Loop {
    /// Folds one message into `events`; returns true to stop.
    fn take(&mut self, message: ToScheduler, events: &mut Vec<Event>) -> bool {
        match message {
            ToScheduler::Events(mut batch) => events.append(&mut batch),
            ToScheduler::AddWorker { event, inbox } => {
                let pid = std::process::id();
                self.add_worker(&event, WorkerLink::Local(inbox), String::new(), pid);
                events.push(event);
            }
            ToScheduler::AddRemoteWorker {
                event,
                outbox,
                data_address,
                pid,
            } => {
                self.add_worker(&event, WorkerLink::Remote(outbox), data_address, pid);
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
            ToScheduler::Heartbeat { worker, metrics } => {
                if let Some(entry) = self.workers.get_mut(&worker) {
                    entry.metrics = metrics;
                    entry.last_seen = Instant::now();
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
            ToScheduler::AttachLauncher { calls } => self.launcher = Some(calls),
            ToScheduler::LauncherReply { token, reply } => {
                if let Some(waiter) = self.launcher_waiters.remove(&token) {
                    self.answer_one(waiter, reply);
                }
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
            ..
        } = event
        else {
            return;
        };
        if let WorkerLink::Remote(outbox) = &link {
            outbox.send(Message::PeerAddresses {
                added: self.addresses(),
                removed: Vec::new(),
            });
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
                last_seen: Instant::now(),
            },
        );
    }

    fn worker_gone(&mut self, worker: WorkerId) {
        if let Some(entry) = self.workers.remove(&worker) {
            if matches!(entry.link, WorkerLink::Remote(_)) {
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
            if let WorkerLink::Remote(outbox) = &entry.link {
                outbox.send(outgoing.clone());
            }
        }
        for link in self.clients.values() {
            if let ClientLink::Remote(outbox) = link {
                outbox.send(outgoing.clone());
            }
        }
    }

    fn addresses(&self) -> Vec<(WorkerId, String)> {
        self.workers
            .iter()
            .filter(|(_, e)| !e.data_address.is_empty())
            .map(|(id, e)| (*id, e.data_address.clone()))
            .collect()
    }

    fn check_heartbeats(&mut self, now: Instant, events: &mut Vec<Event>) {
        for (id, entry) in &self.workers {
            if matches!(entry.link, WorkerLink::Remote(_))
                && now.duration_since(entry.last_seen) > HEARTBEAT_TIMEOUT
            {
                tracing::warn!(worker = %id, name = %entry.name, "no heartbeat for {HEARTBEAT_TIMEOUT:?}; removing the worker");
                events.push(Event::RemoveWorker {
                    worker: *id,
                    reason: format!("no heartbeat for {} s", HEARTBEAT_TIMEOUT.as_secs()),
                });
            }
        }
    }

    /// Handles a request; returns the reply when it is due now.
    fn request(
        &mut self,
        waiter: Waiter,
        request: Request,
        events: &mut Vec<Event>,
    ) -> Option<(Waiter, Reply)> {
        // Requests see the effects of events that came before them.
        let mut commands = Vec::new();
        self.state.handle_batch(events.drain(..), &mut commands);
        self.route(&mut commands);
        let client = match &waiter {
            Waiter::Client(c, _) => *c,
            Waiter::Query(_) => DATASETS,
        };
        let reply = match request {
            Request::Scatter { keys } => {
                events.push(Event::Scatter { client, keys });
                Reply::Ok
            }
            Request::Publish { name, keys } => {
                if self.datasets.contains_key(&name) {
                    Reply::Error(format!("a dataset named {name:?} already exists"))
                } else if let Some(missing) =
                    keys.iter().find(|k| self.state.task_state(k).is_none())
                {
                    Reply::Error(format!(
                        "cannot publish {name:?}: {missing} is not on the cluster"
                    ))
                } else {
                    events.push(Event::UpdateGraph {
                        client: DATASETS,
                        tasks: Vec::new(),
                        wanted: keys.clone(),
                    });
                    self.datasets.insert(name, keys);
                    Reply::Ok
                }
            }
            Request::GetDataset { name } => match self.datasets.get(&name) {
                Some(keys) => Reply::Keys(keys.clone()),
                None => Reply::Error(format!("no dataset named {name:?}")),
            },
            Request::Unpublish { name } => match self.datasets.remove(&name) {
                Some(keys) => {
                    events.push(Event::ReleaseKeys {
                        client: DATASETS,
                        keys,
                    });
                    Reply::Ok
                }
                None => Reply::Error(format!("no dataset named {name:?}")),
            },
            Request::ListDatasets => {
                let mut names: Vec<String> = self.datasets.keys().cloned().collect();
                names.sort();
                Reply::Names(names)
            }
            Request::Primitive(request) => {
                let replies = self.primitives.handle(waiter, request, Instant::now());
                self.answer(replies);
                return None;
            }
            Request::RetireWorkers { workers, n } => {
                let chosen = if workers.is_empty() {
                    self.state.workers_to_close(n as usize)
                } else {
                    workers
                };
                let summaries = self.summaries(&chosen);
                events.push(Event::RetireWorkers { workers: chosen });
                Reply::Workers(summaries)
            }
            Request::AdaptiveTarget => Reply::Count(self.state.adaptive_target()),
            Request::WorkersToClose { n } => {
                let chosen = self.state.workers_to_close(n as usize);
                Reply::Workers(self.summaries(&chosen))
            }
            Request::Cluster(request) => {
                let token = self.next_launcher_token;
                self.next_launcher_token += 1;
                let call = LauncherCall { token, request };
                match &self.launcher {
                    Some(calls) if calls.send(call).is_ok() => {
                        self.launcher_waiters.insert(token, waiter);
                        return None;
                    }
                    _ => Reply::Error(
                        "this scheduler has no launcher: cluster requests need a scheduler \
                         started by `rask cluster up`"
                            .into(),
                    ),
                }
            }
            Request::WhoHas { keys } => {
                Reply::WhoHas(keys.iter().map(|k| self.state.who_has(k)).collect())
            }
            Request::Info => {
                let mut ids: Vec<WorkerId> = self.workers.keys().copied().collect();
                ids.sort();
                Reply::Workers(self.summaries(&ids))
            }
        };
        Some((waiter, reply))
    }

    fn summaries(&self, ids: &[WorkerId]) -> Vec<WorkerSummary> {
        ids.iter()
            .filter_map(|id| {
                self.workers.get(id).map(|e| WorkerSummary {
                    id: *id,
                    name: e.name.clone(),
                    data_address: e.data_address.clone(),
                    pid: e.pid,
                    nthreads: e.nthreads,
                    metrics: e.metrics.clone(),
                })
            })
            .collect()
    }

    fn answer(&self, replies: Vec<(Waiter, crate::coordination::PrimitiveReply)>) {
        for (waiter, reply) in replies {
            self.answer_one(waiter, Reply::Primitive(reply));
        }
    }

    fn answer_one(&self, waiter: Waiter, reply: Reply) {
        match waiter {
            Waiter::Client(client, id) => match self.clients.get(&client) {
                Some(ClientLink::Local(inbox)) => {
                    let _ = inbox.send(ToClient::Reply { id, reply });
                }
                Some(ClientLink::Remote(outbox)) => {
                    outbox.send(Message::Reply { id, reply });
                }
                None => {}
            },
            Waiter::Query(sender) => {
                let _ = sender.send(reply);
            }
        }
    }

    fn snapshot(&self) -> MetricsSnapshot {
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

    fn route(&mut self, commands: &mut Vec<Command>) {
        let mut local: HashMap<WorkerId, Vec<WorkerEvent>> = HashMap::new();
        let mut remote: HashMap<WorkerId, Vec<WorkerOrder>> = HashMap::new();
        let mut to_clients: HashMap<ClientId, Vec<Report>> = HashMap::new();
        let mut closing = Vec::new();
        for command in commands.drain(..) {
            let (worker, order) = match command {
                Command::Report { client, report } => {
                    to_clients.entry(client).or_default().push(report);
                    continue;
                }
                Command::CloseWorker { worker } => {
                    closing.push(worker);
                    continue;
                }
                Command::Compute { worker, task } => (worker, Order::Compute(task)),
                Command::Release { worker, key } => (worker, Order::Release(key)),
                Command::Steal { worker, key } => (worker, Order::Steal(key)),
                Command::Replicate {
                    worker,
                    key,
                    holders,
                } => (worker, Order::Replicate(key, holders)),
            };
            // A worker that is gone has its RemoveWorker event on the way; drop its mail.
            match self.workers.get(&worker).map(|e| &e.link) {
                Some(WorkerLink::Local(_)) => local.entry(worker).or_default().push(order.local()),
                Some(WorkerLink::Remote(_)) => match order.remote() {
                    Ok(order) => remote.entry(worker).or_default().push(order),
                    Err(error) => tracing::error!(%error, "cannot send a task to a worker process"),
                },
                None => {}
            }
        }
        for (worker, batch) in local {
            if let Some(WorkerLink::Local(inbox)) = self.workers.get(&worker).map(|e| &e.link) {
                let _ = inbox.send(ToWorker::Events(batch));
            }
        }
        for (worker, batch) in remote {
            if let Some(WorkerLink::Remote(outbox)) = self.workers.get(&worker).map(|e| &e.link) {
                outbox.send(Message::Orders(batch));
            }
        }
        for (client, batch) in to_clients {
            match self.clients.get(&client) {
                Some(ClientLink::Local(inbox)) => {
                    let _ = inbox.send(ToClient::Reports(batch));
                }
                Some(ClientLink::Remote(outbox)) => {
                    outbox.send(Message::Reports(batch));
                }
                None => {}
            }
        }
        for worker in closing {
            if let Some(entry) = self.workers.get(&worker) {
                tracing::info!(%worker, name = %entry.name, "retired; telling the worker to close");
                match &entry.link {
                    WorkerLink::Local(inbox) => {
                        let _ = inbox.send(ToWorker::Shutdown);
                    }
                    WorkerLink::Remote(outbox) => {
                        outbox.send(Message::Close {
                            reason: "retired".into(),
                        });
                    }
                }
            }
            self.worker_gone(worker);
        }
    }
}

enum Order {
    Compute(crate::scheduler::ComputeTask),
    Release(Key),
    Steal(Key),
    Replicate(Key, Vec<WorkerId>),
}

impl Order {
    fn local(self) -> WorkerEvent {
        match self {
            Order::Compute(task) => WorkerEvent::Compute(task),
            Order::Release(key) => WorkerEvent::Release(key),
            Order::Steal(key) => WorkerEvent::Steal(key),
            Order::Replicate(key, holders) => WorkerEvent::Replicate { key, holders },
        }
    }

    fn remote(self) -> Result<WorkerOrder, crate::graph::GraphError> {
        Ok(match self {
            Order::Compute(task) => WorkerOrder::Compute(crate::comm::protocol::WireCompute {
                run: crate::graph::wire::run_to_wire(&task.key, &task.run)?,
                key: task.key,
                inputs: task.inputs,
                priority: task.priority,
                resources: task.resources,
            }),
            Order::Release(key) => WorkerOrder::Release(key),
            Order::Steal(key) => WorkerOrder::Steal(key),
            Order::Replicate(key, holders) => WorkerOrder::Replicate { key, holders },
        })
    }
}

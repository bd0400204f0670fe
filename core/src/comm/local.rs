//! The in-process transport: channels between the scheduler loop, workers and
//! clients, and direct access to peers' stores for data (peer to peer, never
//! through the scheduler).

use crate::graph::Key;
use crate::scheduler::{ClientId, Command, Event, Report, SchedulerConfig, State, WorkerId};
use crate::value::Value;
use crate::worker::{DataStore, WorkerEvent};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Messages to the scheduler loop.
pub enum ToScheduler {
    /// Events for the state machine.
    Events(Vec<Event>),
    /// A worker joins, with the channel that reaches it.
    AddWorker {
        /// The `AddWorker` event.
        event: Event,
        /// Its inbox.
        inbox: Sender<ToWorker>,
    },
    /// A client connects, with the channel that reaches it.
    AddClient {
        /// The client.
        client: ClientId,
        /// Its inbox.
        inbox: Sender<ToClient>,
    },
    /// Stop the loop.
    Shutdown,
}

/// Messages to a worker.
pub enum ToWorker {
    /// Events for its state machine, in order.
    Events(Vec<WorkerEvent>),
    /// Stop.
    Shutdown,
}

/// Messages to a client.
pub enum ToClient {
    /// News about wanted keys, in order.
    Reports(Vec<Report>),
}

/// Every worker's store, for fetching data peer to peer.
#[derive(Default)]
pub struct Peers {
    stores: RwLock<HashMap<WorkerId, Arc<DataStore>>>,
}

impl Peers {
    /// Makes a worker's store reachable.
    pub fn insert(&self, worker: WorkerId, store: Arc<DataStore>) {
        self.write().insert(worker, store);
    }

    /// Makes a worker's store unreachable (it left or died).
    pub fn remove(&self, worker: WorkerId) {
        self.write().remove(&worker);
    }

    /// The value of `key` from the first of `holders` that has it.
    pub fn fetch(&self, key: &Key, holders: &[WorkerId]) -> Option<Value> {
        let stores = self.stores.read().unwrap_or_else(|p| p.into_inner());
        holders
            .iter()
            .filter_map(|w| stores.get(w))
            .find_map(|store| store.get(key))
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<WorkerId, Arc<DataStore>>> {
        self.stores.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// How often the scheduler balances work between workers (Dask: 1 s).
const BALANCE_INTERVAL: Duration = Duration::from_secs(1);
/// The most messages folded into one pass of the state machine.
const MAX_BATCH: usize = 1024;

/// Runs the scheduler state machine until [`ToScheduler::Shutdown`], routing its
/// commands to worker and client inboxes, one batch per destination per pass.
pub fn run_scheduler(config: SchedulerConfig, inbox: Receiver<ToScheduler>) {
    let mut state = State::new(config);
    let mut workers: HashMap<WorkerId, Sender<ToWorker>> = HashMap::new();
    let mut clients: HashMap<ClientId, Sender<ToClient>> = HashMap::new();
    let mut commands = Vec::new();
    let mut next_balance = Instant::now() + BALANCE_INTERVAL;
    loop {
        let first = match inbox.recv_timeout(next_balance.saturating_duration_since(Instant::now()))
        {
            Ok(message) => Some(message),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut events = Vec::new();
        let mut stop = false;
        for message in first.into_iter().chain(inbox.try_iter().take(MAX_BATCH)) {
            match message {
                ToScheduler::Events(mut batch) => events.append(&mut batch),
                ToScheduler::AddWorker { event, inbox } => {
                    if let Event::AddWorker { worker, .. } = &event {
                        workers.insert(*worker, inbox);
                    }
                    events.push(event);
                }
                ToScheduler::AddClient { client, inbox } => {
                    clients.insert(client, inbox);
                    events.push(Event::AddClient { client });
                }
                ToScheduler::Shutdown => stop = true,
            }
        }
        if Instant::now() >= next_balance {
            events.push(Event::Balance);
            next_balance = Instant::now() + BALANCE_INTERVAL;
        }
        for event in &events {
            match event {
                Event::RemoveWorker { worker, .. } => {
                    workers.remove(worker);
                }
                Event::RemoveClient { client } => {
                    clients.remove(client);
                }
                _ => {}
            }
        }
        state.handle_batch(events, &mut commands);
        route(&mut commands, &workers, &clients);
        if stop {
            return;
        }
    }
}

fn route(
    commands: &mut Vec<Command>,
    workers: &HashMap<WorkerId, Sender<ToWorker>>,
    clients: &HashMap<ClientId, Sender<ToClient>>,
) {
    let mut to_workers: HashMap<WorkerId, Vec<WorkerEvent>> = HashMap::new();
    let mut to_clients: HashMap<ClientId, Vec<Report>> = HashMap::new();
    for command in commands.drain(..) {
        match command {
            Command::Compute { worker, task } => to_workers
                .entry(worker)
                .or_default()
                .push(WorkerEvent::Compute(task)),
            Command::Release { worker, key } => to_workers
                .entry(worker)
                .or_default()
                .push(WorkerEvent::Release(key)),
            Command::Steal { worker, key } => to_workers
                .entry(worker)
                .or_default()
                .push(WorkerEvent::Steal(key)),
            Command::Report { client, report } => {
                to_clients.entry(client).or_default().push(report)
            }
        }
    }
    for (worker, batch) in to_workers {
        // A worker that is gone has its RemoveWorker event on the way; drop its mail.
        if let Some(inbox) = workers.get(&worker) {
            let _ = inbox.send(ToWorker::Events(batch));
        }
    }
    for (client, batch) in to_clients {
        if let Some(inbox) = clients.get(&client) {
            let _ = inbox.send(ToClient::Reports(batch));
        }
    }
}

//! A worker inside this process: the shared [`WorkerRuntime`] with links that are
//! channels to the scheduler loop and direct reads of peers' stores.

use super::local_peers::Peers;
use super::runtime::{Links, WorkerCore, WorkerRuntime};
use super::shuffle_buffers::{Shard, ShuffleBuffers};
use super::state::WorkerEvent;
use super::store::DataStore;
use crate::comm::protocol::WorkerMessage;
use crate::graph::Key;
use crate::scheduler::{Event, WorkerId};
use crate::server::{Order, ToScheduler, ToWorker};
use crate::value::Value;
use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

struct LocalLinks {
    scheduler: Sender<ToScheduler>,
    peers: Arc<Peers>,
}

impl Links for LocalLinks {
    fn send(&self, worker: WorkerId, messages: Vec<WorkerMessage>) {
        let events = messages.into_iter().map(|m| m.into_event(worker)).collect();
        let _ = self.scheduler.send(ToScheduler::Events(events));
    }

    fn fetch(
        &self,
        _core: &Arc<WorkerCore>,
        key: Key,
        holders: Vec<WorkerId>,
        _nbytes: u64,
    ) -> Option<Option<Value>> {
        Some(self.peers.fetch(&key, &holders))
    }

    fn push_shards(
        &self,
        target: WorkerId,
        shuffle: &str,
        shards: Vec<Shard>,
    ) -> Result<(), String> {
        self.peers.push_shards(target, shuffle, shards)
    }

    fn take_shards(
        &self,
        owner: WorkerId,
        shuffle: &str,
        part: u32,
    ) -> Result<BTreeMap<u32, Bytes>, String> {
        self.peers.take_shards(owner, shuffle, part)
    }

    fn peers(&self) -> Vec<WorkerId> {
        self.peers.workers()
    }
}

/// A running in-process worker.
pub struct LocalWorker {
    id: WorkerId,
    runtime: WorkerRuntime,
    inbox: Sender<ToWorker>,
    pump: Option<JoinHandle<()>>,
    scheduler: Sender<ToScheduler>,
    peers: Arc<Peers>,
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
        let shuffle_dir =
            std::env::temp_dir().join(format!("rask-shuffle-{}-{}", std::process::id(), id.0));
        let shuffles = Arc::new(ShuffleBuffers::new(
            shuffle_dir,
            ShuffleBuffers::budget_for(0),
        ));
        peers.insert(id, store.clone(), shuffles.clone());
        let links = LocalLinks {
            scheduler: scheduler.clone(),
            peers: peers.clone(),
        };
        let runtime = WorkerRuntime::start(
            id,
            nthreads,
            resources.clone(),
            store,
            shuffles,
            Box::new(links),
        )?;
        let core = runtime.core().clone();
        let pump = std::thread::Builder::new()
            .name(format!("{id}-inbox"))
            .spawn(move || pump(core, rx))?;
        let event = Event::AddWorker {
            worker: id,
            name,
            nthreads,
            resources,
            memory_limit: 0,
        };
        let _ = scheduler.send(ToScheduler::AddWorker {
            event,
            inbox: inbox.clone(),
        });
        Ok(LocalWorker {
            id,
            runtime,
            inbox,
            pump: Some(pump),
            scheduler,
            peers,
        })
    }

    /// The worker's id.
    pub fn id(&self) -> WorkerId {
        self.id
    }

    /// The worker's store.
    pub fn store(&self) -> &Arc<DataStore> {
        self.runtime.core().store()
    }

    /// Simulates a crash: the worker stops at once, its data is gone, and the
    /// scheduler hears that it died. Running tasks finish in the background and
    /// their results are dropped.
    pub fn kill(self) {
        let _ = self.inbox.send(ToWorker::Shutdown);
        self.peers.remove(self.id);
        self.runtime.kill();
        let event = Event::RemoveWorker {
            worker: self.id,
            reason: "worker killed".into(),
        };
        let _ = self.scheduler.send(ToScheduler::Events(vec![event]));
    }

    /// Stops the worker's threads and waits for them (used at cluster shutdown).
    pub fn close(mut self) {
        let _ = self.inbox.send(ToWorker::Shutdown);
        if let Some(pump) = self.pump.take() {
            let _ = pump.join();
        }
        self.runtime.close();
        self.peers.remove(self.id);
    }
}

/// Takes messages from the scheduler and feeds them to the state machine.
fn pump(core: Arc<WorkerCore>, rx: Receiver<ToWorker>) {
    while let Ok(message) = rx.recv() {
        let ToWorker::Orders(orders) = message else {
            return;
        };
        let mut events: Vec<WorkerEvent> = orders.into_iter().map(order_event).collect();
        for extra in rx.try_iter() {
            match extra {
                ToWorker::Orders(more) => events.extend(more.into_iter().map(order_event)),
                ToWorker::Shutdown => {
                    core.deliver(events);
                    return;
                }
            }
        }
        core.deliver(events);
    }
}

impl LocalWorker {
    /// Stores values put here by a client (scatter) and tells the state machine.
    pub fn store_values(&self, keys: &[Key], values: Vec<Value>) -> Vec<u64> {
        let core = self.runtime.core();
        let mut sizes = Vec::with_capacity(keys.len());
        let mut events = Vec::with_capacity(keys.len());
        for (key, value) in keys.iter().zip(values) {
            let nbytes = value.nbytes() as u64;
            core.store().put(key.clone(), value);
            events.push(WorkerEvent::Stored {
                key: key.clone(),
                nbytes,
            });
            sizes.push(nbytes);
        }
        core.deliver(events);
        sizes
    }
}

/// The state machine's event for one of the scheduler's orders.
fn order_event(order: Order) -> WorkerEvent {
    match order {
        Order::Compute(task) => WorkerEvent::Compute(task),
        Order::Release(key, as_of) => WorkerEvent::Release(key, as_of),
        Order::Steal(key, run_id) => WorkerEvent::Steal(key, run_id),
        Order::Replicate(key, holders, nbytes) => WorkerEvent::Replicate {
            key,
            holders,
            nbytes,
        },
    }
}

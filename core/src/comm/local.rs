//! The in-process transport: channels between the scheduler loop, workers and
//! clients, and direct access to peers' stores for data (peer to peer, never
//! through the scheduler).

use super::connection::Outbox;
use super::protocol::{Reply, Request, WorkerMetrics};
use crate::graph::Key;
use crate::scheduler::{ClientId, Event, Report, WorkerId};
use crate::value::Value;
use crate::worker::{DataStore, WorkerEvent};
use crossbeam_channel::Sender;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Messages to the scheduler loop.
pub enum ToScheduler {
    /// Events for the state machine.
    Events(Vec<Event>),
    /// An in-process worker joins, with the channel that reaches it.
    AddWorker {
        /// The `AddWorker` event.
        event: Event,
        /// Its inbox.
        inbox: Sender<ToWorker>,
    },
    /// A worker process joins over TCP.
    AddRemoteWorker {
        /// The `AddWorker` event.
        event: Event,
        /// Its connection's outbox.
        outbox: Outbox,
        /// Where it serves data to peers.
        data_address: String,
        /// Its process id.
        pid: u32,
    },
    /// A client connects, with the channel that reaches it.
    AddClient {
        /// The client.
        client: ClientId,
        /// Its inbox.
        inbox: Sender<ToClient>,
    },
    /// A client connects over TCP.
    AddRemoteClient {
        /// The client.
        client: ClientId,
        /// Its connection's outbox.
        outbox: Outbox,
    },
    /// A worker's heartbeat.
    Heartbeat {
        /// The worker.
        worker: WorkerId,
        /// Its health and memory.
        metrics: WorkerMetrics,
    },
    /// A client's request; the reply goes to the client.
    Request {
        /// The client.
        client: ClientId,
        /// Matches the reply.
        id: u64,
        /// The request.
        request: Request,
    },
    /// A request from inside the scheduler process (the HTTP API); the reply goes to `reply`.
    Query {
        /// The request.
        request: Request,
        /// Where the reply goes.
        reply: Sender<Reply>,
    },
    /// The Prometheus metrics text, sent to `reply`.
    Metrics {
        /// Where the text goes.
        reply: Sender<String>,
    },
    /// The launcher that started this scheduler takes [`Request::Cluster`]s from now on.
    AttachLauncher {
        /// Where the requests go.
        calls: Sender<super::launcher::LauncherCall>,
    },
    /// The launcher's answer to a [`super::launcher::LauncherCall`].
    LauncherReply {
        /// The call's token.
        token: u64,
        /// The answer.
        reply: Reply,
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
    /// The reply to a request.
    Reply {
        /// The request's id.
        id: u64,
        /// The reply.
        reply: Reply,
    },
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

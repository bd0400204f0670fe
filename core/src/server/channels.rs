//! The scheduler loop's inbox and what it sends back: channel messages between
//! the loop, in-process workers and clients, and the TCP connections' tasks.

use crate::comm::connection::Outbox;
use crate::comm::launcher::ClusterRequest;
use crate::comm::protocol::{Reply, Request, WorkerMetrics};
use crate::graph::Key;
use crate::scheduler::{ClientId, Event, Report, RunId, WorkerId};
use crossbeam_channel::Sender;

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
        /// Stamped by its connection's reader whenever something arrives.
        liveness: std::sync::Arc<super::liveness::Liveness>,
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
    /// How a worker took a plugin.
    PluginLoaded {
        /// The worker.
        worker: WorkerId,
        /// The plugin's hash.
        hash: String,
        /// Its ops, or why the worker refused it.
        outcome: Result<Vec<String>, String>,
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
        calls: Sender<LauncherCall>,
    },
    /// The launcher's answer to a [`LauncherCall`].
    LauncherReply {
        /// The call's token.
        token: u64,
        /// The answer.
        reply: Reply,
    },
    /// A message from a connection, holding its share of the inbox budget
    /// until the loop takes it ([`super::backpressure`]).
    Inbound {
        /// The message.
        message: Box<ToScheduler>,
        /// Released when the loop has taken the message.
        credit: tokio::sync::OwnedSemaphorePermit,
    },
    /// Stop the loop.
    Shutdown,
}

/// Messages to an in-process worker.
pub enum ToWorker {
    /// The scheduler's orders, in order.
    Orders(Vec<Order>),
    /// Stop.
    Shutdown,
}

/// What the scheduler orders a worker (a worker process gets the same as
/// [`crate::comm::protocol::WorkerOrder`]s, with tasks in their wire form).
#[derive(Debug)]
pub enum Order {
    /// Run a task.
    Compute(crate::scheduler::ComputeTask),
    /// Drop a key (free the result, or forget the task), as of an assignment
    /// serial (see [`crate::scheduler::Command::Release`]).
    Release(Key, u32),
    /// Give up a task that has not started (its assignment).
    Steal(Key, RunId),
    /// Copy a key from one of these holders and keep it (its size).
    Replicate(Key, Vec<WorkerId>, u64),
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
    /// A cluster request for the client that serves them
    /// ([`Request::ServeClusterRequests`](crate::comm::protocol::Request::ServeClusterRequests)).
    LauncherCall(LauncherCall),
}

/// A [`ClusterRequest`] handed to the launcher; it answers with
/// [`ToScheduler::LauncherReply`] carrying the same `token`.
#[derive(Debug)]
pub struct LauncherCall {
    /// Matches the answer to the waiting client.
    pub token: u64,
    /// The request.
    pub request: ClusterRequest,
}

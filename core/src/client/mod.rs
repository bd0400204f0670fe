//! The client: submit work, hold futures, gather results. Dask's API, in Rust.
//!
//! A [`Client`] talks to one scheduler: an embedded [`LocalCluster`] (the same
//! scheduler and workers, in this process), or a scheduler over TCP
//! ([`Client::connect`]).
//!
//! It owns: futures and the table of keys it holds ([`Future`]); turning op
//! calls and lazy graphs into tasks (`submit`, `map`, `compute`, `persist`)
//! from the nodes and argument sources in [`lazy`]; fetching and placing data
//! (`gather`, `scatter`, datasets); waiting ([`wait`], [`as_completed`],
//! [`progress`]); the handles on the scheduler's coordination [`primitives`];
//! and starting in-process clusters.

mod cluster_calls;
mod data;
mod error;
mod future;
pub mod lazy;
mod local_cluster;
mod performance_report;
mod plugins;
pub mod primitives;
mod progress;
mod remote;
mod requests;
mod shuffle_owners;
mod submit;
mod waiting;

pub use cluster_calls::ClusterCall;
pub use error::Error;
pub use future::{Future, FutureHandle, FutureStatus};
pub use lazy::{ArgSource, IntoArg, IntoArgs, Lazy};
pub use local_cluster::{LocalCluster, RunningCluster};
pub use performance_report::PerformanceReport;
pub use progress::progress;
pub use remote::{read_scheduler_file, wait_for_scheduler_file, ConnectOptions, SchedulerFile};
#[doc(hidden)]
pub use submit::GraphBuilder as GraphBuilderAccess;
pub use waiting::{as_completed, wait, AsCompleted};

use crate::comm::protocol::{Reply, Request};
use crate::scheduler::{ClientId, Event};
use crate::server::{ToClient, ToScheduler};
use crossbeam_channel::Sender;
use future::FutureTable;
use remote::RemoteLink;
use requests::PendingRequests;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// A connection to a scheduler. Cheap to clone; the cluster it started (if any)
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

/// Where the client's cluster is.
pub(crate) enum Backend {
    /// An embedded cluster in this process.
    Local(Arc<RunningCluster>),
    /// A scheduler over TCP.
    Remote(RemoteLink),
}

pub(crate) struct ClientInner {
    pub id: ClientId,
    pub scheduler: Sender<ToScheduler>,
    pub table: Arc<FutureTable>,
    pub backend: Backend,
    pub requests: Arc<PendingRequests>,
    /// Cluster requests for this client, when it serves them.
    pub cluster_calls: Arc<cluster_calls::CallSlot>,
    /// Whether long waits draw progress bars.
    pub bars: progress::BarSetting,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        let _ = self
            .scheduler
            .send(ToScheduler::Events(vec![Event::RemoveClient {
                client: self.id,
            }]));
    }
}

impl Client {
    /// Starts an embedded local cluster and connects to it.
    pub fn local(cluster: LocalCluster) -> Result<Client, Error> {
        let running = Arc::new(cluster.start()?);
        Client::connect_local(running)
    }

    /// A client of an already running local cluster (several clients may share one).
    pub fn connect_local(cluster: Arc<RunningCluster>) -> Result<Client, Error> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let id = ClientId(NEXT.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = crossbeam_channel::unbounded::<ToClient>();
        let scheduler = cluster.scheduler();
        let table = Arc::new(FutureTable::new(scheduler.clone(), id));
        let requests = Arc::new(PendingRequests::default());
        scheduler
            .send(ToScheduler::AddClient {
                client: id,
                inbox: tx,
            })
            .map_err(|_| Error::ClusterClosed)?;
        let reader = table.clone();
        let replies = requests.clone();
        let cluster_calls = Arc::new(cluster_calls::CallSlot::new(scheduler.clone()));
        let calls = cluster_calls.clone();
        std::thread::Builder::new()
            .name(format!("{id}-reports"))
            .spawn(move || loop {
                match rx.recv_timeout(std::time::Duration::from_millis(20)) {
                    Ok(ToClient::Reports(reports)) => reader.apply(reports),
                    Ok(ToClient::Reply { id, reply }) => replies.complete(id, reply),
                    Ok(ToClient::LauncherCall(call)) => calls.deliver(call),
                    // Dropped futures are released in batches; send what has waited long enough.
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => reader.flush(),
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        replies.fail_all();
                        return;
                    }
                }
            })
            .map_err(Error::Io)?;
        Ok(Client {
            inner: Arc::new(ClientInner {
                id,
                scheduler,
                table,
                backend: Backend::Local(cluster),
                requests,
                cluster_calls,
                bars: Default::default(),
            }),
        })
    }

    /// Connects to a scheduler at `address` (`tcp://host:port`), without TLS or token.
    /// See [`ConnectOptions`] for TLS, tokens and scheduler files.
    pub fn connect(address: &str) -> Result<Client, Error> {
        ConnectOptions::new(address).connect()
    }

    /// The client's id at the scheduler.
    pub fn id(&self) -> ClientId {
        self.inner.id
    }

    /// The embedded cluster this client runs on, if it runs on one.
    pub fn cluster(&self) -> Option<&Arc<RunningCluster>> {
        match &self.inner.backend {
            Backend::Local(cluster) => Some(cluster),
            Backend::Remote(_) => None,
        }
    }

    /// The scheduler's address, for a client connected over TCP.
    pub fn scheduler_address(&self) -> Option<String> {
        match &self.inner.backend {
            Backend::Local(_) => None,
            Backend::Remote(link) => Some(link.address.to_string()),
        }
    }

    /// The dashboard's status page of this client's embedded cluster, when it
    /// serves one (Dask's `client.dashboard_link`; for a scheduler process,
    /// `rask dashboard --scheduler-file` prints it).
    pub fn dashboard_link(&self) -> Option<String> {
        self.cluster()?.dashboard_link().map(str::to_string)
    }

    /// Whether tasks run in this process (so closures are allowed).
    pub fn is_in_process(&self) -> bool {
        matches!(self.inner.backend, Backend::Local(_))
    }

    pub(crate) fn send(&self, events: Vec<Event>) -> Result<(), Error> {
        self.inner
            .scheduler
            .send(ToScheduler::Events(events))
            .map_err(|_| Error::ClusterClosed)
    }

    /// Sends a primitive's request (used by [`primitives`]).
    pub(crate) fn request_primitive(&self, request: Request) -> Result<Reply, Error> {
        self.request(request)
    }

    /// Sends a request to the scheduler and waits for its reply.
    pub(crate) fn request(&self, request: Request) -> Result<Reply, Error> {
        self.inner.request(request)
    }
}

impl ClientInner {
    /// Sends a request to the scheduler and waits for its reply.
    pub(crate) fn request(&self, request: Request) -> Result<Reply, Error> {
        let (id, reply) = self.requests.register();
        self.table.flush();
        self.scheduler
            .send(ToScheduler::Request {
                client: self.id,
                id,
                request,
            })
            .map_err(|_| Error::ClusterClosed)?;
        match reply.recv() {
            Ok(Reply::Error(message)) => Err(Error::Scheduler(message)),
            Ok(reply) => Ok(reply),
            Err(_) => Err(Error::ClusterClosed),
        }
    }
}

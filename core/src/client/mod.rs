//! The client: submit work, hold futures, gather results. Dask's API, in Rust.
//!
//! A [`Client`] talks to one scheduler; with no address it starts an embedded
//! [`LocalCluster`] (the same scheduler and workers, in this process).

mod error;
mod future;
mod local_cluster;
mod submit;
mod waiting;

pub use error::Error;
pub use future::{Future, FutureHandle, FutureStatus};
pub use local_cluster::{LocalCluster, RunningCluster};
#[doc(hidden)]
pub use submit::GraphBuilder as GraphBuilderAccess;
pub use waiting::{as_completed, wait, AsCompleted};

use crate::comm::local::{ToClient, ToScheduler};
use crate::scheduler::{ClientId, Event};
use crossbeam_channel::Sender;
use future::FutureTable;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// A connection to a scheduler. Cheap to clone; the cluster it started (if any)
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

pub(crate) struct ClientInner {
    pub id: ClientId,
    pub scheduler: Sender<ToScheduler>,
    pub table: Arc<FutureTable>,
    pub cluster: Arc<RunningCluster>,
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
        scheduler
            .send(ToScheduler::AddClient {
                client: id,
                inbox: tx,
            })
            .map_err(|_| Error::ClusterClosed)?;
        let reader = table.clone();
        std::thread::Builder::new()
            .name(format!("{id}-reports"))
            .spawn(move || loop {
                match rx.recv_timeout(std::time::Duration::from_millis(20)) {
                    Ok(ToClient::Reports(reports)) => reader.apply(reports),
                    // Dropped futures are released in batches; send what has waited long enough.
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => reader.flush(),
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                }
            })
            .map_err(Error::Io)?;
        Ok(Client {
            inner: Arc::new(ClientInner {
                id,
                scheduler,
                table,
                cluster,
            }),
        })
    }

    /// The client's id at the scheduler.
    pub fn id(&self) -> ClientId {
        self.inner.id
    }

    /// The cluster this client runs on.
    pub fn cluster(&self) -> &Arc<RunningCluster> {
        &self.inner.cluster
    }

    /// Whether tasks run in this process (so closures are allowed).
    pub fn is_in_process(&self) -> bool {
        true
    }

    pub(crate) fn send(&self, events: Vec<Event>) -> Result<(), Error> {
        self.inner
            .scheduler
            .send(ToScheduler::Events(events))
            .map_err(|_| Error::ClusterClosed)
    }
}

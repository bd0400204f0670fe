//! The embedded local cluster: the scheduler and N workers × T threads in this
//! process, connected by channels, driving the same state machines as a
//! distributed cluster.

use super::Error;
use crate::scheduler::{SchedulerConfig, WorkerId};
use crate::server::run_scheduler;
use crate::server::ToScheduler;
use crate::worker::local::LocalWorker;
use crate::worker::local_peers::Peers;
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Settings for an embedded cluster (Dask's `LocalCluster`).
#[derive(Debug, Clone)]
pub struct LocalCluster {
    workers: usize,
    threads_per_worker: usize,
    config: SchedulerConfig,
    dashboard_port: Option<u16>,
}

impl Default for LocalCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalCluster {
    /// One worker per core, one thread each.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        LocalCluster {
            workers: cores,
            threads_per_worker: 1,
            config: SchedulerConfig::default(),
            dashboard_port: None,
        }
    }

    /// How many workers.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Threads per worker.
    pub fn threads_per_worker(mut self, n: usize) -> Self {
        self.threads_per_worker = n;
        self
    }

    /// Scheduler settings.
    pub fn scheduler_config(mut self, config: SchedulerConfig) -> Self {
        self.config = config;
        self
    }

    /// Serve the dashboard on this port of 127.0.0.1 (0: any free port), as
    /// Dask's `LocalCluster(dashboard_address=...)`; see
    /// [`RunningCluster::dashboard_link`].
    pub fn dashboard(mut self, port: u16) -> Self {
        self.dashboard_port = Some(port);
        self
    }

    /// Starts the scheduler and the workers. On Linux it also tells the
    /// allocator to keep freed memory for reuse (an in-process cluster has no
    /// memory limit to honour, and fresh pages for every chunk are slow).
    pub fn start(self) -> Result<RunningCluster, Error> {
        if self.threads_per_worker == 0 {
            return Err(Error::Config(
                "threads_per_worker must be at least 1".into(),
            ));
        }
        crate::worker::allocator::tune_allocator_for_throughput();
        let (scheduler, inbox) = crossbeam_channel::unbounded();
        let config = self.config.clone();
        let scheduler_thread = std::thread::Builder::new()
            .name("rask-scheduler".into())
            .spawn(move || run_scheduler(config, inbox))?;
        let dashboard = match self.dashboard_port {
            Some(port) => Some(Dashboard::start(port, scheduler.clone())?),
            None => None,
        };
        let cluster = RunningCluster {
            dashboard,
            scheduler,
            peers: Arc::new(Peers::default()),
            workers: Mutex::new(Vec::new()),
            next_worker: Mutex::new(0),
            scheduler_thread: Mutex::new(Some(scheduler_thread)),
            threads_per_worker: self.threads_per_worker,
            closed: AtomicBool::new(false),
        };
        for _ in 0..self.workers {
            cluster.add_worker()?;
        }
        Ok(cluster)
    }
}

/// The HTTP server of an embedded cluster's dashboard, on its own small runtime.
struct Dashboard {
    runtime: tokio::runtime::Runtime,
    link: String,
}

impl Dashboard {
    fn start(port: u16, scheduler: Sender<ToScheduler>) -> Result<Dashboard, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rask-dashboard")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))?;
        let at = listener.local_addr()?;
        let app = crate::server::http::router(scheduler, Default::default());
        runtime.spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the dashboard's HTTP server stopped");
            }
        });
        let link = crate::diagnostics::dashboard_link(&format!("http://{at}"), None);
        tracing::info!("dashboard at {link}");
        Ok(Dashboard { runtime, link })
    }
}

/// A running embedded cluster. Stops when dropped.
pub struct RunningCluster {
    dashboard: Option<Dashboard>,
    scheduler: Sender<ToScheduler>,
    peers: Arc<Peers>,
    workers: Mutex<Vec<LocalWorker>>,
    next_worker: Mutex<u32>,
    scheduler_thread: Mutex<Option<JoinHandle<()>>>,
    threads_per_worker: usize,
    closed: AtomicBool,
}

impl RunningCluster {
    pub(crate) fn scheduler(&self) -> Sender<ToScheduler> {
        self.scheduler.clone()
    }

    pub(crate) fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    /// The dashboard's status page, when the cluster serves one
    /// ([`LocalCluster::dashboard`]; Dask's `dashboard_link`).
    pub fn dashboard_link(&self) -> Option<&str> {
        self.dashboard.as_ref().map(|d| d.link.as_str())
    }

    /// Whether the cluster has shut down.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Starts one more worker; returns its id.
    pub fn add_worker(&self) -> Result<WorkerId, Error> {
        let id = {
            let mut next = self.next_worker.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            WorkerId(*next - 1)
        };
        let worker = LocalWorker::start(
            id,
            format!("local-{}", id.0),
            self.threads_per_worker as u32,
            Vec::new(),
            self.scheduler.clone(),
            self.peers.clone(),
        )?;
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(worker);
        Ok(id)
    }

    /// The ids of the running workers.
    pub fn worker_ids(&self) -> Vec<WorkerId> {
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|w| w.id())
            .collect()
    }

    /// Kills a worker as a crash would: its data is lost and its tasks are
    /// rescheduled. Returns whether it existed.
    pub fn kill_worker(&self, id: WorkerId) -> bool {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let Some(at) = workers.iter().position(|w| w.id() == id) else {
            return false;
        };
        workers.swap_remove(at).kill();
        true
    }

    /// Stops the workers and the scheduler.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let workers: Vec<LocalWorker> = self
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for worker in workers {
            worker.close();
        }
        let _ = self.scheduler.send(ToScheduler::Shutdown);
        if let Some(thread) = self
            .scheduler_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningCluster {
    fn drop(&mut self) {
        self.close();
        if let Some(dashboard) = self.dashboard.take() {
            dashboard.runtime.shutdown_background();
        }
    }
}

impl RunningCluster {
    /// Puts values in a worker's store (scatter on an embedded cluster); returns their sizes.
    pub(crate) fn store_on(
        &self,
        worker: WorkerId,
        keys: &[crate::graph::Key],
        values: Vec<crate::value::Value>,
    ) -> Result<Vec<u64>, Error> {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let target = workers
            .iter()
            .find(|w| w.id() == worker)
            .ok_or(Error::ClusterClosed)?;
        Ok(target.store_values(keys, values))
    }
}

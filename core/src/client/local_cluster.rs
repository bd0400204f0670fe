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
        let cluster = RunningCluster {
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

/// A running embedded cluster. Stops when dropped.
pub struct RunningCluster {
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

//! Data on the cluster: fetching results from workers (gather), putting values
//! on workers (scatter), published datasets, and the cluster-management calls
//! (`retire_workers`, `adaptive_target`, worker info).

use super::{Backend, Client, ClientInner, Error, Future, FutureHandle, FutureStatus};
use crate::comm::launcher::{ClusterRequest, ClusterStatus};
use crate::comm::protocol::{Reply, Request, WorkerSummary};
use crate::graph::Key;
use crate::scheduler::{Event, WorkerId};
use crate::value::{Data, Value};
use foldhash::{HashMap, HashMapExt};
use std::sync::atomic::Ordering;

/// Keys per data request when gathering from one worker.
const GATHER_BATCH: usize = 8192;
/// How long a wait goes without progress before the client looks for workers.
const FIRST_NOTICE: std::time::Duration = std::time::Duration::from_secs(5);
/// How often it says again that there are none.
const LATER_NOTICES: std::time::Duration = std::time::Duration::from_secs(60);

impl ClientInner {
    /// The value of `key` from `worker`, if it holds it.
    pub(crate) fn fetch_one(&self, key: &Key, worker: WorkerId) -> Option<Value> {
        match &self.backend {
            Backend::Local(cluster) => cluster.peers().fetch(key, &[worker]),
            Backend::Remote(link) => {
                let mut got = link
                    .runtime()
                    .block_on(link.peers.get(&[worker], std::slice::from_ref(key)));
                got.pop().map(|(_, bytes)| Value::Encoded(bytes))
            }
        }
    }

    /// The value of `key` from whichever worker holds it now (its first holder may
    /// have retired and handed it on).
    pub(crate) fn fetch_anywhere(&self, key: &Key) -> Option<Value> {
        let Ok(Reply::WhoHas(mut holders)) = self.request(Request::WhoHas {
            keys: vec![key.clone()],
        }) else {
            return None;
        };
        holders
            .pop()
            .unwrap_or_default()
            .into_iter()
            .find_map(|worker| self.fetch_one(key, worker))
    }

    /// Blocks until every key is done. A wait longer than a second draws a
    /// progress bar when bars are shown. While nothing finishes for a few
    /// seconds and the cluster has no workers, says so (every minute), as a
    /// client on a cluster without workers would otherwise wait in silence.
    pub(crate) fn wait_done(&self, keys: &[&Key]) {
        let bars = self.bars.shown();
        let mut bar: Option<super::progress::WorkBar> = None;
        let mut patience = FIRST_NOTICE;
        let mut waited = std::time::Duration::ZERO;
        let began = std::time::Instant::now();
        loop {
            let slice = match (bars, &bar) {
                (false, _) => None,
                (true, None) => Some(super::progress::SHOW_AFTER),
                (true, Some(_)) => Some(super::progress::REDRAW),
            };
            let started = std::time::Instant::now();
            let done = match slice {
                Some(slice) => self.table.wait_all_for(keys, patience, slice),
                None => self.table.wait_all(keys, patience),
            };
            if done || self.is_closed() {
                break;
            }
            if bars {
                if let Ok(progress) = self.work_progress() {
                    bar.get_or_insert_with(|| super::progress::WorkBar::new(began.elapsed()))
                        .update(progress);
                }
                waited += started.elapsed();
                if waited < patience {
                    continue;
                }
            }
            waited = std::time::Duration::ZERO;
            if let Ok(Reply::Workers(workers)) = self.request(Request::Info) {
                if workers.is_empty() {
                    tracing::warn!("waiting for workers (0 connected)");
                    patience = LATER_NOTICES;
                } else {
                    patience = FIRST_NOTICE;
                }
            }
        }
        if let Some(mut bar) = bar {
            if let Ok(progress) = self.work_progress() {
                bar.update(progress);
            }
            bar.finish();
        }
    }

    /// Whether the cluster (or the connection to it) is gone.
    pub(crate) fn is_closed(&self) -> bool {
        match &self.backend {
            Backend::Local(cluster) => cluster.is_closed(),
            Backend::Remote(link) => link.closed.load(Ordering::SeqCst),
        }
    }
}

impl Client {
    /// Whether the cluster (or the connection to its scheduler) is gone.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Waits for every future and returns the results in order (Dask's `client.gather`).
    /// The first failure is returned as an error naming its key. Results are fetched
    /// from the workers holding them, many keys per request.
    pub fn gather<T: Data + Clone>(&self, futures: &[Future<T>]) -> Result<Vec<T>, Error> {
        // The generic part is only the decoding: it is compiled in every crate
        // (and notebook cell) that gathers a new type.
        let keys: Vec<&Key> = futures.iter().map(|f| f.key()).collect();
        let (values, in_process) = self.gather_values(&keys);
        futures
            .iter()
            .zip(values)
            .map(|(f, value)| match value.map(|v| v.extract::<T>()) {
                Some(Ok(value)) => Ok(value),
                // In process, a value of the wrong type is left for the slow
                // way, which reports it in order.
                Some(Err(error)) if !in_process => Err(Error::Value {
                    key: f.key().clone(),
                    error,
                }),
                _ => f.result(),
            })
            .collect()
    }

    /// Waits for `keys` and fetches their values, in order, from the workers
    /// holding them (`None` for what failed or could not be fetched); and
    /// whether the values came from an in-process cluster.
    fn gather_values(&self, keys: &[&Key]) -> (Vec<Option<Value>>, bool) {
        self.inner.wait_done(keys);
        let link = match &self.inner.backend {
            Backend::Remote(link) => link,
            Backend::Local(cluster) => {
                return (gather_in_process(cluster, keys, &self.inner), true);
            }
        };
        let statuses: Vec<FutureStatus> = keys
            .iter()
            .map(|key| self.inner.table.status(key))
            .collect();
        // Group by holder and fetch in batches; anything missed goes the slow way.
        let mut by_worker: HashMap<WorkerId, Vec<Key>> = HashMap::new();
        for (key, status) in keys.iter().zip(&statuses) {
            if let FutureStatus::Finished { worker } = status {
                by_worker.entry(*worker).or_default().push((*key).clone());
            }
        }
        let mut fetched: HashMap<Key, bytes::Bytes> = HashMap::new();
        for (worker, keys) in by_worker {
            for batch in keys.chunks(GATHER_BATCH) {
                let got = link.runtime().block_on(link.peers.get(&[worker], batch));
                fetched.extend(got);
            }
        }
        // Results that moved (their worker retired and handed them on): ask
        // where they are now in one request, and fetch them in batches again.
        let moved: Vec<Key> = keys
            .iter()
            .zip(&statuses)
            .filter(|(key, status)| !fetched.contains_key(**key) && status.is_done())
            .map(|(key, _)| (*key).clone())
            .collect();
        if !moved.is_empty() {
            if let Ok(Reply::WhoHas(holders)) = self.request(Request::WhoHas {
                keys: moved.clone(),
            }) {
                let mut by_holder: HashMap<WorkerId, Vec<Key>> = HashMap::new();
                for (key, holders) in moved.into_iter().zip(holders) {
                    if let Some(&holder) = holders.first() {
                        by_holder.entry(holder).or_default().push(key);
                    }
                }
                for (worker, keys) in by_holder {
                    for batch in keys.chunks(GATHER_BATCH) {
                        let got = link.runtime().block_on(link.peers.get(&[worker], batch));
                        fetched.extend(got);
                    }
                }
            }
        }
        let values = keys
            .iter()
            .map(|key| fetched.remove(*key).map(Value::Encoded))
            .collect();
        (values, false)
    }

    /// Puts values on workers (round robin) and returns futures for them (Dask's
    /// `client.scatter`). Scattered data is not recomputed if its worker dies.
    pub fn scatter<T: Data>(&self, values: Vec<T>) -> Result<Vec<Future<T>>, Error> {
        let workers = self.data_workers();
        if workers.is_empty() {
            return Err(Error::Config("no workers to scatter to".into()));
        }
        let keys: Vec<Key> = (0..values.len()).map(|_| Key::unique("scatter")).collect();
        self.inner.table.register(&keys);
        let handles: Vec<FutureHandle> = keys
            .iter()
            .map(|k| FutureHandle::new(k.clone(), self.inner.clone()))
            .collect();
        let mut placed = Vec::with_capacity(keys.len());
        let mut per_worker: HashMap<WorkerId, (Vec<Key>, Vec<Value>)> = HashMap::new();
        for (i, (key, value)) in keys.iter().zip(values).enumerate() {
            let worker = workers[i % workers.len()];
            let entry = per_worker.entry(worker).or_default();
            entry.0.push(key.clone());
            entry.1.push(Value::new(value));
        }
        for (worker, (keys, values)) in per_worker {
            let sizes = match &self.inner.backend {
                Backend::Local(cluster) => cluster.store_on(worker, &keys, values)?,
                Backend::Remote(link) => {
                    let blobs = values
                        .iter()
                        .map(|v| v.to_bytes())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(Error::Encode)?;
                    link.runtime()
                        .block_on(link.peers.put(worker, keys.clone(), blobs))?
                }
            };
            placed.extend(keys.into_iter().zip(sizes).map(|(k, n)| (k, worker, n)));
        }
        self.request(Request::Scatter { keys: placed })?;
        Ok(handles.into_iter().map(Future::from_handle).collect())
    }

    fn data_workers(&self) -> Vec<WorkerId> {
        match &self.inner.backend {
            Backend::Local(cluster) => cluster.worker_ids(),
            Backend::Remote(link) => link.peers.workers(),
        }
    }

    /// Publishes futures under a name; they stay on the cluster until unpublished
    /// (Dask's `publish_dataset`).
    pub fn publish_dataset<T>(&self, name: &str, futures: &[Future<T>]) -> Result<(), Error> {
        let keys = futures.iter().map(|f| f.key().clone()).collect();
        self.request(Request::Publish {
            name: name.to_string(),
            keys,
        })
        .map(|_| ())
    }

    /// Futures for a dataset published by any client (Dask's `get_dataset`).
    pub fn get_dataset<T>(&self, name: &str) -> Result<Vec<Future<T>>, Error> {
        let Reply::Keys(keys) = self.request(Request::GetDataset {
            name: name.to_string(),
        })?
        else {
            return Err(Error::Scheduler("unexpected reply to GetDataset".into()));
        };
        self.inner.table.register(&keys);
        let handles: Vec<FutureHandle> = keys
            .iter()
            .map(|k| FutureHandle::new(k.clone(), self.inner.clone()))
            .collect();
        self.send(vec![Event::UpdateGraph {
            client: self.id(),
            tasks: Vec::new(),
            wanted: keys,
        }])?;
        Ok(handles.into_iter().map(Future::from_handle).collect())
    }

    /// Removes a published name (the data goes when no client holds it).
    pub fn unpublish_dataset(&self, name: &str) -> Result<(), Error> {
        self.request(Request::Unpublish {
            name: name.to_string(),
        })
        .map(|_| ())
    }

    /// The published names.
    pub fn list_datasets(&self) -> Result<Vec<String>, Error> {
        match self.request(Request::ListDatasets)? {
            Reply::Names(names) => Ok(names),
            other => Err(Error::Scheduler(format!("unexpected reply {other:?}"))),
        }
    }

    /// Retires workers gracefully: their unique data moves to other workers first
    /// (Dask's `retire_workers`). With no ids, `n` are chosen by the scheduler.
    pub fn retire_workers(
        &self,
        workers: &[WorkerId],
        n: u32,
    ) -> Result<Vec<WorkerSummary>, Error> {
        match self.request(Request::RetireWorkers {
            workers: workers.to_vec(),
            n,
        })? {
            Reply::Workers(workers) => Ok(workers),
            other => Err(Error::Scheduler(format!("unexpected reply {other:?}"))),
        }
    }

    /// How many workers the scheduler would like (Dask's `adaptive_target`).
    pub fn adaptive_target(&self) -> Result<u32, Error> {
        match self.request(Request::AdaptiveTarget)? {
            Reply::Count(n) => Ok(n),
            other => Err(Error::Scheduler(format!("unexpected reply {other:?}"))),
        }
    }

    /// The connected workers, with their latest metrics.
    pub fn workers(&self) -> Result<Vec<WorkerSummary>, Error> {
        match self.request(Request::Info)? {
            Reply::Workers(workers) => Ok(workers),
            other => Err(Error::Scheduler(format!("unexpected reply {other:?}"))),
        }
    }

    /// Blocks until at least `n` workers are connected (Dask's
    /// `client.wait_for_workers`), or fails after `timeout`.
    pub fn wait_for_workers(&self, n: usize, timeout: std::time::Duration) -> Result<(), Error> {
        let started = std::time::Instant::now();
        let mut told = false;
        loop {
            let have = self.workers()?.len();
            if have >= n {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(Error::Timeout(format!(
                    "waiting for {n} workers: {have} connected after {:.0?}",
                    timeout
                )));
            }
            if !told && started.elapsed() >= FIRST_NOTICE {
                tracing::warn!("waiting for workers ({have} connected, {n} wanted)");
                told = true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// What the launcher that started the cluster (`rask cluster up`) reports:
    /// its jobs, workers and target.
    pub fn cluster_status(&self) -> Result<ClusterStatus, Error> {
        self.cluster_request(ClusterRequest::Status)
    }

    /// Asks the launcher for `workers` workers (Dask's `cluster.scale`); adaptive
    /// scaling stops.
    pub fn scale(&self, workers: u32) -> Result<ClusterStatus, Error> {
        self.cluster_request(ClusterRequest::Scale { workers })
    }

    /// Asks the launcher to scale between `minimum` and `maximum` workers by load
    /// (Dask's `cluster.adapt`).
    pub fn adapt(&self, minimum: u32, maximum: u32) -> Result<ClusterStatus, Error> {
        self.cluster_request(ClusterRequest::Adapt { minimum, maximum })
    }

    fn cluster_request(&self, request: ClusterRequest) -> Result<ClusterStatus, Error> {
        match self.request(Request::Cluster(request))? {
            Reply::Cluster(status) => Ok(status),
            other => Err(Error::Scheduler(format!("unexpected reply {other:?}"))),
        }
    }
}

/// Gathers from an in-process cluster: one look at the futures' table, then one
/// lock of each holder's store per batch of keys; anything missed (spilled,
/// moved, failed) goes the slow way, one future at a time.
fn gather_in_process(
    cluster: &super::RunningCluster,
    keys: &[&Key],
    inner: &ClientInner,
) -> Vec<Option<Value>> {
    let mut by_worker: HashMap<WorkerId, Vec<u32>> = HashMap::new();
    for (i, worker) in inner.table.finished_on(keys).into_iter().enumerate() {
        if let Some(worker) = worker {
            by_worker.entry(worker).or_default().push(i as u32);
        }
    }
    let mut results: Vec<Option<Value>> = Vec::with_capacity(keys.len());
    results.resize_with(keys.len(), || None);
    for (worker, positions) in by_worker {
        for batch in positions.chunks(GATHER_BATCH) {
            let wanted: Vec<&Key> = batch.iter().map(|&i| keys[i as usize]).collect();
            let got = cluster.peers().fetch_in_memory(&wanted, worker);
            for (&i, value) in batch.iter().zip(got) {
                results[i as usize] = value;
            }
        }
    }
    results
}

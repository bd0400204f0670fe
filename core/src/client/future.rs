//! Futures: handles to results on the cluster, and the client's table of them.

use super::{ClientInner, Error};
use crate::graph::Key;
use crate::scheduler::{ClientId, Event, Report, TaskError, WorkerId};
use crate::server::ToScheduler;
use crate::value::{Data, Value};
use crossbeam_channel::Sender;
use foldhash::{HashMap, HashMapExt};
use std::marker::PhantomData;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Where a future's task stands.
#[derive(Debug, Clone, PartialEq)]
pub enum FutureStatus {
    /// Not finished yet.
    Pending,
    /// Finished; the result is on this worker.
    Finished {
        /// A worker holding the result.
        worker: WorkerId,
    },
    /// Failed.
    Erred(TaskError),
    /// Cancelled.
    Cancelled,
    /// The scheduler refused the graph.
    Rejected(String),
}

impl FutureStatus {
    /// Whether the status is final (anything but pending).
    pub fn is_done(&self) -> bool {
        !matches!(self, FutureStatus::Pending)
    }
}

/// One key's entry: 16 bytes, as a client may hold millions of futures.
struct Entry {
    status: Status,
    /// Live handles for this key.
    refs: u32,
}

/// A [`FutureStatus`] kept small: the common states inline, the rest boxed.
enum Status {
    Pending,
    Finished(WorkerId),
    Ended(Box<FutureStatus>),
}

impl Status {
    fn new(status: &FutureStatus) -> Self {
        match status {
            FutureStatus::Pending => Status::Pending,
            FutureStatus::Finished { worker } => Status::Finished(*worker),
            other => Status::Ended(Box::new(other.clone())),
        }
    }

    fn is_done(&self) -> bool {
        !matches!(self, Status::Pending)
    }

    fn get(&self) -> FutureStatus {
        match self {
            Status::Pending => FutureStatus::Pending,
            Status::Finished(worker) => FutureStatus::Finished { worker: *worker },
            Status::Ended(status) => (**status).clone(),
        }
    }
}

/// Releases are sent in batches of this many (and before any new graph).
const RELEASE_BATCH: usize = 1024;

/// The client's view of every key it holds futures for.
pub(crate) struct FutureTable {
    scheduler: Sender<ToScheduler>,
    client: ClientId,
    entries: Mutex<Table>,
    changed: Condvar,
}

struct Table {
    entries: HashMap<Key, Entry>,
    /// as_completed iterators waiting for keys that are not done.
    watchers: HashMap<Key, Vec<Sender<Key>>>,
    to_release: Vec<Key>,
    /// Keys registered since [`FutureTable::start_noting`] (a notebook cell's
    /// futures, which an interrupt cancels); `None` when not noting.
    noted: Option<Vec<Key>>,
}

impl FutureTable {
    pub fn new(scheduler: Sender<ToScheduler>, client: ClientId) -> Self {
        FutureTable {
            scheduler,
            client,
            entries: Mutex::new(Table {
                entries: HashMap::new(),
                watchers: HashMap::new(),
                to_release: Vec::new(),
                noted: None,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one more handle for each key; sends buffered releases first so they
    /// cannot overtake the graph that wants these keys again.
    pub fn register(&self, keys: &[Key]) {
        let mut table = self.lock();
        self.flush_releases(&mut table);
        table.entries.reserve(keys.len());
        for key in keys {
            let entry = table.entries.entry(key.clone()).or_insert(Entry {
                status: Status::Pending,
                refs: 0,
            });
            entry.refs = entry.refs.saturating_add(1);
        }
        if let Some(noted) = &mut table.noted {
            noted.extend_from_slice(keys);
        }
    }

    /// Notes every key registered from now on (forgetting those noted before).
    pub fn start_noting(&self) {
        self.lock().noted = Some(Vec::new());
    }

    /// The noted keys still held and not done (each once); noting goes on afresh.
    pub fn take_noted_pending(&self) -> Vec<Key> {
        let mut table = self.lock();
        let noted = table.noted.replace(Vec::new()).unwrap_or_default();
        let mut seen = foldhash::HashSet::default();
        noted
            .into_iter()
            .filter(|key| {
                table
                    .entries
                    .get(key)
                    .is_some_and(|entry| !entry.status.is_done())
            })
            .filter(|key| seen.insert(key.clone()))
            .collect()
    }

    fn release(&self, key: &Key) {
        let mut table = self.lock();
        let Some(entry) = table.entries.get_mut(key) else {
            return;
        };
        entry.refs = entry.refs.saturating_sub(1);
        if entry.refs == 0 {
            table.entries.remove(key);
            table.watchers.remove(key);
            table.to_release.push(key.clone());
            if table.to_release.len() >= RELEASE_BATCH {
                self.flush_releases(&mut table);
            }
        }
    }

    /// Sends buffered releases now.
    pub fn flush(&self) {
        let mut table = self.lock();
        self.flush_releases(&mut table);
    }

    fn flush_releases(&self, table: &mut Table) {
        if table.to_release.is_empty() {
            return;
        }
        let keys = std::mem::take(&mut table.to_release);
        let _ = self
            .scheduler
            .send(ToScheduler::Events(vec![Event::ReleaseKeys {
                client: self.client,
                keys,
            }]));
    }

    /// Applies the scheduler's reports.
    pub fn apply(&self, reports: Vec<Report>) {
        let mut guard = self.lock();
        let table = &mut *guard;
        for report in reports {
            let (keys, status) = match report {
                Report::InMemory { key, worker, .. } => {
                    (vec![key], FutureStatus::Finished { worker })
                }
                Report::Erred { key, error } => (vec![key], FutureStatus::Erred(error)),
                Report::Cancelled { key } => (vec![key], FutureStatus::Cancelled),
                Report::Lost { key } => (vec![key], FutureStatus::Pending),
                Report::GraphRejected { keys, error } => (keys, FutureStatus::Rejected(error)),
            };
            for key in keys {
                let Some(entry) = table.entries.get_mut(&key) else {
                    continue;
                };
                entry.status = Status::new(&status);
                if status.is_done() && !table.watchers.is_empty() {
                    for watcher in table.watchers.remove(&key).unwrap_or_default() {
                        let _ = watcher.send(key.clone());
                    }
                }
            }
        }
        self.changed.notify_all();
    }

    /// The scheduler is gone: every pending key fails with `why`.
    pub fn fail_pending(&self, why: &str) {
        let mut guard = self.lock();
        let table = &mut *guard;
        for (key, entry) in table.entries.iter_mut() {
            if !entry.status.is_done() {
                entry.status = Status::new(&FutureStatus::Rejected(why.to_string()));
                for watcher in table.watchers.remove(key).unwrap_or_default() {
                    let _ = watcher.send(key.clone());
                }
            }
        }
        self.changed.notify_all();
    }

    /// For each of `keys`, the worker holding it when it has finished, under one lock.
    pub fn finished_on(&self, keys: &[&Key]) -> Vec<Option<WorkerId>> {
        let table = self.lock();
        keys.iter()
            .map(|&key| match table.entries.get(key)?.status {
                Status::Finished(worker) => Some(worker),
                _ => None,
            })
            .collect()
    }

    /// The status of `key`.
    pub fn status(&self, key: &Key) -> FutureStatus {
        self.lock()
            .entries
            .get(key)
            .map(|e| e.status.get())
            .unwrap_or(FutureStatus::Pending)
    }

    /// Blocks until every key is done (finished, erred, cancelled or
    /// rejected) or `patience` passes with none of them finishing; returns
    /// whether all are done.
    pub fn wait_all(&self, keys: &[&Key], patience: Duration) -> bool {
        self.wait_all_within(keys, patience, None)
    }

    /// Like [`FutureTable::wait_all`], but also gives up once `slice` has
    /// passed, whatever finished meanwhile (for redrawing progress bars).
    pub fn wait_all_for(&self, keys: &[&Key], patience: Duration, slice: Duration) -> bool {
        self.wait_all_within(keys, patience, Some(std::time::Instant::now() + slice))
    }

    fn wait_all_within(
        &self,
        keys: &[&Key],
        patience: Duration,
        deadline: Option<std::time::Instant>,
    ) -> bool {
        let mut table = self.lock();
        self.flush_releases(&mut table);
        let mut next = 0;
        let mut progress_at = std::time::Instant::now();
        loop {
            let before = next;
            while next < keys.len()
                && table
                    .entries
                    .get(keys[next])
                    .is_none_or(|e| e.status.is_done())
            {
                next += 1;
            }
            if next == keys.len() {
                return true;
            }
            if next > before {
                progress_at = std::time::Instant::now();
            } else if progress_at.elapsed() >= patience {
                return false;
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return false;
            }
            table = self
                .changed
                .wait_timeout(table, Duration::from_millis(100))
                .map(|(t, _)| t)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Blocks until `key`'s status differs from `seen` (or a short while passes).
    pub fn wait_change(&self, key: &Key, seen: &FutureStatus) {
        let table = self.lock();
        if table
            .entries
            .get(key)
            .is_some_and(|e| e.status.get() != *seen)
        {
            return;
        }
        let _ = self.changed.wait_timeout(table, Duration::from_millis(50));
    }

    /// Sends `key` to `watcher` once it is done (now, if it already is).
    pub fn watch(&self, key: &Key, watcher: &Sender<Key>) {
        let mut table = self.lock();
        match table.entries.get(key) {
            Some(entry) if !entry.status.is_done() => table
                .watchers
                .entry(key.clone())
                .or_default()
                .push(watcher.clone()),
            _ => {
                let _ = watcher.send(key.clone());
            }
        }
    }
}

/// An untyped, shared handle on one key; the key is released when the last
/// handle is dropped.
#[derive(Clone)]
pub struct FutureHandle(Arc<HandleInner>);

struct HandleInner {
    key: Key,
    client: Arc<ClientInner>,
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        self.client.table.release(&self.key);
    }
}

impl std::fmt::Debug for FutureHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Future({})", self.0.key)
    }
}

impl FutureHandle {
    /// A handle for a key already registered in the client's table.
    pub(crate) fn new(key: Key, client: Arc<ClientInner>) -> Self {
        FutureHandle(Arc::new(HandleInner { key, client }))
    }

    /// The key.
    pub fn key(&self) -> &Key {
        &self.0.key
    }

    /// Where the task stands.
    pub fn status(&self) -> FutureStatus {
        self.0.client.table.status(&self.0.key)
    }

    pub(crate) fn client(&self) -> &Arc<ClientInner> {
        &self.0.client
    }

    /// Waits for the result and fetches it from a worker holding it.
    pub(crate) fn fetch<T: Data + Clone>(&self) -> Result<T, Error> {
        self.fetch_value()?
            .extract::<T>()
            .map_err(|error| Error::Value {
                key: self.0.key.clone(),
                error,
            })
    }

    /// Waits for the result and fetches it, shared rather than copied when it
    /// lives in this process.
    pub(crate) fn fetch_shared<T: Data>(&self) -> Result<Arc<T>, Error> {
        self.fetch_value()?
            .get::<T>()
            .map_err(|error| Error::Value {
                key: self.0.key.clone(),
                error,
            })
    }

    fn fetch_value(&self) -> Result<Value, Error> {
        let table = &self.0.client.table;
        let key = &self.0.key;
        loop {
            self.0.client.wait_done(&[key]);
            let status = table.status(key);
            match &status {
                FutureStatus::Finished { worker } => {
                    let client = &self.0.client;
                    let value = client
                        .fetch_one(key, *worker)
                        .or_else(|| client.fetch_anywhere(key));
                    if let Some(value) = value {
                        return Ok(value);
                    }
                    // The holder is gone; the scheduler will report the key lost and recompute it.
                    if self.0.client.is_closed() {
                        return Err(Error::ClusterClosed);
                    }
                    table.wait_change(key, &status);
                }
                FutureStatus::Erred(error) => {
                    return Err(Error::Task {
                        key: key.clone(),
                        error: error.clone(),
                    })
                }
                FutureStatus::Cancelled => return Err(Error::Cancelled(key.clone())),
                FutureStatus::Rejected(message) => {
                    return Err(Error::GraphRejected {
                        keys: key.to_string(),
                        message: message.clone(),
                    })
                }
                FutureStatus::Pending => {}
            }
        }
    }
}

/// A result that will exist on the cluster: Dask's `Future`.
pub struct Future<T> {
    handle: FutureHandle,
    types: PhantomData<fn() -> T>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            handle: self.handle.clone(),
            types: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Future<{}>({}, {:?})",
            std::any::type_name::<T>(),
            self.key(),
            self.status()
        )
    }
}

impl<T> Future<T> {
    pub(crate) fn from_handle(handle: FutureHandle) -> Self {
        Future {
            handle,
            types: PhantomData,
        }
    }

    /// The key of the task.
    pub fn key(&self) -> &Key {
        self.handle.key()
    }

    /// Where the task stands.
    pub fn status(&self) -> FutureStatus {
        self.handle.status()
    }

    /// Whether the task has finished, failed or been cancelled.
    pub fn done(&self) -> bool {
        self.status().is_done()
    }

    /// The untyped handle.
    pub fn handle(&self) -> &FutureHandle {
        &self.handle
    }
}

impl<T: Data> Future<T> {
    /// Waits for the result and returns it shared: no copy on an in-process
    /// cluster, one decode for a remote one.
    pub fn shared(&self) -> Result<Arc<T>, Error> {
        self.handle.fetch_shared()
    }
}

impl<T: Data + Clone> Future<T> {
    /// Waits for the task and returns its result (Dask's `future.result()`).
    pub fn result(&self) -> Result<T, Error> {
        self.handle.fetch()
    }
}

//! Data between in-process workers: direct access to each other's stores and
//! shuffle buffers (peer to peer, never through the scheduler), the embedded
//! cluster's equivalent of the TCP data port. The channels to the scheduler
//! loop are the scheduler runtime's ([`crate::server::channels`]).

use super::shuffle_buffers::{Shard, ShuffleBuffers};
use super::DataStore;
use crate::graph::Key;
use crate::scheduler::WorkerId;
use crate::value::Value;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

/// What one in-process worker holds that its peers may reach.
struct Holdings {
    store: Arc<DataStore>,
    shuffles: Arc<ShuffleBuffers>,
}

/// Every worker's store and shuffle buffers, for exchanging data peer to peer.
#[derive(Default)]
pub struct Peers {
    workers: RwLock<HashMap<WorkerId, Holdings>>,
}

impl Peers {
    /// Makes a worker's store and shuffle buffers reachable.
    pub fn insert(&self, worker: WorkerId, store: Arc<DataStore>, shuffles: Arc<ShuffleBuffers>) {
        self.write().insert(worker, Holdings { store, shuffles });
    }

    /// Makes a worker unreachable (it left or died).
    pub fn remove(&self, worker: WorkerId) {
        self.write().remove(&worker);
    }

    /// The value of `key` from the first of `holders` that has it.
    pub fn fetch(&self, key: &Key, holders: &[WorkerId]) -> Option<Value> {
        let workers = self.read();
        holders
            .iter()
            .filter_map(|w| workers.get(w))
            .find_map(|h| h.store.get(key))
    }

    /// The values of `keys` held in memory by `worker` (`None` for the others).
    pub fn fetch_in_memory(&self, keys: &[&Key], worker: WorkerId) -> Vec<Option<Value>> {
        match self.read().get(&worker) {
            Some(h) => h.store.get_in_memory(keys),
            None => vec![None; keys.len()],
        }
    }

    /// Gives shuffle shards to `worker`.
    pub fn push_shards(
        &self,
        worker: WorkerId,
        shuffle: &str,
        shards: Vec<Shard>,
    ) -> Result<(), String> {
        let shuffles = self.shuffles_of(worker)?;
        shuffles.receive(shuffle, shards).map_err(|e| e.to_string())
    }

    /// Takes output partition `part`'s shards from `worker`.
    pub fn take_shards(
        &self,
        worker: WorkerId,
        shuffle: &str,
        part: u32,
    ) -> Result<BTreeMap<u32, Bytes>, String> {
        let shuffles = self.shuffles_of(worker)?;
        shuffles.take(shuffle, part).map_err(|e| e.to_string())
    }

    /// Every reachable worker.
    pub fn workers(&self) -> Vec<WorkerId> {
        let mut ids: Vec<WorkerId> = self.read().keys().copied().collect();
        ids.sort();
        ids
    }

    fn shuffles_of(&self, worker: WorkerId) -> Result<Arc<ShuffleBuffers>, String> {
        self.read()
            .get(&worker)
            .map(|h| h.shuffles.clone())
            .ok_or_else(|| format!("{worker} is gone"))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<WorkerId, Holdings>> {
        self.workers.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<WorkerId, Holdings>> {
        self.workers.write().unwrap_or_else(|p| p.into_inner())
    }
}

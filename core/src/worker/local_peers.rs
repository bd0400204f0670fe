//! Data between in-process workers: direct access to each other's stores (peer
//! to peer, never through the scheduler), the embedded cluster's equivalent of
//! the TCP data port. The channels to the scheduler loop are the scheduler
//! runtime's ([`crate::server::channels`]).

use super::DataStore;
use crate::graph::Key;
use crate::scheduler::WorkerId;
use crate::value::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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

    /// The values of `keys` held in memory by `worker` (`None` for the others).
    pub fn fetch_in_memory(&self, keys: &[&Key], worker: WorkerId) -> Vec<Option<Value>> {
        let stores = self.stores.read().unwrap_or_else(|p| p.into_inner());
        match stores.get(&worker) {
            Some(store) => store.get_in_memory(keys),
            None => vec![None; keys.len()],
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<WorkerId, Arc<DataStore>>> {
        self.stores.write().unwrap_or_else(|p| p.into_inner())
    }
}

//! Fetching task inputs (and replicas) from peers in batches.
//!
//! Keys a worker asks for before its I/O runtime gets round to them go to each
//! holder together: one `GetData` per [`MESSAGE_BYTES_LIMIT`] of data (Dask's
//! `transfer-message-bytes-limit`), sized from what the scheduler says each
//! key weighs. All requests in flight together stay within an incoming budget
//! (Dask's `memory.transfer`: a tenth of the memory limit), so fetching never
//! pushes a worker over its limit; the holder streams its answer.

use super::runtime::WorkerCore;
use crate::comm::peers::PeerPool;
use crate::graph::Key;
use crate::scheduler::WorkerId;
use crate::value::Value;
use foldhash::{HashMap, HashMapExt};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// The most data asked of one peer in one request (Dask's default, 50 MB).
pub const MESSAGE_BYTES_LIMIT: u64 = 50_000_000;
/// The share of the memory limit that data being fetched may take at once.
pub const INCOMING_FRACTION: f64 = 0.1;
/// The incoming budget of a worker without a memory limit.
pub const UNLIMITED_INCOMING: u64 = 256 << 20;
/// Budget is counted in units of this many bytes (a semaphore's permits).
const UNIT: u64 = 4096;

/// One key wanted, where it is, and how big it is said to be.
#[derive(Debug, Clone)]
struct Wanted {
    key: Key,
    holders: Vec<WorkerId>,
    nbytes: u64,
}

/// Batches fetches per holder and keeps them within the incoming budget.
pub(crate) struct Fetcher {
    peers: Arc<PeerPool>,
    runtime: tokio::runtime::Handle,
    pending: Arc<Mutex<Vec<Wanted>>>,
    budget: Arc<Semaphore>,
    budget_units: u32,
}

impl Fetcher {
    /// A fetcher using `peers` on `runtime`, for a worker with `memory_limit`
    /// bytes (0: none).
    pub(crate) fn new(
        peers: Arc<PeerPool>,
        runtime: tokio::runtime::Handle,
        memory_limit: u64,
    ) -> Fetcher {
        let budget = incoming_budget(memory_limit);
        let budget_units = u32::try_from(budget / UNIT).unwrap_or(u32::MAX).max(1);
        Fetcher {
            peers,
            runtime,
            pending: Arc::default(),
            budget: Arc::new(Semaphore::new(budget_units as usize)),
            budget_units,
        }
    }

    /// Fetches `key` from one of `holders`; calls [`WorkerCore::fetched_many`]
    /// when done. Keys asked for in quick succession travel together.
    pub(crate) fn request(
        &self,
        core: &Arc<WorkerCore>,
        key: Key,
        holders: Vec<WorkerId>,
        nbytes: u64,
    ) {
        let first = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.push(Wanted {
                key,
                holders,
                nbytes,
            });
            pending.len() == 1
        };
        if !first {
            // A drain is already on its way and will take this key too.
            return;
        }
        let pending = self.pending.clone();
        let peers = self.peers.clone();
        let budget = self.budget.clone();
        let budget_units = self.budget_units;
        let core = core.clone();
        self.runtime.spawn(async move {
            // Let the rest of this turn's requests arrive.
            tokio::task::yield_now().await;
            let batch = std::mem::take(&mut *pending.lock().unwrap_or_else(|p| p.into_inner()));
            for request in requests(batch) {
                let units = units_for(request.iter().map(|w| w.nbytes).sum(), budget_units);
                let peers = peers.clone();
                let core = core.clone();
                let budget = budget.clone();
                tokio::spawn(async move {
                    // Closed only when the runtime goes; then nothing is fetched.
                    let Ok(_permit) = budget.acquire_many_owned(units).await else {
                        return;
                    };
                    fetch(&peers, &core, request).await;
                });
            }
        });
    }
}

/// The incoming budget for a worker with `memory_limit` bytes (0: none).
fn incoming_budget(memory_limit: u64) -> u64 {
    if memory_limit == 0 {
        UNLIMITED_INCOMING
    } else {
        ((memory_limit as f64 * INCOMING_FRACTION) as u64).max(UNIT)
    }
}

/// Budget units for a request of `nbytes`: at least one, at most all (a value
/// larger than the budget travels alone).
fn units_for(nbytes: u64, budget_units: u32) -> u32 {
    u32::try_from(nbytes.div_ceil(UNIT))
        .unwrap_or(u32::MAX)
        .clamp(1, budget_units)
}

/// Splits wanted keys into requests: by the holder asked first, each request
/// at most [`MESSAGE_BYTES_LIMIT`] (a larger key goes alone).
fn requests(batch: Vec<Wanted>) -> Vec<Vec<Wanted>> {
    let mut by_holder: HashMap<Option<WorkerId>, Vec<Wanted>> = HashMap::new();
    for wanted in batch {
        by_holder
            .entry(wanted.holders.first().copied())
            .or_default()
            .push(wanted);
    }
    let mut out = Vec::new();
    for (_, group) in by_holder {
        let mut current: Vec<Wanted> = Vec::new();
        let mut bytes = 0u64;
        for wanted in group {
            if !current.is_empty() && bytes.saturating_add(wanted.nbytes) > MESSAGE_BYTES_LIMIT {
                out.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes = bytes.saturating_add(wanted.nbytes);
            current.push(wanted);
        }
        if !current.is_empty() {
            out.push(current);
        }
    }
    out
}

/// One `GetData` to the first holder for every key of the request; keys it
/// lacks are asked of their other holders one by one.
async fn fetch(peers: &PeerPool, core: &Arc<WorkerCore>, request: Vec<Wanted>) {
    let keys: Vec<Key> = request.iter().map(|w| w.key.clone()).collect();
    let mut got: HashMap<Key, bytes::Bytes> = match request.first().and_then(|w| w.holders.first())
    {
        Some(&holder) => peers.get(&[holder], &keys).await.into_iter().collect(),
        None => HashMap::new(),
    };
    let mut results: Vec<(Key, Option<Value>)> = Vec::with_capacity(request.len());
    for wanted in request {
        let bytes = match got.remove(&wanted.key) {
            Some(bytes) => Some(bytes),
            None if wanted.holders.len() > 1 => peers
                .get(&wanted.holders[1..], std::slice::from_ref(&wanted.key))
                .await
                .pop()
                .map(|(_, b)| b),
            None => None,
        };
        results.push((wanted.key, bytes.map(Value::Encoded)));
    }
    let core = core.clone();
    // The store may spill on put: off the I/O threads.
    let _ = tokio::task::spawn_blocking(move || core.fetched_many(results)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(key: &str, holders: &[u32], nbytes: u64) -> Wanted {
        Wanted {
            key: Key::new(key),
            holders: holders.iter().map(|&h| WorkerId(h)).collect(),
            nbytes,
        }
    }

    #[test]
    fn keys_group_by_first_holder_and_requests_stay_under_the_byte_limit() {
        let mb = 1_000_000;
        let mut out = requests(vec![
            wanted("a", &[1, 2], 20 * mb),
            wanted("b", &[2], 1),
            wanted("c", &[1], 20 * mb),
            wanted("d", &[1], 20 * mb),
            wanted("huge", &[1], 90 * mb),
            wanted("lost", &[], 0),
        ]);
        out.sort_by_key(|r| (r[0].holders.first().map(|h| h.0), r[0].key.to_string()));
        let names: Vec<Vec<String>> = out
            .iter()
            .map(|r| r.iter().map(|w| w.key.to_string()).collect())
            .collect();
        assert_eq!(
            names,
            [
                vec!["lost"],
                vec!["a", "c"],
                vec!["d"],
                vec!["huge"],
                vec!["b"]
            ]
        );
        for request in &out {
            let bytes: u64 = request.iter().map(|w| w.nbytes).sum();
            assert!(bytes <= MESSAGE_BYTES_LIMIT || request.len() == 1);
        }
    }

    #[test]
    fn the_budget_is_a_tenth_of_the_limit_and_a_big_value_may_use_all_of_it() {
        assert_eq!(incoming_budget(0), UNLIMITED_INCOMING);
        assert_eq!(incoming_budget(256 << 20), (256 << 20) / 10);
        let units = (incoming_budget(256 << 20) / UNIT) as u32;
        assert_eq!(units_for(0, units), 1);
        assert_eq!(units_for(8 << 20, units), 2048);
        assert_eq!(units_for(1 << 40, units), units);
    }
}

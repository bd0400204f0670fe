//! Fetching task inputs from peers in batches: the keys a worker asks for
//! before its I/O runtime gets round to them go to each holder in one
//! `GetData`, instead of one round trip per key.

use super::runtime::WorkerCore;
use crate::comm::peers::PeerPool;
use crate::graph::Key;
use crate::scheduler::WorkerId;
use crate::value::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Wanted = Vec<(Key, Vec<WorkerId>)>;

/// Batches fetches per holder.
pub(crate) struct Fetcher {
    peers: Arc<PeerPool>,
    runtime: tokio::runtime::Handle,
    pending: Arc<Mutex<Wanted>>,
}

impl Fetcher {
    /// A fetcher using `peers`, running on `runtime`.
    pub(crate) fn new(peers: Arc<PeerPool>, runtime: tokio::runtime::Handle) -> Fetcher {
        Fetcher {
            peers,
            runtime,
            pending: Arc::default(),
        }
    }

    /// Fetches `key` from one of `holders`; calls [`WorkerCore::fetched`] when
    /// done. Keys asked for in quick succession travel together.
    pub(crate) fn request(&self, core: &Arc<WorkerCore>, key: Key, holders: Vec<WorkerId>) {
        let first = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.push((key, holders));
            pending.len() == 1
        };
        if !first {
            // A drain is already on its way and will take this key too.
            return;
        }
        let pending = self.pending.clone();
        let peers = self.peers.clone();
        let core = core.clone();
        self.runtime.spawn(async move {
            // Let the rest of this turn's requests arrive.
            tokio::task::yield_now().await;
            let batch = std::mem::take(&mut *pending.lock().unwrap_or_else(|p| p.into_inner()));
            for (holder, wanted) in by_first_holder(batch) {
                let peers = peers.clone();
                let core = core.clone();
                tokio::spawn(fetch_group(peers, core, holder, wanted));
            }
        });
    }
}

/// Groups wanted keys by the holder asked first.
fn by_first_holder(batch: Wanted) -> HashMap<Option<WorkerId>, Wanted> {
    let mut groups: HashMap<Option<WorkerId>, Wanted> = HashMap::new();
    for (key, holders) in batch {
        groups
            .entry(holders.first().copied())
            .or_default()
            .push((key, holders));
    }
    groups
}

/// One `GetData` to `holder` for every key of the group; keys it lacks are
/// asked of their other holders one by one.
async fn fetch_group(
    peers: Arc<PeerPool>,
    core: Arc<WorkerCore>,
    holder: Option<WorkerId>,
    wanted: Wanted,
) {
    let keys: Vec<Key> = wanted.iter().map(|(key, _)| key.clone()).collect();
    let mut got: HashMap<Key, Arc<[u8]>> = match holder {
        Some(holder) => peers.get(&[holder], &keys).await.into_iter().collect(),
        None => HashMap::new(),
    };
    let mut results: Vec<(Key, Option<Value>)> = Vec::with_capacity(wanted.len());
    for (key, holders) in wanted {
        let bytes = match got.remove(&key) {
            Some(bytes) => Some(bytes),
            None => {
                let others: Vec<WorkerId> = holders.iter().skip(1).copied().collect();
                peers
                    .get(&others, std::slice::from_ref(&key))
                    .await
                    .pop()
                    .map(|(_, b)| b)
            }
        };
        results.push((key, bytes.map(Value::Encoded)));
    }
    // The store may spill on put: off the I/O threads.
    let _ = tokio::task::spawn_blocking(move || {
        for (key, value) in results {
            core.fetched(key, value);
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_group_under_the_holder_asked_first() {
        let (a, b) = (WorkerId(1), WorkerId(2));
        let groups = by_first_holder(vec![
            (Key::new("x"), vec![a, b]),
            (Key::new("y"), vec![b]),
            (Key::new("z"), vec![a]),
            (Key::new("lost"), vec![]),
        ]);
        assert_eq!(groups[&Some(a)].len(), 2);
        assert_eq!(groups[&Some(b)].len(), 1);
        assert_eq!(groups[&None][0].0, Key::new("lost"));
    }
}

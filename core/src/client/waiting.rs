//! Waiting on futures: `wait` and `as_completed`.

use super::Future;
use crate::graph::Key;
use crossbeam_channel::Receiver;
use std::collections::HashMap;

/// Blocks until every future has finished, failed or been cancelled (Dask's `wait`).
pub fn wait<T>(futures: &[Future<T>]) {
    let Some(first) = futures.first() else { return };
    let keys: Vec<&Key> = futures.iter().map(|f| f.key()).collect();
    first.handle().client().wait_done(&keys);
}

/// Yields futures in the order they complete (Dask's `as_completed`).
pub fn as_completed<T>(futures: impl IntoIterator<Item = Future<T>>) -> AsCompleted<T> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut pending: HashMap<Key, Vec<Future<T>>> = HashMap::new();
    let futures: Vec<Future<T>> = futures.into_iter().collect();
    for future in &futures {
        pending
            .entry(future.key().clone())
            .or_default()
            .push(future.clone());
    }
    for future in &futures {
        future.handle().client().table.watch(future.key(), &tx);
    }
    AsCompleted { rx, pending }
}

/// Iterator returned by [`as_completed`].
pub struct AsCompleted<T> {
    rx: Receiver<Key>,
    pending: HashMap<Key, Vec<Future<T>>>,
}

impl<T> Iterator for AsCompleted<T> {
    type Item = Future<T>;

    fn next(&mut self) -> Option<Future<T>> {
        loop {
            if self.pending.is_empty() {
                return None;
            }
            let key = self.rx.recv().ok()?;
            if let Some(list) = self.pending.get_mut(&key) {
                let future = list.pop();
                if list.is_empty() {
                    self.pending.remove(&key);
                }
                if future.is_some() {
                    return future;
                }
            }
        }
    }
}

impl<T> AsCompleted<T> {
    /// Futures not yet yielded.
    pub fn remaining(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }
}

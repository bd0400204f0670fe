//! A worker's results in memory, shared with the threads that run tasks and with
//! peers that fetch from it.

use crate::graph::Key;
use crate::value::Value;
use std::collections::HashMap;
use std::sync::Mutex;

/// Results held by one worker.
#[derive(Default)]
pub struct DataStore {
    values: Mutex<HashMap<Key, Value>>,
}

impl DataStore {
    /// The value of `key`, if held.
    pub fn get(&self, key: &Key) -> Option<Value> {
        self.lock().get(key).cloned()
    }

    /// Stores a value.
    pub fn put(&self, key: Key, value: Value) {
        self.lock().insert(key, value);
    }

    /// Drops a value.
    pub fn remove(&self, key: &Key) -> Option<Value> {
        self.lock().remove(key)
    }

    /// How many values are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Drops everything (the worker died or closed).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Value>> {
        // A panic while holding this lock cannot leave the map half-updated.
        self.values
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

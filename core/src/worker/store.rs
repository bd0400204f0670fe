//! A worker's results, shared with the threads that run tasks and with peers
//! that fetch from it. With a spill directory, least-recently-used values move to
//! disk when memory runs short, and come back transparently when asked for.

use crate::graph::Key;
use crate::value::Value;
use foldhash::HashMap;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Results held by one worker.
#[derive(Default)]
pub struct DataStore {
    inner: Mutex<Inner>,
    spill_dir: Option<PathBuf>,
    /// Managed bytes above which `put` spills down to this (0: never).
    target_bytes: AtomicU64,
}

#[derive(Default)]
struct Inner {
    memory: HashMap<Key, InMemory>,
    /// Last use → key, oldest first (kept only by stores that can spill).
    lru: BTreeMap<u64, Key>,
    disk: HashMap<Key, OnDisk>,
    /// Values being written to disk, still readable until they are there.
    spilling: HashMap<Key, Value>,
    managed: u64,
    spilled: u64,
    clock: u64,
    next_file: u64,
}

struct InMemory {
    value: Value,
    nbytes: u64,
    used: u64,
}

struct OnDisk {
    path: PathBuf,
    nbytes: u64,
}

/// What a store holds, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreSizes {
    /// Bytes of values in memory.
    pub managed: u64,
    /// Bytes of values on disk.
    pub spilled: u64,
    /// Values in memory.
    pub in_memory: usize,
    /// Values on disk.
    pub on_disk: usize,
}

impl DataStore {
    /// A store that can spill into `dir` once managed memory passes `target_bytes`
    /// (0: only when asked with [`DataStore::spill_until`]).
    pub fn with_spill(dir: PathBuf, target_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(DataStore {
            inner: Mutex::default(),
            spill_dir: Some(dir),
            target_bytes: AtomicU64::new(target_bytes),
        })
    }

    /// The value of `key`, if held; a spilled value is read back into memory.
    pub fn get(&self, key: &Key) -> Option<Value> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        if let Some(entry) = inner.memory.get_mut(key) {
            let old = std::mem::replace(&mut entry.used, now);
            let value = entry.value.clone();
            if self.spill_dir.is_some() {
                inner.lru.remove(&old);
                inner.lru.insert(now, key.clone());
            }
            return Some(value);
        }
        if let Some(value) = inner.spilling.get(key) {
            return Some(value.clone());
        }
        let disk = inner.disk.remove(key)?;
        inner.spilled -= disk.nbytes;
        let bytes = match read_shared(&disk.path) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(%key, path = %disk.path.display(), %error, "cannot read spilled data");
                return None;
            }
        };
        let _ = std::fs::remove_file(&disk.path);
        let value = Value::Encoded(bytes);
        self.insert_locked(&mut inner, key.clone(), value.clone(), disk.nbytes);
        drop(inner);
        self.spill_to_target();
        Some(value)
    }

    /// The values of `keys` that are in memory, under one lock (`None` for a
    /// key not held or spilled: [`DataStore::get`] reads those back).
    pub fn get_in_memory(&self, keys: &[&Key]) -> Vec<Option<Value>> {
        let mut inner = self.lock();
        let spills = self.spill_dir.is_some();
        keys.iter()
            .map(|&key| {
                inner.clock += 1;
                let now = inner.clock;
                let entry = inner.memory.get_mut(key)?;
                let old = std::mem::replace(&mut entry.used, now);
                let value = entry.value.clone();
                if spills {
                    inner.lru.remove(&old);
                    inner.lru.insert(now, key.clone());
                }
                Some(value)
            })
            .collect()
    }

    /// Stores a value; spills older values when past the target.
    pub fn put(&self, key: Key, value: Value) {
        let nbytes = value.nbytes() as u64;
        let target = self.target_bytes.load(Ordering::Relaxed);
        let over = {
            let mut inner = self.lock();
            self.insert_locked(&mut inner, key, value, nbytes);
            target > 0 && inner.managed > target
        };
        if over {
            self.spill_until(target);
        }
    }

    fn insert_locked(&self, inner: &mut Inner, key: Key, value: Value, nbytes: u64) {
        inner.clock += 1;
        let used = inner.clock;
        if let Some(old) = inner.memory.remove(&key) {
            inner.lru.remove(&old.used);
            inner.managed -= old.nbytes;
        }
        if let Some(old) = inner.disk.remove(&key) {
            inner.spilled -= old.nbytes;
            let _ = std::fs::remove_file(old.path);
        }
        // A spill of an older value of this key in progress is dropped when done.
        inner.spilling.remove(&key);
        inner.managed += nbytes;
        if self.spill_dir.is_some() {
            inner.lru.insert(used, key.clone());
        }
        inner.memory.insert(
            key,
            InMemory {
                value,
                nbytes,
                used,
            },
        );
    }

    /// Drops a value, in memory or on disk. Returns whether it was held.
    pub fn remove(&self, key: &Key) -> bool {
        let mut inner = self.lock();
        if let Some(entry) = inner.memory.remove(key) {
            inner.lru.remove(&entry.used);
            inner.managed -= entry.nbytes;
            return true;
        }
        if let Some(disk) = inner.disk.remove(key) {
            inner.spilled -= disk.nbytes;
            let _ = std::fs::remove_file(disk.path);
            return true;
        }
        inner.spilling.remove(key).is_some()
    }

    /// Whether `key` is held (in memory or on disk).
    pub fn contains(&self, key: &Key) -> bool {
        let inner = self.lock();
        inner.memory.contains_key(key)
            || inner.disk.contains_key(key)
            || inner.spilling.contains_key(key)
    }

    /// How many values are held.
    pub fn len(&self) -> usize {
        let inner = self.lock();
        inner.memory.len() + inner.disk.len() + inner.spilling.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes in memory and on disk.
    pub fn sizes(&self) -> StoreSizes {
        let inner = self.lock();
        StoreSizes {
            managed: inner.managed,
            spilled: inner.spilled,
            in_memory: inner.memory.len(),
            on_disk: inner.disk.len(),
        }
    }

    /// Changes the managed-bytes target (0: none).
    pub fn set_target(&self, bytes: u64) {
        self.target_bytes.store(bytes, Ordering::Relaxed);
    }

    fn spill_to_target(&self) {
        let target = self.target_bytes.load(Ordering::Relaxed);
        if target > 0 {
            self.spill_until(target);
        }
    }

    /// Spills least-recently-used values until at most `managed_bytes` stay in
    /// memory. Returns the bytes spilled (0 without a spill directory).
    pub fn spill_until(&self, managed_bytes: u64) -> u64 {
        let Some(dir) = &self.spill_dir else {
            return 0;
        };
        let mut spilled = 0;
        loop {
            let (key, value, nbytes, path) = {
                let mut inner = self.lock();
                if inner.managed <= managed_bytes {
                    return spilled;
                }
                let Some((_, key)) = inner.lru.pop_first() else {
                    return spilled;
                };
                let Some(entry) = inner.memory.remove(&key) else {
                    continue;
                };
                inner.managed -= entry.nbytes;
                inner.next_file += 1;
                let path = dir.join(format!("{}.bin", inner.next_file));
                inner.spilling.insert(key.clone(), entry.value.clone());
                (key, entry.value, entry.nbytes, path)
            };
            // Encode and write without the lock; readers find the value in
            // `spilling` meanwhile.
            let written = match &value {
                // Encode straight into the file's bytes: no second copy.
                Value::Object(object) => object
                    .encode()
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| std::fs::write(&path, bytes).map_err(|e| e.to_string())),
                Value::Encoded(bytes) => std::fs::write(&path, bytes).map_err(|e| e.to_string()),
            };
            let mut inner = self.lock();
            if inner.spilling.remove(&key).is_none() {
                // Removed or replaced while it was being written.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            match written {
                Ok(()) => {
                    inner.spilled += nbytes;
                    inner.disk.insert(key, OnDisk { path, nbytes });
                    spilled += nbytes;
                }
                Err(error) => {
                    tracing::error!(%key, %error, "cannot spill; keeping the value in memory");
                    self.insert_locked(&mut inner, key, value, nbytes);
                    return spilled;
                }
            }
        }
    }

    /// Drops everything (the worker died or closed), including spilled files.
    pub fn clear(&self) {
        let mut inner = self.lock();
        for (_, disk) in inner.disk.drain() {
            let _ = std::fs::remove_file(disk.path);
        }
        *inner = Inner::default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps half-updated.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Reads a file straight into shared bytes (no second copy of a large value).
fn read_shared(path: &std::path::Path) -> std::io::Result<bytes::Bytes> {
    std::fs::read(path).map(bytes::Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_values_spill_and_come_back() {
        let dir = std::env::temp_dir().join(format!("rask-store-{}", std::process::id()));
        let store = DataStore::with_spill(dir.clone(), 0).unwrap();
        for i in 0..4u64 {
            store.put(Key::new(format!("x-{i}")), Value::new(vec![i as u8; 1000]));
        }
        let per_value = store.sizes().managed / 4;
        assert!(per_value >= 1000, "sizes count the bytes: {per_value}");
        // Touch x-0 so x-1 is the oldest.
        store.get(&Key::new("x-0")).unwrap();
        store.spill_until(2 * per_value);
        let sizes = store.sizes();
        assert_eq!((sizes.in_memory, sizes.on_disk), (2, 2));
        assert!(!store.lock().memory.contains_key(&Key::new("x-1")));
        assert!(store.lock().memory.contains_key(&Key::new("x-0")));
        let back: Vec<u8> = store.get(&Key::new("x-1")).unwrap().extract().unwrap();
        assert_eq!(back, vec![1u8; 1000]);
        assert!(store.remove(&Key::new("x-2")) || store.remove(&Key::new("x-3")));
        store.clear();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_value_on_its_way_to_disk_can_still_be_read() {
        let dir = std::env::temp_dir().join(format!("rask-store-race-{}", std::process::id()));
        let store = DataStore::with_spill(dir.clone(), 0).unwrap();
        let key = Key::new("moving");
        // As spill_until leaves it between taking it out of memory and writing it.
        store
            .lock()
            .spilling
            .insert(key.clone(), Value::new(vec![7u8; 10]));
        assert!(store.contains(&key));
        let value: Vec<u8> = store.get(&key).unwrap().extract().unwrap();
        assert_eq!(value, vec![7u8; 10]);
        assert!(store.remove(&key));
        assert!(!store.contains(&key));
        let _ = std::fs::remove_dir_all(dir);
    }
}

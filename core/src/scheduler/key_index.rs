//! The scheduler's index from keys to task ids.
//!
//! It holds ids alone (4 bytes a slot, where a map from key to id took 32):
//! each key lives once, in its task record, and its hash was computed when the
//! key was made, so a lookup hashes nothing and compares texts only when
//! hashes match.

use super::state::{Task, TaskId};
use crate::graph::Key;
use hashbrown::HashTable;

/// Task ids by key; the keys themselves are in the task table it is given.
#[derive(Default)]
pub(crate) struct KeyIndex {
    table: HashTable<TaskId>,
}

fn key_of(tasks: &[Option<Task>], id: TaskId) -> &Key {
    &tasks[id as usize]
        .as_ref()
        .expect("the key index holds live task ids only")
        .key
}

impl KeyIndex {
    /// The id of `key`'s task.
    pub fn get(&self, key: &Key, tasks: &[Option<Task>]) -> Option<TaskId> {
        self.table
            .find(key.precomputed_hash(), |&id| key_of(tasks, id) == key)
            .copied()
    }

    /// Indexes task `id`, whose record in `tasks` holds its key (not yet indexed).
    pub fn insert(&mut self, id: TaskId, tasks: &[Option<Task>]) {
        let hash = key_of(tasks, id).precomputed_hash();
        self.table
            .insert_unique(hash, id, |&other| key_of(tasks, other).precomputed_hash());
    }

    /// Forgets task `id`, whose record must still be in `tasks`; returns
    /// whether it was indexed.
    pub fn remove_id(&mut self, id: TaskId, tasks: &[Option<Task>]) -> bool {
        let Some(Some(task)) = tasks.get(id as usize) else {
            return false;
        };
        self.table
            .find_entry(task.key.precomputed_hash(), |&other| other == id)
            .map(|entry| entry.remove())
            .is_ok()
    }

    /// Room for `more` ids without growing.
    pub fn reserve(&mut self, more: usize, tasks: &[Option<Task>]) {
        self.table
            .reserve(more, |&id| key_of(tasks, id).precomputed_hash());
    }

    /// How many keys are indexed.
    pub fn len(&self) -> usize {
        self.table.len()
    }
}

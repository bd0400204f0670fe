//! What clients do to keys: release them (futures dropped), cancel them, or leave.

use super::ids::ClientId;
use super::messages::{Command, Report};
use super::state::{State, TaskId};
use crate::graph::Key;
use foldhash::HashSet;

impl State {
    pub(crate) fn client_releases_keys(&mut self, client: ClientId, keys: &[Key]) {
        let ids: Vec<TaskId> = keys.iter().filter_map(|k| self.id_of(k)).collect();
        self.unwant(client, ids);
    }

    /// Cancels `keys` and everything depending on them that `client` wants.
    pub(crate) fn cancel(&mut self, client: ClientId, keys: &[Key]) {
        let mut seen = HashSet::default();
        let mut stack: Vec<TaskId> = keys.iter().filter_map(|k| self.id_of(k)).collect();
        let mut cancelled = Vec::new();
        while let Some(t) = stack.pop() {
            if !seen.insert(t) {
                continue;
            }
            let task = self.task(t);
            stack.extend(task.dependents.iter().copied());
            if task.who_wants.contains(client) {
                self.out.push(Command::Report {
                    client,
                    report: Report::Cancelled {
                        key: task.key.clone(),
                    },
                });
                cancelled.push(t);
            }
        }
        self.unwant(client, cancelled);
    }

    pub(crate) fn remove_client(&mut self, client: ClientId) {
        self.work.remove(&client);
        let ids: Vec<TaskId> = self
            .clients
            .remove(&client)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default();
        self.unwant(client, ids);
    }

    fn unwant(&mut self, client: ClientId, ids: Vec<TaskId>) {
        let wants = self.clients.get_mut(&client);
        let mut settle = Vec::with_capacity(ids.len());
        if let Some(wants) = wants {
            for &t in &ids {
                wants.remove(&t);
            }
        }
        for t in ids {
            if self.task_mut(t).who_wants.remove(client) {
                settle.push(t);
            }
        }
        self.settle(settle);
    }
}

//! Plugins on the scheduler: the libraries clients uploaded, kept by content
//! hash and sent to every worker process, present and future, before any order
//! that may run their ops; and the uploads waiting to hear how the workers
//! present took them.

use super::event_loop::{Loop, Waiter, WorkerLink};
use crate::comm::connection::{Outbox, Outgoing};
use crate::comm::protocol::{Message, PluginReport, Reply};
use crate::scheduler::WorkerId;
use std::collections::HashSet;

/// A plugin library a client uploaded.
pub(super) struct StoredPlugin {
    name: String,
    hash: String,
    library: bytes::Bytes,
}

impl StoredPlugin {
    fn message(&self) -> Outgoing {
        Outgoing {
            message: Message::LoadPlugin {
                name: self.name.clone(),
                hash: self.hash.clone(),
                library: bytes::Bytes::new(),
            },
            // As a blob: a library may be larger than a message frame.
            blobs: vec![self.library.clone()],
        }
    }
}

/// An upload whose client waits for the workers' answers.
pub(super) struct PendingUpload {
    waiter: Waiter,
    waiting: HashSet<WorkerId>,
    report: PluginReport,
}

impl Loop {
    /// Keeps an uploaded plugin and sends it to every worker process; the
    /// reply comes when they have all answered (now, if there are none).
    pub(super) fn upload_plugin(
        &mut self,
        waiter: Waiter,
        name: String,
        hash: String,
        library: bytes::Bytes,
    ) -> Option<(Waiter, Reply)> {
        if library.len() as u64 > crate::plugin::MAX_LIBRARY_BYTES {
            let error = format!(
                "plugin {name}: {} bytes, more than the {} a plugin may have",
                library.len(),
                crate::plugin::MAX_LIBRARY_BYTES
            );
            return Some((waiter, Reply::Error(error)));
        }
        let actual = crate::plugin::content_hash(&library);
        if actual != hash {
            let error = format!("plugin {name}: its bytes hash to {actual}, not {hash}");
            return Some((waiter, Reply::Error(error)));
        }
        if !self.plugins.iter().any(|p| p.hash == hash) {
            tracing::info!(plugin = %name, %hash, bytes = library.len(), "keeping an uploaded plugin");
            self.plugins.push(StoredPlugin {
                name,
                hash: hash.clone(),
                library,
            });
        }
        let plugin = self.plugins.iter().find(|p| p.hash == hash)?;
        let message = plugin.message();
        let mut waiting = HashSet::new();
        for (id, entry) in &self.workers {
            if let WorkerLink::Remote(outbox, _) = &entry.link {
                outbox.send(message.clone());
                waiting.insert(*id);
            }
        }
        let report = PluginReport {
            hash,
            ..Default::default()
        };
        if waiting.is_empty() {
            return Some((waiter, Reply::Plugin(report)));
        }
        self.plugin_uploads.push(PendingUpload {
            waiter,
            waiting,
            report,
        });
        None
    }

    /// A worker that just joined hears of every plugin kept so far.
    pub(super) fn send_plugins(&self, outbox: &Outbox) {
        for plugin in &self.plugins {
            outbox.send(plugin.message());
        }
    }

    /// A worker's answer to a `LoadPlugin`.
    pub(super) fn plugin_loaded(
        &mut self,
        worker: WorkerId,
        hash: String,
        outcome: Result<Vec<String>, String>,
    ) {
        let plugin = self
            .plugins
            .iter()
            .find(|p| p.hash == hash)
            .map(|p| p.name.clone());
        let name = match self.workers.get_mut(&worker) {
            Some(entry) => {
                if let (Ok(_), Some(plugin)) = (&outcome, plugin) {
                    entry.plugins.push(plugin);
                }
                entry.name.clone()
            }
            None => worker.to_string(),
        };
        match &outcome {
            Ok(ops) => tracing::info!(%worker, %name, %hash, ?ops, "worker loaded a plugin"),
            Err(reason) => {
                tracing::warn!(%worker, %name, %hash, %reason, "worker refused a plugin")
            }
        }
        for upload in &mut self.plugin_uploads {
            if upload.report.hash == hash && upload.waiting.remove(&worker) {
                match &outcome {
                    Ok(ops) => upload.report.loaded.push((name.clone(), ops.clone())),
                    Err(reason) => upload.report.refused.push((name.clone(), reason.clone())),
                }
            }
        }
        self.answer_finished_uploads();
    }

    /// A worker that left answers no upload.
    pub(super) fn plugin_worker_gone(&mut self, worker: WorkerId) {
        for upload in &mut self.plugin_uploads {
            upload.waiting.remove(&worker);
        }
        self.answer_finished_uploads();
    }

    fn answer_finished_uploads(&mut self) {
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.plugin_uploads)
            .into_iter()
            .partition(|u| u.waiting.is_empty());
        self.plugin_uploads = waiting;
        for upload in done {
            self.answer_one(upload.waiter, Reply::Plugin(upload.report));
        }
    }
}

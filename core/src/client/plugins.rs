//! Uploading op plugins (Dask's `upload_file` / `register_plugin`).

use super::{Client, Error};
use crate::comm::protocol::{PluginReport, Reply, Request};
use std::path::Path;

impl Client {
    /// Sends the plugin library at `path` (made by `rask plugin build`) to the
    /// scheduler, which keeps it by content hash and has every worker load
    /// it, those that join later too. Returns once the workers present have
    /// answered: those that loaded it (with its ops) and those that refused
    /// it (a `--no-plugins` worker, an incompatible interface); an error if
    /// every one refused it. From then on tasks run its ops by their names,
    /// e.g. `client.map(myops::score, ..)` in a program that links the crate.
    ///
    /// The scheduler takes plugins only from authenticated clients (a token
    /// or mutual TLS). Uploading a rebuilt library adds it under its new
    /// hash: workers run the newest definition of each op, and keep every
    /// library loaded until they exit.
    pub fn upload_plugin(&self, path: impl AsRef<Path>) -> Result<PluginReport, Error> {
        let path = path.as_ref();
        let unreadable =
            |e: std::io::Error| Error::Config(format!("plugin {}: {e}", path.display()));
        let size = std::fs::metadata(path).map_err(unreadable)?.len();
        let limit = crate::plugin::MAX_LIBRARY_BYTES;
        if size > limit {
            return Err(Error::Config(format!(
                "plugin {}: {} MiB, more than the {} MiB a plugin may have; build it \
                 without the dependencies its ops do not use (rask's default features, \
                 Polars, when they use no dataframes)",
                path.display(),
                size >> 20,
                limit >> 20
            )));
        }
        let library = std::fs::read(path).map_err(unreadable)?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let hash = crate::plugin::content_hash(&library);
        let request = Request::UploadPlugin {
            name: name.clone(),
            hash,
            library: library.into(),
        };
        match self.request(request)? {
            Reply::Plugin(report) if report.loaded.is_empty() && !report.refused.is_empty() => {
                let reasons: Vec<String> = report
                    .refused
                    .iter()
                    .map(|(worker, why)| format!("{worker}: {why}"))
                    .collect();
                Err(Error::Scheduler(format!(
                    "every worker refused plugin {name}: {}",
                    reasons.join("; ")
                )))
            }
            Reply::Plugin(report) => {
                for (worker, why) in &report.refused {
                    tracing::warn!(%worker, %why, plugin = %name, "a worker refused the plugin");
                }
                Ok(report)
            }
            other => Err(Error::Scheduler(format!("unexpected reply {other:?}"))),
        }
    }
}

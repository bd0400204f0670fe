//! Dask's `performance_report`: record what the cluster does between two
//! points of a program and write it as one standalone HTML file.
//!
//! ```no_run
//! # fn main() -> Result<(), rask::client::Error> {
//! # let client = rask::Client::local(rask::LocalCluster::new())?;
//! let report = client.performance_report("report.html")?;
//! // ... compute ...
//! report.save()?;
//! # Ok(()) }
//! ```

use super::{Client, Error};
use crate::comm::protocol::{Reply, Request};
use crate::diagnostics::report::{render, ReportData};
use crate::diagnostics::{DashboardQuery, DashboardView, StatusView};
use std::path::{Path, PathBuf};

/// Bars asked for per request while saving.
const PAGE: u32 = 20_000;

/// A recording in progress; [`PerformanceReport::save`] writes the file (and
/// so does dropping it, logging any error).
pub struct PerformanceReport {
    client: Client,
    path: PathBuf,
    started: f64,
    since_bar: u64,
    since_sample: u64,
    saved: bool,
}

impl Client {
    /// Starts recording a performance report, to be written to `path`
    /// (Dask's `performance_report(filename=...)`).
    pub fn performance_report(&self, path: impl AsRef<Path>) -> Result<PerformanceReport, Error> {
        // Asking from the end gets no bars: only where the end is now.
        let now = self.status_page(u64::MAX, 0, u64::MAX)?;
        Ok(PerformanceReport {
            client: self.clone(),
            path: path.as_ref().to_path_buf(),
            started: now.now,
            since_bar: now.next_bar,
            since_sample: now.next_sample,
            saved: false,
        })
    }

    fn status_page(
        &self,
        since_bar: u64,
        max_bars: u32,
        since_sample: u64,
    ) -> Result<StatusView, Error> {
        let query = DashboardQuery::Status {
            since_bar,
            max_bars,
            oldest_first: true,
            since_sample,
        };
        match self.request(Request::Dashboard(query))? {
            Reply::Dashboard(view) => match *view {
                DashboardView::Status(status) => Ok(status),
                other => Err(Error::Scheduler(format!("unexpected answer {other:?}"))),
            },
            other => Err(Error::Scheduler(format!("unexpected reply {other:?}"))),
        }
    }
}

impl PerformanceReport {
    /// Where the report goes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops recording and writes the report; returns its path.
    pub fn save(mut self) -> Result<PathBuf, Error> {
        self.saved = true;
        self.write()
    }

    fn write(&self) -> Result<PathBuf, Error> {
        let mut data = ReportData {
            title: format!(
                "rask performance report: {}",
                self.path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            ),
            started: self.started,
            ..Default::default()
        };
        let (mut bar, mut sample) = (self.since_bar, self.since_sample);
        let mut end = None;
        loop {
            let view = self.client.status_page(bar, PAGE, sample)?;
            if data.views.is_empty() {
                data.lost_bars = view.first_bar.saturating_sub(bar);
                // The bars up to here are the run's; later ones are not.
                end = Some(view.next_bar + view.dropped_bars);
                data.finished = view.now;
            }
            let done = view.bars.is_empty() || view.next_bar >= end.unwrap_or(0);
            bar = view.next_bar;
            sample = view.next_sample;
            data.views.push(view);
            if done {
                break;
            }
        }
        std::fs::write(&self.path, render(&data))?;
        tracing::info!(path = %self.path.display(), "performance report written");
        Ok(self.path.clone())
    }
}

impl Drop for PerformanceReport {
    fn drop(&mut self) {
        if !self.saved {
            if let Err(error) = self.write() {
                tracing::warn!(%error, path = %self.path.display(), "the performance report was not written");
            }
        }
    }
}

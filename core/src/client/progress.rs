//! Progress bars: Dask's `progress` over futures, and the bar a long wait
//! draws on a terminal from the scheduler's count of the client's work.

use super::{as_completed, Client, ClientInner, Error, Future, FutureStatus};
use crate::comm::protocol::{Reply, Request};
use crate::scheduler::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// How long a wait runs before its bar appears.
pub(crate) const SHOW_AFTER: Duration = Duration::from_secs(1);
/// How often a shown bar is brought up to date.
pub(crate) const REDRAW: Duration = Duration::from_millis(100);

/// Shows a progress bar on stderr until every future is done; returns how many failed.
pub fn progress<T>(futures: &[Future<T>], label: &str) -> usize {
    let bar = ProgressBar::new(futures.len() as u64);
    bar.set_style(style(
        "{prefix:>12} [{bar:40}] {pos}/{len} tasks {per_sec} {elapsed}",
    ));
    bar.set_prefix(label.to_string());
    let mut failed = 0;
    for future in as_completed(futures.iter().cloned()) {
        if !matches!(future.status(), FutureStatus::Finished { .. }) {
            failed += 1;
        }
        bar.inc(1);
    }
    bar.finish();
    failed
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Whether waits draw bars: unset (0: decide from the terminal), on or off.
#[derive(Default)]
pub(crate) struct BarSetting(AtomicU8);

const ON: u8 = 1;
const OFF: u8 = 2;

impl BarSetting {
    /// Bars are drawn when set on, or, unset, when stderr is a terminal and
    /// `RASK_PROGRESS` is not `0`.
    pub(crate) fn shown(&self) -> bool {
        match self.0.load(Ordering::Relaxed) {
            ON => true,
            OFF => false,
            _ => {
                std::env::var("RASK_PROGRESS").map_or(true, |v| v.trim() != "0")
                    && std::io::stderr().is_terminal()
            }
        }
    }

    fn set(&self, shown: bool) {
        self.0
            .store(if shown { ON } else { OFF }, Ordering::Relaxed);
    }
}

/// The bar of one long wait: the client's tasks done of its tasks in flight.
pub(crate) struct WorkBar(ProgressBar);

impl WorkBar {
    /// A bar for a wait that began `waited` ago.
    pub(crate) fn new(waited: Duration) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
            .with_elapsed(waited);
        bar.set_style(style(
            "[{bar:40}] {pos}/{len} tasks {percent:>3}% {elapsed_precise} {msg}",
        ));
        WorkBar(bar)
    }

    pub(crate) fn update(&self, progress: Progress) {
        self.0.set_length(progress.total());
        self.0.set_position(progress.done + progress.erred);
        if progress.erred > 0 {
            self.0.set_message(format!("{} failed", progress.erred));
        }
    }

    pub(crate) fn finish(self) {
        self.0.finish();
    }
}

impl ClientInner {
    /// The scheduler's count of this client's work in flight.
    pub(crate) fn work_progress(&self) -> Result<Progress, Error> {
        match self.request(Request::Progress)? {
            Reply::Progress(progress) => Ok(progress),
            other => Err(Error::Scheduler(format!(
                "unexpected reply to a progress request: {other:?}"
            ))),
        }
    }
}

impl Client {
    /// How far this client's work has got: its tasks still to run, and those
    /// finished or failed since it last had none pending (what the progress
    /// bar of a long `compute` shows).
    pub fn work_progress(&self) -> Result<Progress, Error> {
        self.inner.work_progress()
    }

    /// Turns the progress bar of long waits on or off. By default a wait that
    /// takes more than a second draws one on stderr when stderr is a terminal
    /// and `RASK_PROGRESS` is not `0` (Dask's `ProgressBar`, always on).
    pub fn show_progress(&self, shown: bool) {
        self.inner.bars.set(shown);
    }
}

//! Progress bars: Dask's `progress` over futures, and the bar a long wait
//! draws on a terminal from the scheduler's count of the client's work.

use super::{as_completed, Client, ClientInner, Error, Future, FutureStatus};
use crate::comm::protocol::{Reply, Request};
use crate::scheduler::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

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
    /// Bars are drawn when set on, or, unset, when `RASK_PROGRESS` is not `0`
    /// and stderr is a terminal or this is a notebook's cells' process.
    pub(crate) fn shown(&self) -> bool {
        match self.0.load(Ordering::Relaxed) {
            ON => true,
            OFF => false,
            _ => {
                std::env::var("RASK_PROGRESS").map_or(true, |v| v.trim() != "0")
                    && (std::io::stderr().is_terminal() || crate::notebook::in_kernel())
            }
        }
    }

    fn set(&self, shown: bool) {
        self.0
            .store(if shown { ON } else { OFF }, Ordering::Relaxed);
    }
}

/// The bar of one long wait: the client's tasks done of its tasks in flight,
/// on the terminal, or in a notebook as a display updated in place.
pub(crate) enum WorkBar {
    Terminal(ProgressBar),
    Notebook(NotebookBar),
}

impl WorkBar {
    /// A bar for a wait that began `waited` ago.
    pub(crate) fn new(waited: Duration) -> Self {
        if crate::notebook::in_kernel() {
            return WorkBar::Notebook(NotebookBar::new(waited));
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
            .with_elapsed(waited);
        bar.set_style(style(
            "[{bar:40}] {pos}/{len} tasks {percent:>3}% {elapsed_precise} {msg}",
        ));
        WorkBar::Terminal(bar)
    }

    pub(crate) fn update(&mut self, progress: Progress) {
        match self {
            WorkBar::Terminal(bar) => {
                bar.set_length(progress.total());
                bar.set_position(progress.done + progress.erred);
                if progress.erred > 0 {
                    bar.set_message(format!("{} failed", progress.erred));
                }
            }
            WorkBar::Notebook(bar) => bar.update(progress, false),
        }
    }

    pub(crate) fn finish(self) {
        match self {
            WorkBar::Terminal(bar) => bar.finish(),
            WorkBar::Notebook(mut bar) => bar.finish(),
        }
    }
}

/// A progress display in a notebook cell: an HTML `<progress>` and counts,
/// replaced in place (at most every [`NOTEBOOK_REDRAW`], and at the end).
pub(crate) struct NotebookBar {
    display: Option<crate::notebook::DisplayHandle>,
    began: Instant,
    drawn: Option<Instant>,
    last: Option<Progress>,
}

/// How often a notebook's progress display is replaced.
const NOTEBOOK_REDRAW: Duration = Duration::from_millis(250);

impl NotebookBar {
    fn new(waited: Duration) -> Self {
        NotebookBar {
            display: None,
            began: Instant::now()
                .checked_sub(waited)
                .unwrap_or_else(Instant::now),
            drawn: None,
            last: None,
        }
    }

    fn update(&mut self, progress: Progress, last: bool) {
        let due = self.drawn.is_none_or(|at| at.elapsed() >= NOTEBOOK_REDRAW);
        self.last = Some(progress);
        if !(due || last) {
            return;
        }
        self.drawn = Some(Instant::now());
        let (html, text) = render(progress, self.began.elapsed());
        let data = [("text/html", html.as_str()), ("text/plain", text.as_str())];
        match &self.display {
            Some(display) => display.update(&data),
            None => self.display = Some(crate::notebook::DisplayHandle::show(&data)),
        }
    }

    fn finish(&mut self) {
        if let Some(progress) = self.last {
            self.update(progress, true);
        }
    }
}

/// A notebook progress display's HTML and text.
fn render(progress: Progress, elapsed: Duration) -> (String, String) {
    let (done, total) = (progress.done + progress.erred, progress.total());
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let failed = if progress.erred > 0 {
        format!(", {} failed", progress.erred)
    } else {
        String::new()
    };
    let counts = format!(
        "{done}/{total} tasks ({percent}%) in {:.1} s{failed}",
        elapsed.as_secs_f64()
    );
    let html = format!(
        "<div><progress value=\"{done}\" max=\"{}\" style=\"width:30em\"></progress> {counts}</div>",
        total.max(1)
    );
    (html, counts)
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

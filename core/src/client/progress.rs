//! A progress bar over futures (Dask's `progress`).

use super::{as_completed, Future, FutureStatus};
use indicatif::{ProgressBar, ProgressStyle};

/// Shows a progress bar on stderr until every future is done; returns how many failed.
pub fn progress<T>(futures: &[Future<T>], label: &str) -> usize {
    let bar = ProgressBar::new(futures.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>12} [{bar:40}] {pos}/{len} tasks {per_sec} {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
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

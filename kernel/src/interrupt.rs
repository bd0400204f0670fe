//! Interrupting a running cell. The cell's futures on the cluster are
//! cancelled first, so the cell's waits end (with `Error::Cancelled`), the
//! cluster stops its work, and the session keeps its variables. A cell still
//! running after [`GRACE`] (a loop that waits on no future) has its process
//! stopped, as evcxr does: the session's variables are lost then.

use crate::cluster::CellsLink;
use crate::evaluator::{CellError, Evaluator};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an interrupted cell may take to end before its process is stopped.
pub const GRACE: Duration = Duration::from_secs(3);

/// What an interrupt did to one cell.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Interruption {
    /// The execute request's message id.
    cell: String,
    /// Futures cancelled on the cluster (`None`: no cluster answered).
    cancelled: Option<u64>,
    /// Whether the cell's process was stopped.
    stopped: bool,
}

/// The kernel's interrupts of its running cell.
#[derive(Default)]
pub struct Interrupts {
    last: Mutex<Option<Interruption>>,
}

impl Interrupts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Interruption>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Interrupts cell `cell`: cancels its futures, then waits up to [`GRACE`]
    /// for `still_running(cell)` to turn false before stopping the cells'
    /// process. Blocks for as long; call it off the control socket's task.
    pub fn interrupt(
        &self,
        cell: &str,
        cells: &CellsLink,
        evaluator: Option<&Evaluator>,
        still_running: impl Fn() -> bool,
    ) {
        *self.lock() = Some(Interruption {
            cell: cell.to_owned(),
            cancelled: None,
            stopped: false,
        });
        let cancelled = cells.cancel_cell_futures();
        if let Err(e) = &cancelled {
            tracing::debug!("no futures cancelled for the interrupted cell: {e}");
        }
        self.update(cell, |i| i.cancelled = cancelled.ok());
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if !still_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(evaluator) = evaluator {
            self.update(cell, |i| i.stopped = true);
            evaluator.interrupt();
        }
    }

    fn update(&self, cell: &str, change: impl FnOnce(&mut Interruption)) {
        if let Some(interruption) = self.lock().as_mut().filter(|i| i.cell == cell) {
            change(interruption);
        }
    }

    /// Forgets an interrupt that came for an earlier cell.
    pub fn cell_begins(&self) {
        *self.lock() = None;
    }

    /// The outcome of cell `cell`, told as an interrupted cell's when it was
    /// interrupted and failed.
    pub fn outcome<T>(&self, cell: &str, outcome: Result<T, CellError>) -> Result<T, CellError> {
        let interruption = self.lock().take().filter(|i| i.cell == cell);
        match (interruption, outcome) {
            (Some(interruption), Err(error)) => Err(interrupted(&interruption, error)),
            (_, outcome) => outcome,
        }
    }
}

/// The error an interrupted cell shows: what the interrupt did, then the
/// cell's own error.
fn interrupted(interruption: &Interruption, error: CellError) -> CellError {
    let value = if interruption.stopped {
        format!(
            "the cell did not stop within {} s of the interrupt, so its process was stopped: \
             the session's variables are lost (`client` reattaches to the cluster in the next cell)",
            GRACE.as_secs()
        )
    } else {
        match interruption.cancelled {
            Some(0) | None => "the cell was interrupted".to_owned(),
            Some(1) => {
                "the cell was interrupted: 1 of its futures was cancelled on the cluster".to_owned()
            }
            Some(n) => {
                format!(
                    "the cell was interrupted: {n} of its futures were cancelled on the cluster"
                )
            }
        }
    };
    let mut traceback = vec![value.clone()];
    traceback.extend(error.traceback);
    CellError {
        name: "Interrupted".into(),
        value,
        traceback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Result<(), CellError> {
        Err(CellError {
            name: "Panic".into(),
            value: "task x was cancelled".into(),
            traceback: vec!["the cell panicked: task x was cancelled".into()],
        })
    }

    fn record(interrupts: &Interrupts, cell: &str, cancelled: Option<u64>, stopped: bool) {
        *interrupts.lock() = Some(Interruption {
            cell: cell.into(),
            cancelled,
            stopped,
        });
    }

    #[test]
    fn an_interrupted_cell_that_failed_says_what_was_cancelled() {
        let interrupts = Interrupts::default();
        record(&interrupts, "a", Some(7), false);
        let error = interrupts.outcome("a", failed()).unwrap_err();
        assert_eq!(error.name, "Interrupted");
        assert!(
            error.value.contains("7 of its futures were cancelled"),
            "{}",
            error.value
        );
        assert_eq!(
            error.traceback[1],
            "the cell panicked: task x was cancelled"
        );
    }

    #[test]
    fn a_stopped_process_says_the_variables_are_lost() {
        let interrupts = Interrupts::default();
        record(&interrupts, "a", Some(0), true);
        let error = interrupts.outcome("a", failed()).unwrap_err();
        assert!(
            error.value.contains("variables are lost"),
            "{}",
            error.value
        );
    }

    #[test]
    fn an_interrupt_of_an_earlier_cell_does_not_touch_this_one() {
        let interrupts = Interrupts::default();
        record(&interrupts, "earlier", Some(3), false);
        let error = interrupts.outcome("now", failed()).unwrap_err();
        assert_eq!(error.name, "Panic");
        // A cell that ended well after its interrupt stays a success.
        record(&interrupts, "b", Some(3), false);
        assert!(interrupts.outcome("b", Ok::<_, CellError>(())).is_ok());
    }
}

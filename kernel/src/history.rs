//! The cells a session ran, for `history_request` (IPython's history: by
//! tail, by range of execution counts, and by glob pattern).

use jupyter_protocol::{HistoryEntry, HistoryRequest};

/// One session's cells, in the order they ran.
#[derive(Debug, Default)]
pub struct History {
    /// `(execution count, input, text output)`.
    cells: Vec<(usize, String, String)>,
}

/// The session number the kernel reports (one per kernel process).
const SESSION: usize = 1;

impl History {
    /// Records a cell and its plain-text result (empty when it had none).
    pub fn record(&mut self, count: usize, input: &str, output: &str) {
        self.cells
            .push((count, input.to_owned(), output.to_owned()));
    }

    /// The entries a request asks for.
    pub fn answer(&self, request: &HistoryRequest) -> Vec<HistoryEntry> {
        let (picked, output): (Vec<&(usize, String, String)>, bool) = match request {
            HistoryRequest::Tail { n, output, .. } => {
                let n = (*n).max(0) as usize;
                let skip = self.cells.len().saturating_sub(n);
                (self.cells.iter().skip(skip).collect(), *output)
            }
            HistoryRequest::Range {
                start,
                stop,
                output,
                ..
            } => {
                // IPython's convention: a stop of 0 (or less) means "to the end".
                let start = (*start).max(0) as usize;
                let stop = if *stop <= 0 {
                    usize::MAX
                } else {
                    *stop as usize
                };
                let cells = self
                    .cells
                    .iter()
                    .filter(|(count, ..)| *count >= start && *count < stop)
                    .collect();
                (cells, *output)
            }
            HistoryRequest::Search {
                pattern,
                unique,
                output,
                n,
                ..
            } => {
                let pattern = glob::Pattern::new(pattern).ok();
                let mut seen = std::collections::HashSet::new();
                let mut cells: Vec<_> = self
                    .cells
                    .iter()
                    .rev()
                    .filter(|(_, input, _)| pattern.as_ref().is_some_and(|p| p.matches(input)))
                    .filter(|(_, input, _)| !*unique || seen.insert(input.as_str()))
                    .collect();
                if *n > 0 {
                    cells.truncate(*n as usize);
                }
                cells.reverse();
                (cells, *output)
            }
        };
        picked
            .into_iter()
            .map(|(count, input, text)| {
                if output {
                    HistoryEntry::InputOutput(SESSION, *count, (input.clone(), text.clone()))
                } else {
                    HistoryEntry::Input(SESSION, *count, input.clone())
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(entries: Vec<HistoryEntry>) -> Vec<usize> {
        entries
            .into_iter()
            .map(|e| match e {
                HistoryEntry::Input(_, n, _) | HistoryEntry::InputOutput(_, n, _) => n,
            })
            .collect()
    }

    #[test]
    fn tail_range_and_search() {
        let mut h = History::default();
        for (n, code) in ["let a = 1;", "a + 1", "let b = 2;", "a + 1"]
            .iter()
            .enumerate()
        {
            h.record(n + 1, code, "");
        }
        let tail = HistoryRequest::Tail {
            n: 2,
            output: false,
            raw: true,
        };
        assert_eq!(counts(h.answer(&tail)), [3, 4]);
        let range = HistoryRequest::Range {
            session: None,
            start: 2,
            stop: 4,
            output: true,
            raw: true,
        };
        assert_eq!(counts(h.answer(&range)), [2, 3]);
        let search = |unique| HistoryRequest::Search {
            pattern: "a*".into(),
            unique,
            output: false,
            raw: true,
            n: 0,
        };
        assert_eq!(counts(h.answer(&search(false))), [2, 4]);
        assert_eq!(counts(h.answer(&search(true))), [4]);
    }
}

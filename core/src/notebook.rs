//! Rich output from notebook cells (the rask Jupyter kernel): `display` a
//! value as HTML, SVG or any MIME type, update a display in place, clear a
//! cell's output. Cells run in a child process whose standard output the
//! kernel reads; each call here writes one marked line the kernel turns into
//! a `display_data`, `update_display_data` or `clear_output` message. Outside
//! the kernel the lines are printed as they are.
//!
//! [`attach`] gives cells their `client` ([`SessionClient`]), which follows
//! the cluster the kernel's `%cluster` magics start or join.

use serde_json::{json, Map, Value};
use std::io::Write;

mod session;
pub mod show;
pub use session::{attach, SessionClient, CONTROL_ENV};

/// The prefix of a line the kernel takes as a display message.
pub const DISPLAY_MARKER: &str = "RASK_KERNEL_DISPLAY ";

/// Shows `content` of MIME type `mime` (e.g. `text/html`) below the cell.
pub fn display(mime: &str, content: &str) {
    emit(json!({ "data": { mime: content } }));
}

/// Shows HTML below the cell.
pub fn display_html(html: &str) {
    display("text/html", html);
}

/// Clears the cell's output; with `wait`, only when new output arrives (no flicker).
pub fn clear_output(wait: bool) {
    emit(json!({ "clear": true, "wait": wait }));
}

/// Writes a cell's result as evcxr reads it: evcxr calls a result's
/// `evcxr_display` method when it has one (rask's arrays and dataframes do),
/// which prints each MIME type's content between markers.
pub fn show_result(data: &[(&str, &str)]) {
    #[cfg(test)]
    tests::record_shown(data);
    let mut out = std::io::stdout().lock();
    for (mime, content) in data {
        let _ = writeln!(
            out,
            "EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT"
        );
    }
    let _ = out.flush();
}

/// Whether this process runs a notebook's cells (the kernel started it, with
/// its control socket in [`CONTROL_ENV`]): long waits then show a progress
/// display in the cell rather than a terminal bar.
pub fn in_kernel() -> bool {
    static IN_KERNEL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN_KERNEL.get_or_init(|| std::env::var_os(CONTROL_ENV).is_some())
}

/// A cell's rich result for a type rask does not own: the kernel's prelude
/// brings this trait into scope, so a computed Polars frame as a cell's last
/// expression shows as an HTML table of its first rows and its shape.
pub trait RichResult {
    /// Shows the value as the cell's result (the kernel's evcxr calls this).
    fn evcxr_display(&self);
}

#[cfg(feature = "dataframe")]
impl RichResult for polars::prelude::DataFrame {
    fn evcxr_display(&self) {
        show_result(&[
            ("text/plain", &self.to_string()),
            ("text/html", &crate::dataframe::to_html(self, 10)),
        ]);
    }
}

/// A display that later calls can replace in place (a progress table, a status).
#[derive(Debug, Clone)]
pub struct DisplayHandle {
    id: String,
}

impl DisplayHandle {
    /// Shows `data` (MIME type → content) and returns a handle to update it.
    pub fn show(data: &[(&str, &str)]) -> DisplayHandle {
        let id = format!("rask-{}", crate::graph::fresh_token());
        emit(json!({ "data": media(data), "display_id": id }));
        DisplayHandle { id }
    }

    /// Replaces what the display shows.
    pub fn update(&self, data: &[(&str, &str)]) {
        emit(json!({ "data": media(data), "display_id": self.id, "update": true }));
    }

    /// The display's id (Jupyter's `display_id`).
    pub fn id(&self) -> &str {
        &self.id
    }
}

fn media(data: &[(&str, &str)]) -> Value {
    let mut map = Map::new();
    for (mime, content) in data {
        map.insert((*mime).to_owned(), Value::String((*content).to_owned()));
    }
    Value::Object(map)
}

fn emit(message: Value) {
    let mut out = std::io::stdout().lock();
    // One line: serde_json escapes the content's newlines.
    let _ = writeln!(out, "{DISPLAY_MARKER}{message}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    thread_local! {
        static SHOWN: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    /// Notes the text a result showed on this thread.
    pub(super) fn record_shown(data: &[(&str, &str)]) {
        let text = data.iter().find(|(mime, _)| *mime == "text/plain");
        SHOWN.with(|shown| *shown.borrow_mut() = text.map(|(_, t)| (*t).to_owned()));
    }

    /// The text the last result shown on this thread showed (taken).
    pub(super) fn last_shown() -> Option<String> {
        SHOWN.with(|shown| shown.borrow_mut().take())
    }
}

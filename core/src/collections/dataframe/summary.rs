//! What people see of a dataframe: a lazy frame's structure (Dask's repr:
//! columns, dtypes, partitions, tasks) as text and HTML, and a computed
//! frame's first rows as an HTML table.

use super::DataFrame;
use crate::collections::html::escape;
use std::fmt;

impl fmt::Display for DataFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rask.dataframe<{}, npartitions={}, tasks={}>",
            self.name,
            self.npartitions(),
            self.ntasks()
        )?;
        for (name, dtype) in self.schema.iter() {
            writeln!(f, "  {name}: {dtype}")?;
        }
        Ok(())
    }
}

impl DataFrame {
    /// A notebook cell's result (the rask kernel's evcxr calls this): the
    /// summary as text and as HTML.
    pub fn evcxr_display(&self) {
        crate::notebook::show_result(&[
            ("text/plain", &self.to_string()),
            ("text/html", &self.to_html()),
        ]);
    }

    /// The frame's structure as an HTML table, as Dask shows a lazy frame in
    /// a notebook: a column per column with its dtype, a row of `...` for the
    /// partitions, and the name, partition and task counts under it.
    pub fn to_html(&self) -> String {
        let mut html = String::from(
            "<div><strong>rask DataFrame structure:</strong><table><thead><tr><th></th>",
        );
        for name in self.schema.iter_names() {
            html.push_str(&format!("<th>{}</th>", escape(name)));
        }
        html.push_str("</tr></thead><tbody><tr><th>dtype</th>");
        for dtype in self.schema.iter_values() {
            html.push_str(&format!("<td>{}</td>", escape(&dtype.to_string())));
        }
        html.push_str(&format!(
            "</tr><tr><th>npartitions={}</th>",
            self.npartitions()
        ));
        for _ in 0..self.schema.len() {
            html.push_str("<td>...</td>");
        }
        html.push_str(&format!(
            "</tr></tbody></table><div>rask name: {}, {} partitions, {} tasks</div></div>",
            escape(&self.name),
            self.npartitions(),
            self.ntasks()
        ));
        html
    }
}

/// A computed frame's first `max_rows` rows as an HTML table, with its
/// shape under it (what a notebook shows for `compute`'s result).
pub fn to_html(frame: &polars::prelude::DataFrame, max_rows: usize) -> String {
    let mut html = String::from("<div><table><thead><tr>");
    for column in frame.columns() {
        html.push_str(&format!(
            "<th>{}<br><small>{}</small></th>",
            escape(column.name()),
            escape(&column.dtype().to_string())
        ));
    }
    html.push_str("</tr></thead><tbody>");
    let shown = frame.height().min(max_rows);
    for row in 0..shown {
        html.push_str("<tr>");
        for column in frame.columns() {
            let cell = match column.get(row) {
                Ok(value) if value.is_null() => "null".to_string(),
                Ok(value) => value.str_value().to_string(),
                Err(_) => String::new(),
            };
            html.push_str(&format!("<td>{}</td>", escape(&cell)));
        }
        html.push_str("</tr>");
    }
    if shown < frame.height() {
        html.push_str(&format!(
            "<tr><td colspan=\"{}\">…</td></tr>",
            frame.width().max(1)
        ));
    }
    html.push_str(&format!(
        "</tbody></table><div>{} rows × {} columns</div></div>",
        frame.height(),
        frame.width()
    ));
    html
}

//! What people see of an array: a one-line `Display`, a table of its shape,
//! type, chunks, tasks and bytes, and `to_html()` with a picture of the chunk
//! grid (the Jupyter kernel shows it).

use super::Array;
use crate::collections::html::escape;
use std::fmt;

/// `1.5 GiB`, `8.0 MiB`, `512 B`.
pub fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn tuple(values: &[usize]) -> String {
    match values {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl Array {
    /// Number of tasks in the graph that computes this array.
    pub fn ntasks(&self) -> usize {
        let mut builder = crate::client::GraphBuilderAccess::default();
        for block in self.blocks.iter() {
            builder.add_node(block);
        }
        builder.graph().len()
    }

    /// A table for people: shape, dtype, chunk shape, chunks, tasks and bytes.
    pub fn summary(&self) -> String {
        let chunk_bytes: usize = self.chunksize().iter().product::<usize>() * self.dtype.itemsize();
        format!(
            "{:<10}{:>20}{:>20}\n{:<10}{:>20}{:>20}\n{:<10}{:>20}{:>20}\n{:<10}{:>40}\n{:<10}{:>40}\n",
            "",
            "Array",
            "Chunk",
            "Bytes",
            human_bytes(self.nbytes()),
            human_bytes(chunk_bytes),
            "Shape",
            tuple(&self.shape),
            tuple(&self.chunksize()),
            "Count",
            format!("{} chunks, {} tasks", self.npartitions(), self.ntasks()),
            "Type",
            format!("{} ndarray::ArrayD", self.dtype),
        )
    }

    /// A notebook cell's result (the rask kernel's evcxr calls this): the
    /// summary as text and as HTML.
    pub fn evcxr_display(&self) {
        crate::notebook::show_result(&[
            ("text/plain", &self.to_string()),
            ("text/html", &self.to_html()),
        ]);
    }

    /// An HTML table and an SVG picture of the chunk grid (the last two axes),
    /// for notebooks.
    pub fn to_html(&self) -> String {
        let chunk_bytes: usize = self.chunksize().iter().product::<usize>() * self.dtype.itemsize();
        let rows = [
            (
                "Bytes",
                human_bytes(self.nbytes()),
                human_bytes(chunk_bytes),
            ),
            ("Shape", tuple(&self.shape), tuple(&self.chunksize())),
            (
                "Count",
                format!("{} tasks", self.ntasks()),
                format!("{} chunks", self.npartitions()),
            ),
            (
                "Type",
                self.dtype.to_string(),
                "ndarray::ArrayD".to_string(),
            ),
        ];
        let mut table = String::from(
            "<table><thead><tr><td></td><th>Array</th><th>Chunk</th></tr></thead><tbody>",
        );
        for (label, array, chunk) in rows {
            table.push_str(&format!(
                "<tr><th>{label}</th><td>{}</td><td>{}</td></tr>",
                escape(&array),
                escape(&chunk)
            ));
        }
        table.push_str("</tbody></table>");
        format!(
            "<table><tr><td>{table}</td><td>{}</td></tr></table>",
            self.grid_svg()
        )
    }

    /// The chunk grid of the last two axes as SVG lines (at most 100 per axis).
    fn grid_svg(&self) -> String {
        const SIZE: f64 = 120.0;
        let (rows, cols): (&[usize], &[usize]) = match self.chunks.len() {
            0 => (&[1], &[1]),
            1 => (&[1], &self.chunks[0]),
            n => (&self.chunks[n - 2], &self.chunks[n - 1]),
        };
        let (height, width) = (
            rows.iter().sum::<usize>().max(1) as f64,
            cols.iter().sum::<usize>().max(1) as f64,
        );
        let scale = SIZE / height.max(width);
        let (h, w) = ((height * scale).max(10.0), (width * scale).max(10.0));
        let mut svg = format!(
            "<svg width=\"{:.0}\" height=\"{:.0}\" style=\"stroke:rgb(0,0,0);stroke-width:1\">",
            w + 20.0,
            h + 20.0
        );
        let lines = |sizes: &[usize], horizontal: bool| {
            let step = sizes.len().div_ceil(100).max(1);
            let mut at = 0usize;
            let mut out = String::new();
            for (i, &s) in sizes.iter().enumerate() {
                if i % step == 0 {
                    let p = at as f64 * scale + 10.0;
                    out.push_str(&if horizontal {
                        format!(
                            "<line x1=\"10\" y1=\"{p:.1}\" x2=\"{:.1}\" y2=\"{p:.1}\" />",
                            w + 10.0
                        )
                    } else {
                        format!(
                            "<line x1=\"{p:.1}\" y1=\"10\" x2=\"{p:.1}\" y2=\"{:.1}\" />",
                            h + 10.0
                        )
                    });
                }
                at += s;
            }
            out
        };
        svg.push_str(&lines(rows, true));
        svg.push_str(&lines(cols, false));
        svg.push_str(&format!(
            "<rect x=\"10\" y=\"10\" width=\"{w:.1}\" height=\"{h:.1}\" style=\"fill:#8B4903A0;stroke-width:2\" /></svg>"
        ));
        svg
    }
}

impl fmt::Display for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rask.array<{}, shape={}, dtype={}, chunksize={}, chunktype=ndarray>",
            self.name,
            tuple(&self.shape),
            self.dtype,
            tuple(&self.chunksize())
        )
    }
}

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

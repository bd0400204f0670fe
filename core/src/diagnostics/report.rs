//! Performance reports (Dask's `performance_report`): one standalone HTML
//! file with a computation's task stream, its tasks by op, the transfers and
//! spills, and the cluster's memory over time. It opens in any browser with
//! no network and no scheduler.

use super::assets::{self, escape};
use super::recorder::{SPILL, TRANSFER};
use super::views::StatusView;
use std::collections::BTreeMap;

/// What a report holds: the scheduler's status answers covering the run.
#[derive(Clone, Debug, Default)]
pub struct ReportData {
    /// Shown as the page's title.
    pub title: String,
    /// When recording started, seconds on the scheduler's clock.
    pub started: f64,
    /// When it stopped.
    pub finished: f64,
    /// The answers, oldest first; their bars and samples together cover the run.
    pub views: Vec<StatusView>,
    /// Bars of the run the scheduler no longer kept when the report was saved.
    pub lost_bars: u64,
}

/// Per op: tasks run and their total time.
fn ops_summary(data: &ReportData) -> BTreeMap<String, (u64, f64)> {
    let mut by_op: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for view in &data.views {
        for bar in view
            .bars
            .iter()
            .filter(|b| b.op != TRANSFER && b.op != SPILL)
        {
            let name = view.ops.get(bar.op as usize).cloned().unwrap_or_default();
            let entry = by_op.entry(name).or_default();
            entry.0 += 1;
            entry.1 += bar.end - bar.start;
        }
    }
    by_op
}

fn bytes(n: u64) -> String {
    let mut value = n as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if value < 1024.0 {
            return format!("{value:.1} {unit}");
        }
        value /= 1024.0;
    }
    format!("{value:.1} TiB")
}

/// The report's HTML.
pub fn render(data: &ReportData) -> String {
    let ops = ops_summary(data);
    let tasks: u64 = ops.values().map(|(n, _)| n).sum();
    let moved = |op: u32| -> u64 {
        data.views
            .iter()
            .flat_map(|v| v.bars.iter())
            .filter(|b| b.op == op)
            .map(|b| b.bytes)
            .sum()
    };
    let workers = data.views.last().map_or(0, |v| v.workers.len());
    let mut summary = String::from("<section id=\"summary\"><h2>Summary</h2><dl class=\"facts\">");
    for (label, value) in [
        ("duration", format!("{:.3} s", data.finished - data.started)),
        ("tasks", tasks.to_string()),
        ("workers at the end", workers.to_string()),
        ("bytes fetched between workers", bytes(moved(TRANSFER))),
        ("bytes spilled", bytes(moved(SPILL))),
    ] {
        summary.push_str(&format!("<dt>{label}</dt><dd>{}</dd>", escape(&value)));
    }
    if data.lost_bars > 0 {
        summary.push_str(&format!(
            "<dt>not recorded</dt><dd>{} tasks (the scheduler keeps the newest {})</dd>",
            data.lost_bars,
            super::recorder::BAR_CAPACITY
        ));
    }
    summary.push_str("</dl><table id=\"ops-table\"><thead><tr><th>op</th><th class=\"num\">tasks</th><th class=\"num\">total time</th><th class=\"num\">mean</th></tr></thead><tbody>");
    for (op, (n, seconds)) in &ops {
        summary.push_str(&format!(
            "<tr data-op=\"{0}\"><td>{0}</td><td class=\"num\">{n}</td><td class=\"num\">{seconds:.3} s</td><td class=\"num\">{mean:.2} ms</td></tr>",
            escape(op),
            mean = 1e3 * seconds / *n as f64
        ));
    }
    summary.push_str("</tbody></table></section>");
    let json = serde_json::json!({
        "title": data.title,
        "started": data.started,
        "finished": data.finished,
        "views": data.views,
    });
    assets::report(&data.title, &summary, &json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Bar;

    #[test]
    fn the_summary_counts_tasks_by_op_and_bytes_moved() {
        let bar = |op, start, end, bytes| Bar {
            worker: 0,
            thread: 0,
            op,
            start,
            end,
            bytes,
        };
        let view = StatusView {
            ops: vec!["transfer".into(), "spill".into(), "inc".into()],
            bars: vec![
                bar(2, 0.0, 0.5, 8),
                bar(2, 0.5, 1.0, 8),
                bar(TRANSFER, 0.0, 1.0, 2048),
            ],
            ..Default::default()
        };
        let html = render(&ReportData {
            title: "run".into(),
            started: 0.0,
            finished: 1.0,
            views: vec![view],
            lost_bars: 0,
        });
        assert!(html.contains("<tr data-op=\"inc\"><td>inc</td><td class=\"num\">2</td>"));
        assert!(html.contains("2.0 KiB"));
        assert!(html.contains("window.RASK_REPORT"));
    }
}

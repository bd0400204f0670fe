//! The dashboard's pages, built into the binary: one HTML shell, one
//! stylesheet and one script (plain DOM and canvas, no library, nothing
//! fetched from elsewhere), and the standalone performance report that
//! inlines all three with its data.

/// The stylesheet, served at `/static/dashboard.css`.
pub const CSS: &str = include_str!("assets/dashboard.css");
/// The script, served at `/static/dashboard.js`.
pub const JS: &str = include_str!("assets/dashboard.js");
const SHELL: &str = include_str!("assets/page.html");

/// A page of the dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// `/status`: task stream, progress, memory.
    Status,
    /// `/workers`: the workers table.
    Workers,
    /// `/workers/{id}`: one worker.
    Worker(u32),
    /// `/graph`: the task graph by group.
    Graph,
    /// `/system`: the scheduler process.
    System,
    /// `/jobs`: the launcher's jobs or pods.
    Jobs,
}

impl Page {
    fn name(self) -> &'static str {
        match self {
            Page::Status => "status",
            Page::Workers => "workers",
            Page::Worker(_) => "worker",
            Page::Graph => "graph",
            Page::System => "system",
            Page::Jobs => "jobs",
        }
    }
}

const NAV: [(&str, &str); 5] = [
    ("status", "Status"),
    ("workers", "Workers"),
    ("graph", "Graph"),
    ("system", "System"),
    ("jobs", "Jobs"),
];

fn nav(here: &str) -> String {
    NAV.iter()
        .map(|(path, label)| {
            let class = if *path == here || (here == "worker" && *path == "workers") {
                " class=\"here\""
            } else {
                ""
            };
            format!("<a href=\"/{path}\"{class}>{label}</a>")
        })
        .collect()
}

/// The HTML of a dashboard page (its data comes from the API, live).
pub fn page(page: Page) -> String {
    let worker = match page {
        Page::Worker(id) => id.to_string(),
        _ => String::new(),
    };
    SHELL
        .replace("{{title}}", &format!("rask · {}", page.name()))
        .replace(
            "{{head}}",
            "<link rel=\"stylesheet\" href=\"/static/dashboard.css\">\n<script src=\"/static/dashboard.js\"></script>",
        )
        .replace("{{page}}", page.name())
        .replace("{{worker}}", &worker)
        .replace("{{nav}}", &nav(page.name()))
        .replace("{{live}}", "connecting…")
        .replace("{{intro}}", "")
}

/// A standalone performance report: the page, its style and script, and
/// `data` (JSON for the script's `window.RASK_REPORT`) in one file.
pub fn report(title: &str, summary_html: &str, data: &serde_json::Value) -> String {
    // Inside <script>, "</" could end the element early; "<\/" is the same string to JS.
    let data = data.to_string().replace("</", "<\\/");
    let head = format!(
        "<style>\n{CSS}</style>\n<script>window.RASK_REPORT = {data};</script>\n<script>\n{}</script>",
        JS.replace("</", "<\\/")
    );
    SHELL
        .replace("{{title}}", &escape(title))
        .replace("{{head}}", &head)
        .replace("{{page}}", "report")
        .replace("{{worker}}", "")
        .replace("{{nav}}", "<a class=\"here\">Performance report</a>")
        .replace("{{live}}", &escape(title))
        .replace("{{intro}}", summary_html)
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_load_their_script_and_mark_the_current_tab() {
        let html = page(Page::Worker(3));
        assert!(html.contains("data-page=\"worker\" data-worker=\"3\""));
        assert!(html.contains("<a href=\"/workers\" class=\"here\">"));
        assert!(html.contains("/static/dashboard.js"));
    }

    #[test]
    fn report_data_cannot_end_its_script_element() {
        let data = serde_json::json!({ "key": "</script><script>alert(1)</script>" });
        let html = report("a <title>", "", &data);
        assert!(!html.contains("</script><script>alert"));
        assert!(html.contains("a &lt;title&gt;"));
        assert_eq!(html.matches("</script>").count(), 2);
    }
}

//! What the cluster shows of itself: the scheduler's [`recorder`] (the task
//! stream and a memory timeline), the dashboard's data ([`views`]) and pages
//! (`/status`, `/workers`, `/graph`, `/system`, `/jobs`, with live updates
//! over server-sent events), standalone performance reports, and pictures of
//! task graphs ([`visualize`]).

pub mod assets;
pub mod recorder;
pub mod report;
pub mod views;
pub mod visualize;

pub use recorder::{Bar, Recorder, Sample};
pub use views::{DashboardQuery, DashboardView, GraphView, StatusView, SystemView, WorkerRow};
pub use visualize::{Visualization, VisualizeError};

/// The status page under `base` (`http://host:port`), with `?token=` when
/// the cluster has a token.
pub fn dashboard_link(base: &str, token: Option<&str>) -> String {
    match token {
        Some(token) => format!("{base}/status?token={}", percent_encode(token)),
        None => format!("{base}/status"),
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn links_carry_the_token_escaped() {
        assert_eq!(
            super::dashboard_link("http://h:1", Some("a b/+")),
            "http://h:1/status?token=a%20b%2F%2B"
        );
        assert_eq!(
            super::dashboard_link("http://h:1", None),
            "http://h:1/status"
        );
    }
}

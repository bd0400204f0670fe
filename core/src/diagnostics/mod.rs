//! Diagnostics for people and machines: progress bars, Prometheus metrics, and
//! the scheduler's HTTP endpoints (metrics and the adaptive-scaling API).

pub mod http;
pub mod metrics;
mod progress;

pub use progress::progress;

//! Diagnostics for people: progress bars now; the event stream, Prometheus metrics
//! and the dashboard arrive with the distributed runtime.

mod progress;

pub use progress::progress;

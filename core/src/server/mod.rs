//! The scheduler's runtime: everything around the pure state machine in
//! [`crate::scheduler`] that needs threads, clocks and sockets.
//!
//! - [`event_loop`]: one thread owns [`crate::scheduler::State`], folds incoming
//!   messages into batches of events, stamps them with the time, and routes the
//!   resulting commands to workers and clients (channels or TCP outboxes). Beside
//!   the state machine it keeps datasets, coordination primitives, worker
//!   addresses and metrics.
//! - [`tcp`]: the scheduler as a TCP server ([`SchedulerServer`]): accepts
//!   workers and clients, checks credentials, feeds their messages to the loop,
//!   and serves the HTTP endpoints.
//! - [`channels`]: the messages between the loop, in-process workers and
//!   clients, and the connection tasks.
//! - [`http`]: the HTTP endpoints beside the TCP port (Prometheus metrics from
//!   [`metrics`], the cluster API: adaptive target, retiring workers), behind
//!   the cluster's token and TLS.
//! - `plugins`: the plugin libraries clients uploaded, sent to every worker.
//! - [`backpressure`]: how much connections may queue for the loop;
//!   [`liveness`]: whether a worker's connection hears from it.
//!
//! The bytes themselves (framing, TLS, handshakes) are [`crate::comm`]'s.

mod acceptor;
pub mod backpressure;
pub mod channels;
mod dashboard_data;
pub mod event_loop;
pub mod http;
pub mod liveness;
pub mod metrics;
mod plugins;
mod requests;
mod routing;
pub mod tcp;

pub use channels::{LauncherCall, Order, ToClient, ToScheduler, ToWorker};
pub use event_loop::run_scheduler;
pub use tcp::{SchedulerOptions, SchedulerServer};

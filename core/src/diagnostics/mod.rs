//! What the cluster shows of itself: the scheduler's [`recorder`] (the task
//! stream and a memory timeline), the dashboard's data ([`views`]) and pages
//! (`/status`, `/workers`, `/graph`, `/system`, `/jobs`, with live updates
//! over server-sent events), standalone performance reports, and pictures of
//! task graphs ([`visualize`]).

pub mod assets;
pub mod recorder;
pub mod report;
pub mod views;

pub use recorder::{Bar, Recorder, Sample};
pub use views::{DashboardQuery, DashboardView, GraphView, StatusView, SystemView, WorkerRow};

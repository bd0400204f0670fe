//! Transports between scheduler, workers and clients.
//!
//! [`local`] connects them with in-process channels: the embedded local cluster.
//! Over TCP (optionally TLS): [`frame`] (preamble, length-prefixed frames, blobs),
//! [`protocol`] (the messages), [`connection`] (reading, batched writing),
//! [`security`] (mutual TLS, tokens), [`peers`] (data peer to peer), and the
//! scheduler's [`scheduler_server`]. [`scheduler_loop`] drives the state machine
//! for both. [`launcher`] carries cluster requests to `rask cluster up`.

pub mod address;
pub mod connection;
pub mod frame;
pub mod launcher;
pub mod local;
pub mod peers;
pub mod protocol;
pub mod scheduler_loop;
pub mod scheduler_server;
pub mod security;

pub use address::Address;
pub use connection::CommError;
pub use scheduler_server::{SchedulerOptions, SchedulerServer};
pub use security::{Security, TlsFiles};

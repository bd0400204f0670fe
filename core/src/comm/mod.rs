//! Transports between scheduler, workers and clients.
//!
//! [`local`] connects them with in-process channels: the embedded local cluster.
//! The TCP transport (framing, handshake, TLS) drives the same state machines.

pub mod local;

//! Transports between scheduler, workers and clients: bytes, frames and the
//! messages they carry; no scheduling and no data storage.
//!
//! In process, the runtimes talk over channels ([`crate::server::channels`]) and
//! workers read each other's stores ([`crate::worker::local_peers`]). Over TCP
//! (optionally TLS): [`frame`] (preamble, length-prefixed frames, blobs),
//! [`protocol`] (the messages), [`connection`] (reading, batched writing),
//! [`security`] (mutual TLS, tokens), [`admission`] (a cap on connections
//! still handshaking), [`peers`] (data peer to peer), [`tls_listener`]
//! (TLS for the HTTP port).
//! [`launcher`] has the wire types of cluster requests for `rask cluster up`.
//! The scheduler's runtime that uses them is [`crate::server`].

pub mod address;
pub mod admission;
mod cluster_ca;
pub mod connection;
pub mod frame;
pub mod launcher;
pub mod peers;
pub mod protocol;
pub mod security;
pub mod tls_listener;

pub use address::Address;
pub use connection::CommError;
pub use security::{Security, TlsFiles, TlsOrigin, TlsPem};

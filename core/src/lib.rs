//! # rask — parallel and distributed computing for Rust
//!
//! Lazy task graphs over chunked data, one scheduler that runs them on a laptop or
//! across a cluster. The API follows Dask's names: [`delayed()`], [`Client::submit`],
//! [`Client::map`], [`Client::gather`], [`Client::compute`], [`Client::persist`],
//! [`wait`], [`as_completed`], [`Client::cancel`].
//!
//! ```
//! use rask::prelude::*;
//!
//! rask::op! {
//!     /// Adds two numbers.
//!     pub fn add(a: i64, b: i64) -> i64 { a + b }
//! }
//!
//! let client = Client::local(LocalCluster::new().workers(2).threads_per_worker(1))?;
//! let x = delayed(add, (1, 2));
//! let y = delayed(add, (&x, 10));
//! assert_eq!(y.compute(&client)?, 13);
//!
//! let futures = client.map(add, (0..10).map(|i| (i, i)))?;
//! assert_eq!(client.gather(&futures)?.iter().sum::<i64>(), 90);
//! # Ok::<(), rask::Error>(())
//! ```
//!
//! ## Modules, and who may use whom
//!
//! Each layer uses only the layers below it:
//!
//! 1. [`collections`] — delayed values and chunked arrays: they build graphs of
//!    lazy nodes; none runs anything itself. [`io`] — paths on local disks and
//!    object stores, for the collections' readers and writers.
//! 2. [`client`] — futures, `submit`/`map`/`compute`/`gather`, lazy nodes and
//!    argument sources ([`client::lazy`]), the handles on coordination primitives,
//!    progress bars, and [`LocalCluster`], which starts the runtimes in process.
//! 3. The runtimes, around the state machines: [`server`] (the scheduler's event
//!    loop, TCP server, HTTP API and metrics) and [`worker`] (executor, spilling
//!    store, memory manager, worker processes). A worker speaks to the
//!    scheduler's runtime (its inbox and orders); the server knows no worker code.
//! 4. [`scheduler`] and [`coordination`] — pure state machines (events in,
//!    commands out; no I/O, no clock, no threads) — and [`comm`], the transports
//!    (frames, TLS, handshakes, the wire messages that carry the state machines'
//!    events and commands).
//! 5. [`graph`] — keys, task specs, culling, fusion, ordering.
//! 6. [`ops`] — the op registry, closures, what a task runs ([`ops::RunSpec`]) —
//!    and [`value`], what flows between tasks.

#![warn(missing_docs)]

pub mod client;
pub mod collections;
pub mod comm;
pub mod coordination;
pub mod diagnostics;
pub mod graph;
pub mod io;
pub mod notebook;
pub mod ops;
pub mod plugin;
pub mod scheduler;
pub mod server;
pub mod value;
pub mod worker;

#[doc(hidden)]
pub use inventory;

pub use client::primitives::{Event, Lock, Queue, Semaphore, Variable};
pub use client::{
    as_completed, progress, wait, Client, ConnectOptions, Error, Future, LocalCluster,
};
pub use collections::array;
pub use collections::bag;
#[cfg(feature = "dataframe")]
pub use collections::dataframe;
pub use collections::delayed::{delayed, Delayed};
pub use graph::Key;

/// The names most programs need.
pub mod prelude {
    pub use crate::client::{as_completed, wait, Client, Future, LocalCluster};
    pub use crate::collections::delayed::{delayed, Delayed};
    pub use crate::ops::{closure, Op};
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

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

pub mod client;
pub mod collections;
pub mod comm;
pub mod coordination;
pub mod diagnostics;
pub mod graph;
pub mod io;
pub mod ops;
pub mod scheduler;
pub mod server;
pub mod value;
pub mod worker;

#[doc(hidden)]
pub use inventory;

pub use client::{as_completed, wait, Client, ConnectOptions, Error, Future, LocalCluster};
pub use collections::array;
pub use collections::delayed::{delayed, Delayed};
pub use coordination::handles::{Event, Lock, Queue, Semaphore, Variable};
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

//! Op plugins: ops compiled into a shared library that stock `rask worker`
//! processes load at run time (Dask's `upload_file`, for compiled Rust).
//!
//! A plugin is the user's crate (it depends on `rask` and defines ops with
//! [`op!`](crate::op)) built as a `cdylib` by `rask plugin build`. It links its
//! own copy of rask and of Rust's standard library: nothing of Rust's ABI, no
//! `TypeId`, registry or allocator crosses between it and the worker. The one
//! boundary is a C entry point, [`abi::ENTRY_SYMBOL`], that every library
//! linking rask exports: it describes the plugin (interface and value-encoding
//! versions, rask version, target, compiler) and lists its ops. Arguments and
//! results cross as rask's encoded value bytes; a panic is caught inside the
//! plugin and comes back as the task's failure.
//!
//! The worker side ([`host`]) checks the versions, keeps each library loaded
//! for the life of the process (a redefined op comes in a new library, so
//! memory grows with every upload) and resolves op names the worker's own
//! binary does not register to the newest plugin that defines them.

pub mod abi;
mod guest;
pub mod host;

pub use host::{content_hash, install, op, LoadedPlugin, PluginError};

/// The resource every worker that loads plugins offers, and that the
/// scheduler adds to each task whose op its own binary lacks: such tasks go
/// to no `--no-plugins` worker.
pub const RESOURCE: &str = "rask:plugins";
/// The largest plugin library a client sends and a scheduler keeps. A library
/// travels as one blob, so it may be larger than a message; Polars alone
/// makes a library of about 100 MB.
pub const MAX_LIBRARY_BYTES: u64 = 1 << 30;
/// How much of [`RESOURCE`] a worker offers: more than tasks ever hold at once.
pub const RESOURCE_AMOUNT: f64 = 1e12;

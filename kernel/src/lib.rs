//! The rask Jupyter kernel: Rust cells with rask preloaded, cluster magics,
//! rich output.
//!
//! - [`server`]: Jupyter messaging 5.3 over ZeroMQ (`jupyter-zmq-client`).
//! - [`evaluator`]: Rust cells compiled and run by `evcxr` in a child process.
//! - [`cells_lib`]: rask as one shared library cells link, made by [`kernelspec::install`].
//! - [`cells_cache`]: where cells compile.
//! - [`cell_ops`]: ops defined in cells, and the plugin made of them.
//! - [`cell_result`]: a cell's result shown in one compile.
//! - [`interrupt`]: an interrupt cancels the running cell's futures on the cluster.
//! - [`magics`], [`completeness`], [`history`]: what the kernel answers itself.
//!
//! The binary that serves the kernel must call [`runtime_hook`] first thing in
//! `main`: evcxr runs cells in a copy of that same binary.

#![warn(missing_docs)]

pub mod cell_ops;
pub mod cell_result;
pub mod cells_cache;
pub mod cells_lib;
pub mod cluster;
pub mod completeness;
pub mod evaluator;
pub mod history;
pub mod interrupt;
pub mod kernelspec;
pub mod magics;
pub mod requests;
pub mod server;

/// Turns this process into evcxr's cell runner when the kernel started it as
/// one (and returns otherwise). Call it first thing in `main`.
pub fn runtime_hook() {
    evcxr::runtime_hook();
}

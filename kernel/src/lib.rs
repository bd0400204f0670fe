//! The rask Jupyter kernel: Rust cells with rask preloaded and cluster magics.
//!
//! Empty until the kernel issue lands; see `DESIGN.md` for the planned layout.

#![warn(missing_docs)]

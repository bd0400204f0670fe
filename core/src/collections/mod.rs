//! Collections build graphs; none executes anything itself.
//!
//! [`delayed`] wraps op calls into lazy values; [`array`](mod@array) is Dask's chunked
//! arrays. Dataframes and bags arrive with their own issues.

pub mod array;
pub mod delayed;

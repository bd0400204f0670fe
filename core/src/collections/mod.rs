//! Collections build graphs; none executes anything itself.
//!
//! [`delayed`] wraps op calls into lazy values; [`array`](mod@array) is Dask's chunked
//! arrays; [`dataframe`](mod@dataframe) is Dask's dataframes on Polars partitions
//! (the `dataframe` feature, on by default), whose shuffles run peer to peer
//! through `shuffle`. Bags arrive with their own issue.

pub mod array;
#[cfg(feature = "dataframe")]
pub mod dataframe;
pub mod delayed;
pub(crate) mod html;
pub(crate) mod kernel;
#[cfg(feature = "dataframe")]
pub(crate) mod shuffle;

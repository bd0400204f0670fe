//! Collections build graphs; none executes anything itself.
//!
//! [`delayed`] wraps op calls into lazy values; [`array`](mod@array) is Dask's chunked
//! arrays; [`dataframe`](mod@dataframe) is Dask's dataframes on Polars partitions
//! (the `dataframe` feature, on by default), whose shuffles run peer to peer
//! through `shuffle`; [`bag`](mod@bag) is Dask's bags of JSON items and lines
//! of text (groupby through the same shuffle).

pub mod array;
pub mod bag;
#[cfg(feature = "dataframe")]
pub mod dataframe;
pub mod delayed;
pub(crate) mod html;
pub(crate) mod kernel;
pub(crate) mod shuffle;

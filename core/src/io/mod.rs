//! Where data lives: one path syntax for local files and object stores.
//!
//! A [`Location`] is parsed from a string the way Dask users write paths:
//! a plain path or `file://` URL is on the local file system, `s3://bucket/key`
//! is Amazon S3 (or any S3-compatible server), `gs://bucket/key` is Google Cloud
//! Storage, and `memory://name/key` is an in-process store (for tests and
//! scratch data). Credentials and endpoints come from the environment, as in
//! Dask's fsspec: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`; `GOOGLE_SERVICE_ACCOUNT`,
//! `GOOGLE_SERVICE_ACCOUNT_KEY`, `GOOGLE_ALLOW_HTTP`. Every
//! worker reads its own environment, so workers on other machines read
//! directly from the store.
//!
//! The object stores are the `object-store` feature (on by default); without
//! it, as in the fuzz targets, only local paths are read and every store URL is
//! refused with an error that says so.

#[cfg(feature = "object-store")]
mod bucket;
#[cfg(not(feature = "object-store"))]
#[path = "no_buckets.rs"]
mod bucket;
#[cfg(feature = "object-store")]
mod gcs;
pub mod line_blocks;
mod listing;
mod location;
#[cfg(feature = "object-store")]
mod runtime;

pub use bucket::{object_bytes_read, Bucket, ObjectKey};
pub use listing::expand;
pub use location::{Location, StoreError};

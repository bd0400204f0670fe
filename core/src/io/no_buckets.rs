//! Object stores in a build without the `object-store` feature (the fuzz
//! targets): every `s3://`, `gs://` or `memory://` URL is refused with an error
//! that says why, and no [`Bucket`] can exist.

use super::location::StoreError;
use std::convert::Infallible;
use std::sync::Arc;

/// A key inside a bucket.
pub type ObjectKey = Box<str>;

/// A bucket; none exists in this build.
pub struct Bucket {
    never: Infallible,
}

/// Refuses every bucket.
pub(super) fn open(scheme: &str, name: &str) -> Result<Arc<Bucket>, StoreError> {
    Err(StoreError::new(
        format!("{scheme}://{name}"),
        "this build of rask has no object stores (its `object-store` feature is off)",
    ))
}

/// Bytes fetched from object stores: none in this build.
pub fn object_bytes_read() -> u64 {
    0
}

/// Parses the key part of a URL.
pub(super) fn parse_key(key: &str) -> Result<ObjectKey, String> {
    Ok(key.trim_matches('/').into())
}

/// `key/name`.
pub(super) fn join_key(key: &ObjectKey, name: &str) -> ObjectKey {
    format!("{key}/{name}").into()
}

impl Bucket {
    pub(super) fn url(&self) -> &str {
        match self.never {}
    }

    pub(super) fn get(&self, _: &ObjectKey) -> Result<Option<Vec<u8>>, String> {
        match self.never {}
    }

    pub(super) fn head(&self, _: &ObjectKey) -> Result<Option<u64>, String> {
        match self.never {}
    }

    pub(super) fn get_range(&self, _: &ObjectKey, _: u64, _: u64) -> Result<Vec<u8>, String> {
        match self.never {}
    }

    pub(super) fn get_ranges(
        &self,
        _: &ObjectKey,
        _: &[std::ops::Range<u64>],
    ) -> Result<Vec<Vec<u8>>, String> {
        match self.never {}
    }

    pub(super) fn put(&self, _: &ObjectKey, _: Vec<u8>) -> Result<(), String> {
        match self.never {}
    }

    pub(super) fn list(&self, _: &ObjectKey) -> Result<Vec<ObjectKey>, String> {
        match self.never {}
    }
}

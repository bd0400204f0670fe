//! Buckets in object stores: S3 (or any S3-compatible server) and GCS through
//! `object_store`, and in-process `memory://` buckets. One client per bucket
//! and process, so connections are reused.

use super::location::StoreError;
use super::runtime::{block_on, install_tls_provider};
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder};
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Bytes fetched from object stores by this process so far.
static BYTES_READ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bytes this process has fetched from object stores (S3, GCS, memory
/// buckets) so far, whole objects and ranges alike.
pub fn object_bytes_read() -> u64 {
    BYTES_READ.load(std::sync::atomic::Ordering::Relaxed)
}

fn count_read(bytes: &[u8]) {
    BYTES_READ.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
}

/// A key inside a bucket (`/`-separated, no leading or trailing `/`).
pub type ObjectKey = object_store::path::Path;

/// A bucket and the client that reaches it.
pub struct Bucket {
    /// `s3://name`, `gs://name` or `memory://name`.
    url: String,
    store: Arc<dyn ObjectStore>,
    /// GCS writes go through the JSON API's media upload.
    gcs: Option<super::gcs::Uploader>,
}

/// The bucket `name` of `scheme` (`s3`, `gs`/`gcs`, `memory`), its client made
/// from the environment on first use.
pub(super) fn open(scheme: &str, name: &str) -> Result<Arc<Bucket>, StoreError> {
    static BUCKETS: OnceLock<Mutex<HashMap<String, Arc<Bucket>>>> = OnceLock::new();
    let url = format!("{scheme}://{name}");
    let mut buckets = BUCKETS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(bucket) = buckets.get(&url) {
        return Ok(bucket.clone());
    }
    install_tls_provider();
    let mut gcs = None;
    let store: Arc<dyn ObjectStore> = match scheme {
        "s3" => Arc::new(
            AmazonS3Builder::from_env()
                .with_bucket_name(name)
                .build()
                .map_err(|e| StoreError::new(&url, e))?,
        ),
        "gs" | "gcs" => {
            let store: Arc<GoogleCloudStorage> = Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(name)
                    .build()
                    .map_err(|e| StoreError::new(&url, e))?,
            );
            gcs = Some(
                super::gcs::Uploader::new(name, store.clone())
                    .map_err(|e| StoreError::new(&url, e))?,
            );
            store
        }
        "memory" => Arc::new(InMemory::new()),
        other => {
            return Err(StoreError::new(
                &url,
                format!("unknown scheme {other:?} (file, s3, gs, memory)"),
            ))
        }
    };
    let bucket = Arc::new(Bucket {
        url: url.clone(),
        store,
        gcs,
    });
    buckets.insert(url, bucket.clone());
    Ok(bucket)
}

/// Parses the key part of a URL.
pub(super) fn parse_key(key: &str) -> Result<ObjectKey, String> {
    ObjectKey::parse(key.trim_end_matches('/')).map_err(|e| format!("bad key: {e}"))
}

/// `key/name`, where `name` may hold `/`.
pub(super) fn join_key(key: &ObjectKey, name: &str) -> ObjectKey {
    name.split('/')
        .filter(|part| !part.is_empty())
        .fold(key.clone(), |key, part| key.join(part))
}

impl Bucket {
    /// `s3://name`, `gs://name` or `memory://name`.
    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// The whole object; `None` when it does not exist.
    pub(super) fn get(&self, key: &ObjectKey) -> Result<Option<Vec<u8>>, String> {
        let (key, store) = (key.clone(), self.store.clone());
        block_on(async move {
            match store.get(&key).await {
                Ok(got) => got.bytes().await.map(|bytes| Some(bytes.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?
        .map_err(|e| e.to_string())
        .inspect(|got| got.iter().for_each(|bytes| count_read(bytes)))
    }

    /// The object's size in bytes; `None` when it does not exist.
    pub(super) fn head(&self, key: &ObjectKey) -> Result<Option<u64>, String> {
        let (key, store) = (key.clone(), self.store.clone());
        block_on(async move {
            match store.head(&key).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?
        .map_err(|e| e.to_string())
    }

    /// Bytes `start..end` of the object, which must lie inside it.
    pub(super) fn get_range(
        &self,
        key: &ObjectKey,
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>, String> {
        let (key, store) = (key.clone(), self.store.clone());
        block_on(async move { store.get_range(&key, start..end).await })?
            .map(|bytes| bytes.to_vec())
            .map_err(|e| e.to_string())
            .inspect(|bytes| count_read(bytes))
    }

    /// Several ranges of the object, each inside it, fetched concurrently
    /// (nearby ranges in one request).
    pub(super) fn get_ranges(
        &self,
        key: &ObjectKey,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<Vec<u8>>, String> {
        let (key, store, ranges) = (key.clone(), self.store.clone(), ranges.to_vec());
        let got = block_on(async move { store.get_ranges(&key, &ranges).await })?
            .map_err(|e| e.to_string())?;
        Ok(got
            .into_iter()
            .map(|bytes| {
                count_read(&bytes);
                bytes.to_vec()
            })
            .collect())
    }

    /// Writes the whole object, replacing what was there.
    pub(super) fn put(&self, key: &ObjectKey, bytes: Vec<u8>) -> Result<(), String> {
        let key = key.clone();
        if let Some(gcs) = &self.gcs {
            let gcs = gcs.clone();
            return block_on(async move { gcs.upload(key.as_ref(), bytes).await })?;
        }
        let store = self.store.clone();
        block_on(async move { store.put(&key, PutPayload::from(bytes)).await })?
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Every key below `prefix` (every key in the bucket when it is empty).
    pub(super) fn list(&self, prefix: &ObjectKey) -> Result<Vec<ObjectKey>, String> {
        let (prefix, store) = (prefix.clone(), self.store.clone());
        let listed = block_on(async move {
            let prefix = (!prefix.as_ref().is_empty()).then_some(&prefix);
            store.list(prefix).try_collect::<Vec<_>>().await
        })?
        .map_err(|e| e.to_string())?;
        Ok(listed.into_iter().map(|meta| meta.location).collect())
    }
}

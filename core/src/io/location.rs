//! [`Location`]: a parsed path on the local file system or in an object store.

use super::runtime::{block_on, install_tls_provider};
use object_store::aws::AmazonS3Builder;
use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder};
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// A failure reading, writing or naming a location; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct StoreError {
    /// The path or URL.
    pub location: String,
    /// What went wrong.
    pub message: String,
}

impl StoreError {
    /// A failure at `location`.
    pub(crate) fn new(location: impl fmt::Display, message: impl fmt::Display) -> Self {
        StoreError {
            location: location.to_string(),
            message: message.to_string(),
        }
    }
}

/// A file or object: a local path, or a key in an S3, GCS or in-memory bucket.
#[derive(Clone)]
pub enum Location {
    /// A path on this machine's file system.
    Local(PathBuf),
    /// A key in an object store.
    Object {
        /// The bucket (its client is shared by every location in it).
        bucket: Arc<Bucket>,
        /// The key inside the bucket.
        key: ObjectPath,
    },
}

/// A bucket and the client that reaches it.
pub struct Bucket {
    /// `s3://name`, `gs://name` or `memory://name`.
    url: String,
    store: Arc<dyn ObjectStore>,
    /// GCS writes go through the JSON API's media upload.
    gcs: Option<super::gcs::Uploader>,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::Object { bucket, key } if key.as_ref().is_empty() => {
                write!(f, "{}", bucket.url)
            }
            Location::Object { bucket, key } => write!(f, "{}/{key}", bucket.url),
        }
    }
}

/// One client per bucket and process, so connections are reused.
fn bucket(scheme: &str, name: &str) -> Result<Arc<Bucket>, StoreError> {
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

impl Bucket {
    /// The bucket's client.
    pub(crate) fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }
}

impl Location {
    /// Parses a path or URL: `data/x.zarr`, `file:///data/x.zarr`,
    /// `s3://bucket/x.zarr`, `gs://bucket/x.zarr`, `memory://scratch/x.zarr`.
    pub fn parse(text: &str) -> Result<Location, StoreError> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(text)));
        };
        if scheme == "file" {
            return Ok(Location::Local(PathBuf::from(rest)));
        }
        let (name, key) = rest.split_once('/').unwrap_or((rest, ""));
        if name.is_empty() {
            return Err(StoreError::new(text, "the URL has no bucket"));
        }
        let key = ObjectPath::parse(key.trim_end_matches('/'))
            .map_err(|e| StoreError::new(text, format!("bad key: {e}")))?;
        Ok(Location::Object {
            bucket: bucket(scheme, name)?,
            key,
        })
    }

    /// The location of `name` inside this one (`name` may hold `/`).
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::Local(path) => Location::Local(path.join(name)),
            Location::Object { bucket, key } => Location::Object {
                bucket: bucket.clone(),
                key: name
                    .split('/')
                    .filter(|part| !part.is_empty())
                    .fold(key.clone(), |key, part| key.join(part)),
            },
        }
    }

    /// Whether this is on the local file system.
    pub fn is_local(&self) -> bool {
        matches!(self, Location::Local(_))
    }

    /// The location as a string [`Location::parse`] reads back; local paths are
    /// made absolute, so other processes on this machine find them too.
    pub fn to_url(&self) -> Result<String, StoreError> {
        match self {
            Location::Local(path) => Ok(std::path::absolute(path)
                .map_err(|e| StoreError::new(path.display(), e))?
                .display()
                .to_string()),
            other => Ok(other.to_string()),
        }
    }

    /// The whole file or object; `None` when it does not exist.
    pub fn read(&self) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Location::Local(path) => match std::fs::read(path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StoreError::new(path.display(), e)),
            },
            Location::Object { bucket, key } => {
                let (key, store) = (key.clone(), bucket.store.clone());
                let result = block_on(async move {
                    match store.get(&key).await {
                        Ok(got) => got.bytes().await.map(Some),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
                .map_err(|e| StoreError::new(self, e))?;
                Ok(result
                    .map_err(|e| StoreError::new(self, e))?
                    .map(|bytes| bytes.to_vec()))
            }
        }
    }

    /// The size in bytes; `None` when it does not exist.
    pub fn size(&self) -> Result<Option<u64>, StoreError> {
        match self {
            Location::Local(path) => match std::fs::metadata(path) {
                Ok(meta) => Ok(Some(meta.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StoreError::new(path.display(), e)),
            },
            Location::Object { bucket, key } => {
                let (key, store) = (key.clone(), bucket.store.clone());
                block_on(async move {
                    match store.head(&key).await {
                        Ok(meta) => Ok(Some(meta.size)),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
                .map_err(|e| StoreError::new(self, e))?
                .map_err(|e| StoreError::new(self, e))
            }
        }
    }

    /// Bytes `start..end` of the file or object, fewer where it ends sooner
    /// (none past its end); a missing file is an error.
    pub fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>, StoreError> {
        use std::io::{Read, Seek, SeekFrom};
        let end = end.max(start);
        match self {
            Location::Local(path) => {
                let error = |e: std::io::Error| StoreError::new(path.display(), e);
                let mut file = std::fs::File::open(path).map_err(error)?;
                file.seek(SeekFrom::Start(start)).map_err(error)?;
                let mut bytes = Vec::with_capacity((end - start).min(1 << 30) as usize);
                file.take(end - start)
                    .read_to_end(&mut bytes)
                    .map_err(error)?;
                Ok(bytes)
            }
            Location::Object { .. } => {
                let size = self
                    .size()?
                    .ok_or_else(|| StoreError::new(self, "no such object"))?;
                let end = end.min(size);
                if start >= end {
                    return Ok(Vec::new());
                }
                let Location::Object { bucket, key } = self else {
                    unreachable!("matched above")
                };
                let (key, store) = (key.clone(), bucket.store.clone());
                block_on(async move { store.get_range(&key, start..end).await })
                    .map_err(|e| StoreError::new(self, e))?
                    .map(|bytes| bytes.to_vec())
                    .map_err(|e| StoreError::new(self, e))
            }
        }
    }

    /// Reads the whole file or object, refusing one larger than `limit` bytes
    /// before reading it (`None` when it does not exist).
    pub fn read_at_most(&self, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        match self.size()? {
            None => Ok(None),
            Some(size) if size > limit => Err(StoreError::new(
                self,
                format!("it is {size} bytes, more than the {limit} it may be"),
            )),
            Some(_) => self.read(),
        }
    }

    /// Writes the whole file or object, creating parent directories of local files.
    pub fn write(&self, bytes: Vec<u8>) -> Result<(), StoreError> {
        match self {
            Location::Local(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StoreError::new(parent.display(), e))?;
                }
                std::fs::write(path, bytes).map_err(|e| StoreError::new(path.display(), e))
            }
            Location::Object { bucket, key } => {
                let key = key.clone();
                let written = if let Some(gcs) = &bucket.gcs {
                    let gcs = gcs.clone();
                    block_on(async move { gcs.upload(key.as_ref(), bytes).await })
                } else {
                    let store = bucket.store.clone();
                    block_on(async move {
                        store
                            .put(&key, PutPayload::from(bytes))
                            .await
                            .map(drop)
                            .map_err(|e| e.to_string())
                    })
                };
                written
                    .map_err(|e| StoreError::new(self, e))?
                    .map_err(|e| StoreError::new(self, e))
            }
        }
    }

    /// The local path, if this is one.
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            Location::Local(path) => Some(path),
            Location::Object { .. } => None,
        }
    }
}

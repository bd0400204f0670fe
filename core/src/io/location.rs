//! [`Location`]: a parsed path on the local file system or in an object store.

use super::bucket::{self, Bucket, ObjectKey};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        key: ObjectKey,
    },
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
                write!(f, "{}", bucket.url())
            }
            Location::Object { bucket, key } => write!(f, "{}/{key}", bucket.url()),
        }
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
        let key = bucket::parse_key(key).map_err(|e| StoreError::new(text, e))?;
        Ok(Location::Object {
            bucket: bucket::open(scheme, name)?,
            key,
        })
    }

    /// The location of `name` inside this one (`name` may hold `/`).
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::Local(path) => Location::Local(path.join(name)),
            Location::Object { bucket, key } => Location::Object {
                bucket: bucket.clone(),
                key: bucket::join_key(key, name),
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
                bucket.get(key).map_err(|e| StoreError::new(self, e))
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
                bucket.head(key).map_err(|e| StoreError::new(self, e))
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
            Location::Object { bucket, key } => {
                let size = self
                    .size()?
                    .ok_or_else(|| StoreError::new(self, "no such object"))?;
                let end = end.min(size);
                if start >= end {
                    return Ok(Vec::new());
                }
                bucket
                    .get_range(key, start, end)
                    .map_err(|e| StoreError::new(self, e))
            }
        }
    }

    /// Several byte ranges of the file or object, each inside it (from
    /// [`Location::size`]); an object's are fetched concurrently.
    pub fn read_ranges(&self, ranges: &[std::ops::Range<u64>]) -> Result<Vec<Vec<u8>>, StoreError> {
        match self {
            Location::Local(_) => ranges
                .iter()
                .map(|r| self.read_range(r.start, r.end))
                .collect(),
            Location::Object { bucket, key } => bucket
                .get_ranges(key, ranges)
                .map_err(|e| StoreError::new(self, e)),
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
                bucket.put(key, bytes).map_err(|e| StoreError::new(self, e))
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

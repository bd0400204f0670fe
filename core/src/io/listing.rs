//! Globs over locations: `data/trips/*.parquet`, `s3://bucket/year=*/*.csv`.
//! A pattern without wildcards names one file, or a directory (or key prefix)
//! whose files with the wanted extension are all taken, as Dask reads a
//! directory of Parquet files.

use super::location::{Location, StoreError};
use std::cmp::Ordering;

/// The files `pattern` names, in natural order (`part.2` before `part.10`);
/// `extension` (e.g. `"parquet"`) picks a directory's files. No match is an
/// error naming the pattern.
pub fn expand(pattern: &str, extension: &str) -> Result<Vec<Location>, StoreError> {
    let wild = pattern.find(['*', '?', '[']);
    let mut found = match wild {
        None => {
            let location = Location::parse(pattern)?;
            if location.exists()? {
                return Ok(vec![location]);
            }
            let suffix = format!(".{extension}");
            location
                .files_below()?
                .into_iter()
                .filter(|(_, relative)| relative.ends_with(&suffix))
                .map(|(location, _)| location)
                .collect::<Vec<_>>()
        }
        Some(at) => {
            // List below the last separator before the first wildcard.
            let base_end = pattern[..at].rfind('/').map_or(0, |slash| slash + 1);
            let (base, rest) = pattern.split_at(base_end);
            let glob = glob::Pattern::new(rest)
                .map_err(|e| StoreError::new(pattern, format!("bad pattern: {e}")))?;
            let options = glob::MatchOptions {
                require_literal_separator: true,
                ..Default::default()
            };
            let root = Location::parse(if base.is_empty() { "." } else { base })?;
            root.files_below()?
                .into_iter()
                .filter(|(_, relative)| glob.matches_with(relative, options))
                .map(|(location, _)| location)
                .collect()
        }
    };
    if found.is_empty() {
        return Err(StoreError::new(
            pattern,
            match wild {
                None => format!("no such file, and no *.{extension} files below it"),
                Some(_) => "no files match".to_string(),
            },
        ));
    }
    found.sort_by(|a, b| natural(&a.to_string(), &b.to_string()));
    Ok(found)
}

/// Orders names with their digit runs compared as numbers.
fn natural(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.len() - a.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let db = b.len() - b.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let (na, nb) = (
                    a[..da].trim_start_matches('0'),
                    b[..db].trim_start_matches('0'),
                );
                let by_number = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if by_number != Ordering::Equal {
                    return by_number;
                }
                (a, b) = (&a[da..], &b[db..]);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]);
            }
        }
    }
}

impl Location {
    /// Whether a file or object is here (a directory is not).
    pub fn exists(&self) -> Result<bool, StoreError> {
        match self {
            Location::Local(path) => Ok(path.is_file()),
            Location::Object { bucket, key } => Ok(bucket
                .head(key)
                .map_err(|e| StoreError::new(self, e))?
                .is_some()),
        }
    }

    /// Every file below this directory or key prefix, with its path relative
    /// to it (`/`-separated).
    pub fn files_below(&self) -> Result<Vec<(Location, String)>, StoreError> {
        match self {
            Location::Local(root) => {
                let mut out = Vec::new();
                let mut pending = vec![root.clone()];
                while let Some(dir) = pending.pop() {
                    let entries = match std::fs::read_dir(&dir) {
                        Ok(entries) => entries,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir == *root => {
                            return Ok(out)
                        }
                        Err(e) => return Err(StoreError::new(dir.display(), e)),
                    };
                    for entry in entries {
                        let path = entry.map_err(|e| StoreError::new(dir.display(), e))?.path();
                        if path.is_dir() {
                            pending.push(path);
                        } else if let Ok(relative) = path.strip_prefix(root) {
                            let relative = relative.to_string_lossy().replace('\\', "/");
                            out.push((Location::Local(path), relative));
                        }
                    }
                }
                Ok(out)
            }
            Location::Object { bucket, key } => {
                let listed = bucket.list(key).map_err(|e| StoreError::new(self, e))?;
                let skip = if key.as_ref().is_empty() {
                    0
                } else {
                    key.as_ref().len() + 1
                };
                Ok(listed
                    .into_iter()
                    .filter_map(|key| {
                        let relative = key.as_ref().get(skip..)?.to_string();
                        let location = Location::Object {
                            bucket: bucket.clone(),
                            key,
                        };
                        Some((location, relative))
                    })
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_with_numbers_as_numbers() {
        let mut names = vec!["part.10.parquet", "part.2.parquet", "part.1.parquet", "a"];
        names.sort_by(|a, b| natural(a, b));
        assert_eq!(
            names,
            ["a", "part.1.parquet", "part.2.parquet", "part.10.parquet"]
        );
    }

    #[test]
    fn globs_directories_and_misses() {
        let dir = std::env::temp_dir().join(format!("rask-glob-{}", std::process::id()));
        for name in [
            "x/part.10.csv",
            "x/part.2.csv",
            "x/y=1/part.0.csv",
            "x/notes.txt",
        ] {
            Location::Local(dir.join(name))
                .write(b"a\n".to_vec())
                .unwrap();
        }
        let base = dir.display().to_string();
        let names = |found: Vec<Location>| -> Vec<String> {
            found
                .iter()
                .map(|l| l.to_string()[base.len() + 1..].to_string())
                .collect()
        };
        assert_eq!(
            names(expand(&format!("{base}/x/*.csv"), "csv").unwrap()),
            ["x/part.2.csv", "x/part.10.csv"]
        );
        assert_eq!(
            names(expand(&format!("{base}/x"), "csv").unwrap()),
            ["x/part.2.csv", "x/part.10.csv", "x/y=1/part.0.csv"]
        );
        assert_eq!(
            names(expand(&format!("{base}/x/y=*/*.csv"), "csv").unwrap()),
            ["x/y=1/part.0.csv"]
        );
        let miss = expand(&format!("{base}/x/*.parquet"), "parquet").unwrap_err();
        assert!(miss.to_string().contains("no files match"), "{miss}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

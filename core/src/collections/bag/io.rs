//! Bags from text files and back: `read_text` (plain, gzip, zstd; plain files
//! split into blocks of about `blocksize` bytes at line starts), `read_json`
//! (JSON lines), `to_textfiles` — any [`Location`](crate::io::Location) with
//! globs, local or in an object store.

use super::kernels::{self, TextTarget};
use super::plan::{Compression, TextBlock};
use super::{Bag, BagError, Func, Source};
use crate::client::Client;
use crate::collections::delayed::Delayed;
use crate::graph::Key;
use std::sync::Arc;

/// Lines of text files, one item (a text, without its line ending) per line.
/// `pattern` is a path, URL, directory (its `*.txt` files) or glob;
/// compression follows the extension (`.gz`, `.zst`). A plain file is split
/// into partitions of about `blocksize` bytes, each starting at a line start;
/// with `None`, or for a compressed file, a file is one partition (Dask's
/// `read_text`).
pub fn read_text(pattern: &str, blocksize: Option<u64>) -> Result<Bag, BagError> {
    Ok(Bag::build(
        "read-text",
        blocks(pattern, "txt", blocksize)?,
        Vec::new(),
    ))
}

/// JSON lines: each line of the files parsed as one JSON item (Dask's
/// `read_text(..).map(json.loads)`); a directory means its `*.json` files.
/// A line that is not JSON is an error naming the file and line.
pub fn read_json(pattern: &str, blocksize: Option<u64>) -> Result<Bag, BagError> {
    let sources = blocks(pattern, "json", blocksize)?;
    Ok(Bag::build(
        "read-json",
        sources,
        vec![super::plan::Step::Map(Func::ParseJson)],
    ))
}

fn blocks(
    pattern: &str,
    extension: &str,
    blocksize: Option<u64>,
) -> Result<Arc<[Source]>, BagError> {
    if blocksize == Some(0) {
        return Err(BagError::Invalid(format!(
            "read_text({pattern:?}): blocksize must be at least 1 byte"
        )));
    }
    let mut sources = Vec::new();
    for file in crate::io::expand(pattern, extension)? {
        let location = file.to_string();
        let compression = Compression::of(&location);
        let whole = |location: String| {
            Source::Text(TextBlock {
                location,
                start: 0,
                end: None,
                compression,
            })
        };
        match blocksize {
            Some(size) if compression == Compression::None => {
                let total = file
                    .size()?
                    .ok_or_else(|| crate::io::StoreError::new(&file, "no such file"))?;
                for (start, end) in crate::io::line_blocks::bounds(total, size) {
                    sources.push(Source::Text(TextBlock {
                        location: location.clone(),
                        start,
                        end: Some(end),
                        compression,
                    }));
                }
            }
            _ => sources.push(whole(location)),
        }
    }
    Ok(sources.into())
}

impl Bag {
    /// Writes one text file per partition, one item per line (texts as they
    /// are, other items as JSON). `pattern` names the files: its `*` becomes
    /// the partition number (`out/*.json.gz`); without one it is a directory
    /// of `part.{i}.txt` files. `.gz` and `.zst` names are compressed. Each
    /// file is written by its partition's task (Dask's `to_textfiles`).
    pub fn to_textfiles(&self, pattern: &str, client: &Client) -> Result<(), BagError> {
        let token = crate::graph::fresh_token();
        let base = (!pattern.contains('*'))
            .then(|| crate::io::Location::parse(pattern))
            .transpose()?;
        let tasks: Vec<Delayed<u64>> = self
            .partitions
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let location = match &base {
                    Some(dir) => dir.join(&format!("part.{i}.txt")).to_string(),
                    None => pattern.replacen('*', &i.to_string(), 1),
                };
                crate::io::Location::parse(&location)?;
                let target = TextTarget {
                    compression: Compression::of(&location),
                    location,
                };
                let key = Key::new(format!("to-textfiles-{token}")).indexed(&[i]);
                Ok(Delayed::from_arc(kernels::write_text(
                    key,
                    &target,
                    node.clone(),
                )))
            })
            .collect::<Result<_, BagError>>()?;
        for future in client.compute_many(&tasks)? {
            future.shared()?;
        }
        Ok(())
    }
}

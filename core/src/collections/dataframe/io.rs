//! Reading dataframes from files and writing them back: Parquet, CSV and JSON
//! lines, from any [`Location`](crate::io::Location) with globs, one
//! partition per file.

use super::plan::{self, CsvSpec, Format, HiveValue};
use super::{DataFrame, DataFrameError, Source};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How CSV files are read (Dask's `read_csv` keywords).
#[derive(Clone, Debug)]
pub struct CsvOptions {
    /// Whether the first line names the columns (default true).
    pub header: bool,
    /// The field separator (default `,`).
    pub separator: u8,
    /// Types that replace inferred ones (Dask's `dtype=`).
    pub dtypes: Vec<(String, DataType)>,
    /// Files are split into partitions of about this many bytes, each
    /// starting at a line start (default 64 MiB, as Dask's); `None` makes
    /// each file one partition. Column types come from the lines in the
    /// first 256 kB of the first file (Dask's `sample`). Like Dask's, splitting assumes
    /// no quoted field spans lines.
    pub blocksize: Option<u64>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            header: true,
            separator: b',',
            dtypes: Vec::new(),
            blocksize: Some(64 << 20),
        }
    }
}

/// Parquet files: a path, URL, directory or glob (`s3://bucket/trips/*.parquet`).
/// Polars pushes later column selections and filters into each file's read.
pub fn read_parquet(pattern: &str) -> Result<DataFrame, DataFrameError> {
    read(pattern, "parquet", Format::Parquet)
}

/// How much of the first CSV file its column types are inferred from (Dask's
/// `sample`): every line that starts in its first 256 kB.
const CSV_SAMPLE_BYTES: u64 = 256_000;

/// CSV files: a path, URL, directory or glob; each file split into blocks
/// of about `options.blocksize` bytes at line starts, read by ranged reads.
pub fn read_csv(pattern: &str, options: &CsvOptions) -> Result<DataFrame, DataFrameError> {
    let spec = CsvSpec {
        has_header: options.header,
        separator: options.separator,
        dtypes: options.dtypes.clone(),
        schema: Vec::new(),
        bytes: None,
    };
    let Some(blocksize) = options.blocksize else {
        return read(pattern, "csv", Format::Csv(spec));
    };
    if blocksize == 0 {
        return Err(DataFrameError::Invalid(format!(
            "read_csv({pattern:?}): blocksize must be at least 1 byte"
        )));
    }
    let files = crate::io::expand(pattern, "csv")?;
    let names: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    let hive = hive_columns(pattern, &names);
    let mut parts = Vec::new();
    for (file, hive) in files.iter().zip(hive) {
        let size = file
            .size()?
            .ok_or_else(|| crate::io::StoreError::new(file, "no such file"))?;
        for bytes in crate::io::line_blocks::bounds(size, blocksize) {
            parts.push((file.to_string(), Some(bytes), hive.clone()));
        }
    }
    // Types from a sample of the first file stand for every block (Dask's `meta`).
    let first = &files[0];
    let columns = plan::infer_csv_schema(first, &spec, CSV_SAMPLE_BYTES)
        .map_err(|e| DataFrameError::Polars(format!("{first}: {e}")))?;
    let sources = parts
        .into_iter()
        .map(|(file, bytes, hive)| {
            let format = Format::Csv(CsvSpec {
                schema: columns.clone(),
                bytes,
                ..spec.clone()
            });
            (file, format, hive)
        })
        .collect();
    from_sources("read-csv", sources)
}

/// JSON-lines files (one object per line), one partition per file.
pub fn read_json(pattern: &str) -> Result<DataFrame, DataFrameError> {
    read(pattern, "json", Format::JsonLines)
}

fn read(pattern: &str, extension: &str, format: Format) -> Result<DataFrame, DataFrameError> {
    let files = crate::io::expand(pattern, extension)?;
    let names: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    let hive = hive_columns(pattern, &names);
    let sources = names
        .into_iter()
        .zip(hive)
        .map(|(file, hive)| (file, format.clone(), hive))
        .collect();
    from_sources(&format!("read-{extension}"), sources)
}

/// A file (or a block of one) as a partition reads it: its path or URL, its
/// format, and its hive columns.
type FilePart = (String, Format, Vec<(String, HiveValue)>);

/// A frame of one partition per source (a file or a block of one); the
/// first source's schema stands for all (Dask's `meta`).
fn from_sources(name: &str, sources: Vec<FilePart>) -> Result<DataFrame, DataFrameError> {
    let (first, format, hive) = &sources[0];
    let scan = match format {
        // A Parquet file's schema is in its footer: nothing else is read.
        Format::Parquet => super::ranged::schema_scan(first, hive),
        _ => plan::scan_file(first, format, hive),
    };
    let schema = scan
        .and_then(|mut frame| frame.collect_schema())
        .map_err(|e| DataFrameError::Polars(format!("{}: {e}", format.part_name(first))))?;
    let sources: Arc<[Source]> = sources
        .into_iter()
        .map(|(file, format, hive)| Source::File(file, format, hive))
        .collect();
    DataFrame::build(
        name,
        schema.clone(),
        sources,
        Vec::new(),
        Arc::new([]),
        Some(schema),
    )
}

/// The `key=value` directories of each file below the pattern's fixed part,
/// when every file has the same keys; integers when every value of a key is one.
fn hive_columns(pattern: &str, files: &[String]) -> Vec<Vec<(String, HiveValue)>> {
    let fixed = pattern
        .find(['*', '?', '['])
        .map_or(pattern, |at| &pattern[..at]);
    let base = fixed.rfind('/').map_or(0, |slash| slash + 1);
    let pairs: Vec<Vec<(String, String)>> = files
        .iter()
        .map(|file| {
            let relative = file.get(base..).unwrap_or_default();
            let mut dirs: Vec<&str> = relative.split('/').collect();
            dirs.pop();
            dirs.iter()
                .filter_map(|d| d.split_once('='))
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect();
    let keys: Vec<&str> = pairs[0].iter().map(|(k, _)| k.as_str()).collect();
    let same = pairs
        .iter()
        .all(|p| p.iter().map(|(k, _)| k.as_str()).eq(keys.iter().copied()));
    if keys.is_empty() || !same {
        return vec![Vec::new(); files.len()];
    }
    let integer: Vec<bool> = (0..keys.len())
        .map(|i| pairs.iter().all(|p| p[i].1.parse::<i64>().is_ok()))
        .collect();
    pairs
        .into_iter()
        .map(|p| {
            p.into_iter()
                .zip(&integer)
                .map(|((k, v), &int)| {
                    let value = match v.parse::<i64>() {
                        Ok(n) if int => HiveValue::Int(n),
                        _ => HiveValue::Text(v),
                    };
                    (k, value)
                })
                .collect()
        })
        .collect()
}

/// Formats partitions are written in.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum WriteFormat {
    /// Parquet, zstd-compressed.
    Parquet,
    /// CSV with a header.
    Csv,
    /// JSON lines.
    JsonLines,
}

impl WriteFormat {
    /// The file extension.
    pub(crate) fn extension(self) -> &'static str {
        match self {
            WriteFormat::Parquet => "parquet",
            WriteFormat::Csv => "csv",
            WriteFormat::JsonLines => "json",
        }
    }

    /// A partition's file contents.
    pub(crate) fn encode(self, frame: &polars::prelude::DataFrame) -> PolarsResult<Vec<u8>> {
        let mut bytes = Vec::new();
        let mut frame = frame.clone();
        match self {
            WriteFormat::Parquet => {
                ParquetWriter::new(&mut bytes).finish(&mut frame)?;
            }
            WriteFormat::Csv => CsvWriter::new(&mut bytes).finish(&mut frame)?,
            WriteFormat::JsonLines => JsonWriter::new(&mut bytes)
                .with_json_format(JsonFormat::JsonLines)
                .finish(&mut frame)?,
        }
        Ok(bytes)
    }
}

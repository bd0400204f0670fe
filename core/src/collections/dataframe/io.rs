//! Reading dataframes from files and writing them back: Parquet, CSV and JSON
//! lines, from any [`Location`](crate::io::Location) with globs: a partition
//! per file, per block of a large CSV file, or per few small Parquet files.

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

/// How Parquet files are read.
#[derive(Clone, Debug)]
pub struct ParquetOptions {
    /// Small files are read together, so that a partition holds at least
    /// about this many bytes of uncompressed Parquet data (Dask's
    /// `dataframe.parquet.minimum-partition-size`, 75 MB by default, as
    /// Dask's). The first file's size stands for every file's, and a
    /// partition reads at most √(files) and 100 files, as Dask's. 0 makes
    /// each file one partition.
    pub minimum_partition_size: u64,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            minimum_partition_size: 75_000_000,
        }
    }
}

/// Parquet files: a path, URL, directory or glob (`s3://bucket/trips/*.parquet`),
/// small files read together ([`ParquetOptions`]). Polars pushes later column
/// selections and filters into each file's read.
pub fn read_parquet(pattern: &str) -> Result<DataFrame, DataFrameError> {
    read_parquet_with(pattern, &ParquetOptions::default())
}

/// [`read_parquet`] with options.
pub fn read_parquet_with(
    pattern: &str,
    options: &ParquetOptions,
) -> Result<DataFrame, DataFrameError> {
    let files = listed(pattern, "parquet")?;
    let (first, hive) = files[0].clone();
    let (scan, uncompressed) = super::ranged::footer_facts(&first, &hive)
        .map_err(|e| DataFrameError::Polars(plan::in_file(&first, e)))?;
    let per_partition =
        files_per_partition(files.len(), uncompressed, options.minimum_partition_size);
    let partitions = files.len().div_ceil(per_partition);
    let mut files = files.into_iter();
    // Consecutive files, as evenly as they go (partition i reads files
    // n·i/k up to n·(i + 1)/k).
    let n = files.len();
    let sources = (0..partitions)
        .map(|i| {
            let take = n * (i + 1) / partitions - n * i / partitions;
            Source::Files(files.by_ref().take(take).collect(), Format::Parquet)
        })
        .collect();
    from_sources("read-parquet", Ok(scan), &first, sources)
}

/// How many files a Parquet partition reads: enough for `minimum` bytes
/// when each file holds `uncompressed` bytes, at most √`files` and 100.
fn files_per_partition(files: usize, uncompressed: u64, minimum: u64) -> usize {
    let wanted = minimum.div_ceil(uncompressed.max(1)).max(1);
    let cap = ((files as f64).sqrt().ceil() as u64).min(100);
    wanted.min(cap).max(1) as usize
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
            parts.push((file.to_string(), bytes, hive.clone()));
        }
    }
    // Types from a sample of the first file stand for every block (Dask's `meta`).
    let first = &files[0];
    let columns = plan::infer_csv_schema(first, &spec, CSV_SAMPLE_BYTES)
        .map_err(|e| DataFrameError::Polars(format!("{first}: {e}")))?;
    let sources: Vec<Source> = parts
        .into_iter()
        .map(|(file, bytes, hive)| {
            let format = Format::Csv(CsvSpec {
                schema: columns.clone(),
                bytes: Some(bytes),
                ..spec.clone()
            });
            Source::Files(vec![(file, hive)], format)
        })
        .collect();
    let Source::Files(first, format) = &sources[0] else {
        unreachable!("CSV blocks are files")
    };
    let scan = plan::scan_file(&first[0].0, format, &first[0].1);
    let first = format.part_name(&first[0].0);
    from_sources("read-csv", scan, &first, sources)
}

/// JSON-lines files (one object per line), one partition per file.
pub fn read_json(pattern: &str) -> Result<DataFrame, DataFrameError> {
    read(pattern, "json", Format::JsonLines)
}

fn read(pattern: &str, extension: &str, format: Format) -> Result<DataFrame, DataFrameError> {
    let files = listed(pattern, extension)?;
    let (first, hive) = &files[0];
    let scan = plan::scan_file(first, &format, hive);
    let first = first.clone();
    let sources = files
        .into_iter()
        .map(|file| Source::Files(vec![file], format.clone()))
        .collect();
    from_sources(&format!("read-{extension}"), scan, &first, sources)
}

/// The files `pattern` names, with their hive columns.
fn listed(pattern: &str, extension: &str) -> Result<Vec<plan::FileRef>, DataFrameError> {
    let files = crate::io::expand(pattern, extension)?;
    let names: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    let hive = hive_columns(pattern, &names);
    Ok(names.into_iter().zip(hive).collect())
}

/// A frame of one partition per source; `scan` (of the first source, named
/// `first` in errors) stands for all: its schema is the frame's (Dask's `meta`).
fn from_sources(
    name: &str,
    scan: PolarsResult<LazyFrame>,
    first: &str,
    sources: Vec<Source>,
) -> Result<DataFrame, DataFrameError> {
    let schema = scan
        .and_then(|mut frame| frame.collect_schema())
        .map_err(|e| DataFrameError::Polars(plan::in_file(first, e)))?;
    DataFrame::build(
        name,
        schema.clone(),
        sources.into(),
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

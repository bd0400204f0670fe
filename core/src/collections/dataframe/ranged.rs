//! Ranged Parquet reads from object stores: when a frame's partitions are
//! built, Polars' optimiser works out which of the files' columns their query
//! reads, and which filter it applies to the files' rows first ([`ReadSet`]);
//! each partition then fetches its object's footer and only those columns'
//! chunks in the row groups whose statistics the filter does not rule out
//! (nearby ranges coalesced, fetched concurrently), as Dask's and Polars' own
//! readers do. The bytes go into an anonymous mapping the size of the object
//! whose other pages are never written nor read, so they cost no memory; when
//! row groups are ruled out, the footer there lists only the others, so no
//! reader looks for their bytes.
//!
//! Local files are mapped instead (`plan::read_bytes`), and small objects
//! read whole; an object whose query needs most of its bytes is fetched whole
//! in one more request.

use super::plan::{self, HiveValue, Step};
use super::row_groups::{self, StatsFilter};
use crate::io::Location;
use polars::prelude::*;
use polars_buffer::Buffer;
use polars_parquet_format::thrift::protocol::{TCompactInputProtocol, TCompactOutputProtocol};
use polars_plan::plans::IR;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ops::Range;

/// Objects smaller than this are read whole.
const MIN_RANGED_BYTES: u64 = 1 << 20;
/// The bytes fetched first from the end of an object: the footer of most files.
const TAIL_BYTES: u64 = 64 << 10;
/// Ranges closer than this are fetched as one.
const COALESCE_GAP: u64 = 256 << 10;
/// A query that needs more than this share of an object reads it whole.
const MOST_OF_THE_FILE: f64 = 0.8;

/// What a partition's query reads of its Parquet files, when less than all:
/// some of their columns, or the rows of a filter their row groups'
/// statistics can rule out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReadSet {
    /// The columns read; every one when `None`.
    pub(crate) columns: Option<Vec<String>>,
    /// The filter applied to the files' rows before anything else.
    pub(crate) filter: Option<StatsFilter>,
}

/// The bytes of Parquet object `location` with only what `read` needs
/// fetched (its other bytes never fetched nor touched); `None` when it should
/// be read whole instead (small), or mapped (local).
pub(super) fn fetch(location: &str, read: &ReadSet) -> PolarsResult<Option<Buffer<u8>>> {
    let err = |e: crate::io::StoreError| polars_err!(ComputeError: "{e}");
    let parsed = Location::parse(location).map_err(err)?;
    if parsed.is_local() {
        return Ok(None);
    }
    let size = object_size(&parsed, location)?;
    if size < MIN_RANGED_BYTES {
        return Ok(None);
    }
    let footer = read_footer(&parsed, location, size)?;
    let metadata = metadata(&footer)?;
    let kept: Vec<usize> = (0..metadata.row_groups.len())
        .filter(|&i| {
            read.filter.as_ref().is_none_or(|filter| {
                filter.may_match(&metadata.row_groups[i], &metadata.footer_buf)
            })
        })
        .collect();
    let every_group = kept.len() == metadata.row_groups.len();
    if every_group && read.columns.is_none() {
        return Ok(None);
    }
    let mut ranges: Vec<Range<u64>> = kept
        .iter()
        .flat_map(|&i| {
            let group = &metadata.row_groups[i];
            match &read.columns {
                Some(columns) => columns
                    .iter()
                    .filter_map(|name| group.columns_under_root_iter(name))
                    .flatten()
                    .map(|chunk| chunk.byte_range())
                    .collect::<Vec<_>>(),
                None => group.byte_ranges_iter().collect(),
            }
        })
        .filter(|r| r.end <= size && r.start < r.end)
        .collect();
    // Where the metadata starts; `footer` has the magic number in front.
    let footer_start = size - footer.len() as u64 + 4;
    let tail = if every_group {
        footer[4..].to_vec()
    } else {
        footer_of_row_groups(&footer[4..footer.len() - 8], &kept)
            .map_err(|e| polars_err!(ComputeError: "{location}: its footer: {e}"))?
    };
    ranges = coalesce(ranges);
    let mut needed: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    if needed as f64 > MOST_OF_THE_FILE * size as f64 {
        // The rest of the object in one request: the footer is here already.
        ranges.clear();
        ranges.push(0..footer_start);
        needed = footer_start;
    }
    let fetched = parsed.read_ranges(&ranges).map_err(err)?;
    let length = footer_start as usize + tail.len();
    let mut bytes = memmap2::MmapMut::map_anon(length)
        .map_err(|e| polars_err!(ComputeError: "{location}: no room for its {size} bytes: {e}"))?;
    bytes[..4].copy_from_slice(b"PAR1");
    for (range, got) in ranges.iter().zip(&fetched) {
        if got.len() as u64 != range.end - range.start {
            return Err(polars_err!(ComputeError: "{location}: short read of bytes {range:?}"));
        }
        bytes[range.start as usize..range.end as usize].copy_from_slice(got);
    }
    bytes[footer_start as usize..].copy_from_slice(&tail);
    drop(fetched);
    tracing::debug!(
        location,
        size,
        fetched = needed,
        row_groups = metadata.row_groups.len(),
        kept = kept.len(),
        "ranged Parquet read"
    );
    let bytes = bytes
        .make_read_only()
        .map_err(|e| polars_err!(ComputeError: "{location}: {e}"))?;
    Ok(Some(Buffer::from_owner(bytes)))
}

/// A file's footer (metadata, its length, the magic number) that lists only
/// the row groups `kept` (sorted indices) of `metadata`, the Thrift-encoded
/// metadata of the file. Column chunks keep their offsets in the file.
fn footer_of_row_groups(
    metadata: &[u8],
    kept: &[usize],
) -> polars_parquet_format::thrift::Result<Vec<u8>> {
    let mut input = TCompactInputProtocol::new(metadata, metadata.len().saturating_mul(4));
    let mut file = polars_parquet_format::FileMetaData::read_from_in_protocol(&mut input)?;
    file.row_groups = std::mem::take(&mut file.row_groups)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| kept.binary_search(i).is_ok())
        .map(|(_, group)| group)
        .collect();
    file.num_rows = file.row_groups.iter().map(|g| g.num_rows).sum();
    let mut tail = Vec::with_capacity(metadata.len() + 8);
    file.write_to_out_protocol(&mut TCompactOutputProtocol::new(&mut tail))?;
    let length = u32::try_from(tail.len()).unwrap_or(u32::MAX);
    tail.extend_from_slice(&length.to_le_bytes());
    tail.extend_from_slice(b"PAR1");
    Ok(tail)
}

/// What a Parquet file's footer tells without reading the rest of the file:
/// a scan of no rows with its columns (and its hive columns), and the
/// uncompressed size of its row groups in bytes.
pub(super) fn footer_facts(
    location: &str,
    hive: &[(String, HiveValue)],
) -> PolarsResult<(LazyFrame, u64)> {
    let err = |e: crate::io::StoreError| polars_err!(ComputeError: "{e}");
    let parsed = Location::parse(location).map_err(err)?;
    let size = object_size(&parsed, location)?;
    let footer = read_footer(&parsed, location, size)?;
    let uncompressed = metadata(&footer)?
        .row_groups
        .iter()
        .map(|group| group.total_byte_size() as u64)
        .sum();
    let scan = plan::with_hive(plan::scan(footer, &plan::Format::Parquet)?, hive);
    Ok((scan, uncompressed))
}

/// The size of the object `parsed` names; an error if there is none.
fn object_size(parsed: &Location, location: &str) -> PolarsResult<u64> {
    parsed
        .size()
        .map_err(|e| polars_err!(ComputeError: "{e}"))?
        .ok_or_else(|| polars_err!(ComputeError: "{location}: no such file"))
}

/// The metadata in a footer [`read_footer`] read.
fn metadata(footer: &[u8]) -> PolarsResult<FileMetadataRef> {
    Ok(ParquetReader::new(std::io::Cursor::new(footer))
        .get_metadata()?
        .clone())
}

/// The object's footer (metadata, its length and the magic number), with the
/// magic number in front so that Polars reads it as a file of no rows' bytes.
fn read_footer(parsed: &Location, location: &str, size: u64) -> PolarsResult<Vec<u8>> {
    let err = |e: crate::io::StoreError| polars_err!(ComputeError: "{e}");
    let bad = || polars_err!(ComputeError: "{location}: not a Parquet file (its footer is missing or damaged)");
    let mut tail = parsed
        .read_range(size - TAIL_BYTES.min(size), size)
        .map_err(err)?;
    if tail.len() < 8 || &tail[tail.len() - 4..] != b"PAR1" {
        return Err(bad());
    }
    let length =
        u32::from_le_bytes(tail[tail.len() - 8..tail.len() - 4].try_into().unwrap()) as u64;
    let whole = length + 8;
    if whole > size.saturating_sub(4) {
        return Err(bad());
    }
    if whole > tail.len() as u64 {
        tail = parsed.read_range(size - whole, size).map_err(err)?;
    }
    let mut footer = b"PAR1".to_vec();
    footer.extend_from_slice(&tail[tail.len() - whole as usize..]);
    Ok(footer)
}

/// What `steps` (with side frames of `side_schemas`) read of files of
/// `file_schema`, by Polars' optimised plan of the steps over frames of no
/// rows: the columns its scan of the files projects, and the filter placed
/// right above that scan; `None` when they read every row of every column.
pub(super) fn read_set(
    file_schema: &SchemaRef,
    steps: &[Step],
    side_schemas: &[SchemaRef],
) -> PolarsResult<Option<ReadSet>> {
    let empty = |schema: &SchemaRef| DataFrame::empty_with_schema(schema).lazy();
    let sides: Vec<LazyFrame> = side_schemas.iter().map(empty).collect();
    let optimised = plan::apply(empty(file_schema), steps, &sides)?.to_alp_optimized()?;
    let arena = &optimised.lp_arena;
    // The files' rows (a side of the same columns, as in a self-join, only
    // adds its own columns). By names: the optimiser retypes the columns it
    // drops.
    let is_files = |node| {
        matches!(arena.get(node), IR::DataFrameScan { schema, .. }
            if schema.iter_names().eq(file_schema.iter_names()))
    };
    let mut stack = vec![optimised.lp_top];
    let mut columns = BTreeSet::new();
    let mut every_column = false;
    let mut scans = 0;
    let mut filter = None;
    while let Some(node) = stack.pop() {
        let ir = arena.get(node);
        match ir {
            IR::DataFrameScan { output_schema, .. } if is_files(node) => {
                scans += 1;
                match output_schema {
                    Some(projected) => {
                        columns.extend(projected.iter_names().map(|n| n.to_string()))
                    }
                    None => every_column = true,
                }
            }
            IR::Filter { input, predicate } if is_files(*input) => {
                filter = row_groups::from_predicate(
                    predicate.node(),
                    &optimised.expr_arena,
                    file_schema,
                );
            }
            _ => {}
        }
        ir.copy_inputs(&mut stack);
    }
    let columns = (!(every_column || columns.is_empty() || columns.len() >= file_schema.len()))
        .then(|| columns.into_iter().collect());
    // A filter on one of several scans of the files' rows does not hold for
    // the others.
    let filter = filter.filter(|_| scans == 1);
    if scans == 0 || (columns.is_none() && filter.is_none()) {
        return Ok(None);
    }
    Ok(Some(ReadSet { columns, filter }))
}

/// Sorted ranges with those less than [`COALESCE_GAP`] apart merged.
fn coalesce(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end + COALESCE_GAP => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::coalesce;
    use crate::collections::dataframe::plan::Step;
    use polars::prelude::*;

    #[test]
    fn the_read_set_is_the_columns_kept_and_the_filter_on_the_files() {
        use super::super::row_groups::{Bound, Comparison, StatsFilter};
        let schema: SchemaRef = Arc::new(
            (0..4)
                .map(|c| Field::new(format!("c{c}").into(), DataType::Float64))
                .collect(),
        );
        let c1_above_half = StatsFilter::Compare {
            column: "c1".into(),
            comparison: Comparison::Gt,
            value: Bound::Float(0.5),
        };
        let steps = [
            Step::Filter(col("c1").gt(lit(0.5))),
            Step::Select(vec![col("c0").sum()]),
        ];
        let read = super::read_set(&schema, &steps, &[]).unwrap().unwrap();
        assert_eq!(read.columns, Some(vec!["c0".to_string(), "c1".to_string()]));
        assert_eq!(read.filter, Some(c1_above_half.clone()));
        assert_eq!(super::read_set(&schema, &[], &[]).unwrap(), None);
        // Of an `&`, the parts statistics can judge; every column is read.
        let steps = [Step::Filter(
            col("c1")
                .gt(lit(0.5))
                .and((col("c0") * lit(2.0)).gt(lit(1.0))),
        )];
        let read = super::read_set(&schema, &steps, &[]).unwrap().unwrap();
        assert_eq!(read.columns, None);
        assert_eq!(read.filter, Some(StatsFilter::All(vec![c1_above_half])));
        // A filter on a column the steps replaced says nothing of the file's.
        let steps = [
            Step::WithColumns(vec![col("c1") * lit(2.0)]),
            Step::Filter(col("c1").gt(lit(0.5))),
        ];
        assert_eq!(super::read_set(&schema, &steps, &[]).unwrap(), None);
    }

    #[test]
    fn nearby_ranges_merge_and_far_ones_stay_apart() {
        let gap = super::COALESCE_GAP;
        let merged = coalesce(vec![
            10 * gap..11 * gap,
            0..10,
            20..30,
            11 * gap + 5..12 * gap,
        ]);
        assert_eq!(merged, vec![0..30, 10 * gap..12 * gap]);
    }
}

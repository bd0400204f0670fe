//! Ranged Parquet reads from object stores: when a frame's partitions are
//! built, Polars' optimiser works out which of the files' columns their query
//! reads; each partition then fetches its object's footer and only those
//! columns' chunks (nearby ranges coalesced, fetched concurrently), as Dask's
//! and Polars' own readers do. The bytes go into an anonymous mapping the size
//! of the object whose other pages are never written nor read, so they cost no
//! memory.
//!
//! Local files and small objects are read whole; an object whose query needs
//! most of its bytes is fetched whole in one more request.

use super::plan::{self, HiveValue, Step};
use crate::io::Location;
use polars::prelude::*;
use polars_buffer::Buffer;
use polars_plan::plans::IR;
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

/// The bytes of Parquet object `location` with only the chunks of `columns`
/// fetched (its other bytes never fetched nor touched); `None` when it should
/// be read whole instead (local, or small).
pub(super) fn fetch(location: &str, columns: &[String]) -> PolarsResult<Option<Buffer<u8>>> {
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
    let mut ranges: Vec<Range<u64>> = metadata
        .row_groups
        .iter()
        .flat_map(|group| {
            columns
                .iter()
                .filter_map(|name| group.columns_under_root_iter(name))
                .flatten()
                .map(|chunk| chunk.byte_range())
                .collect::<Vec<_>>()
        })
        .filter(|r| r.end <= size && r.start < r.end)
        .collect();
    let footer_start = size - footer.len() as u64 + 4;
    ranges = coalesce(ranges);
    let mut needed: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    if needed as f64 > MOST_OF_THE_FILE * size as f64 {
        // The rest of the object in one request: the footer is here already.
        ranges.clear();
        ranges.push(0..footer_start);
        needed = footer_start;
    }
    let fetched = parsed.read_ranges(&ranges).map_err(err)?;
    let mut bytes = memmap2::MmapMut::map_anon(size as usize)
        .map_err(|e| polars_err!(ComputeError: "{location}: no room for its {size} bytes: {e}"))?;
    bytes[..4].copy_from_slice(b"PAR1");
    for (range, got) in ranges.iter().zip(&fetched) {
        if got.len() as u64 != range.end - range.start {
            return Err(polars_err!(ComputeError: "{location}: short read of bytes {range:?}"));
        }
        bytes[range.start as usize..range.end as usize].copy_from_slice(got);
    }
    // The footer without the magic number `read_footer` put in front.
    bytes[footer_start as usize..].copy_from_slice(&footer[4..]);
    drop(fetched);
    tracing::debug!(location, size, fetched = needed, "ranged Parquet read");
    let bytes = bytes
        .make_read_only()
        .map_err(|e| polars_err!(ComputeError: "{location}: {e}"))?;
    Ok(Some(Buffer::from_owner(bytes)))
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

/// The columns of files of `file_schema` that `steps` (with side frames of
/// `side_schemas`) read, by Polars' optimised plan of the steps over frames
/// of no rows; `None` when they read every column.
pub(super) fn columns_read(
    file_schema: &SchemaRef,
    steps: &[Step],
    side_schemas: &[SchemaRef],
) -> PolarsResult<Option<Vec<String>>> {
    let empty = |schema: &SchemaRef| DataFrame::empty_with_schema(schema).lazy();
    let sides: Vec<LazyFrame> = side_schemas.iter().map(empty).collect();
    let optimised = plan::apply(empty(file_schema), steps, &sides)?.to_alp_optimized()?;
    let arena = &optimised.lp_arena;
    let mut stack = vec![optimised.lp_top];
    let mut columns = BTreeSet::new();
    let mut found = false;
    while let Some(node) = stack.pop() {
        let ir = arena.get(node);
        // The files' rows (a side of the same columns, as in a self-join,
        // only adds its own).
        if let IR::DataFrameScan {
            schema,
            output_schema,
            ..
        } = ir
        {
            // By names: the optimiser retypes the columns it drops.
            if schema.iter_names().eq(file_schema.iter_names()) {
                found = true;
                let Some(projected) = output_schema else {
                    return Ok(None);
                };
                columns.extend(projected.iter_names().map(|n| n.to_string()));
            }
        }
        ir.copy_inputs(&mut stack);
    }
    if !found || columns.is_empty() || columns.len() >= file_schema.len() {
        return Ok(None);
    }
    Ok(Some(columns.into_iter().collect()))
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
    fn the_columns_read_are_those_kept_and_filtered_on() {
        let schema: SchemaRef = Arc::new(
            (0..4)
                .map(|c| Field::new(format!("c{c}").into(), DataType::Float64))
                .collect(),
        );
        let steps = [
            Step::Filter(col("c1").gt(lit(0.5))),
            Step::Select(vec![col("c0").sum()]),
        ];
        let columns = super::columns_read(&schema, &steps, &[]).unwrap();
        assert_eq!(columns, Some(vec!["c0".to_string(), "c1".to_string()]));
        assert_eq!(super::columns_read(&schema, &[], &[]).unwrap(), None);
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

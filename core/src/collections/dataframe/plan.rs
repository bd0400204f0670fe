//! What a partition task does, as data: where its rows come from (a file to
//! scan, or an input partition) and the steps applied to them (Polars
//! expressions). Workers rebuild a Polars lazy query from it, so Polars pushes
//! projections and predicates into the Parquet, CSV and JSON readers.

use crate::io::Location;
use polars::prelude::*;
use polars_buffer::Buffer;
use serde::{Deserialize, Serialize};

/// One step of a partition's query, with Dask's names where they differ.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Step {
    /// Keeps the rows where the expression is true.
    Filter(Expr),
    /// These expressions become the columns.
    Select(Vec<Expr>),
    /// Adds or replaces columns.
    WithColumns(Vec<Expr>),
    /// Renames columns.
    Rename(Vec<String>, Vec<String>),
    /// Drops columns.
    Drop(Vec<String>),
    /// Drops rows with a null in any of these columns (all when `None`).
    DropNulls(Option<Vec<String>>),
    /// The first `n` rows.
    Head(usize),
    /// The last `n` rows.
    Tail(usize),
    /// One row per group of `keys`, with these aggregations.
    GroupBy(Vec<Expr>, Vec<Expr>),
    /// Sorted by these columns (descending where `true`), nulls last,
    /// stable.
    Sort(Vec<String>, Vec<bool>),
    /// The first row of each distinct value of these columns (all when
    /// `None`), in order of first appearance.
    Unique(Option<Vec<String>>),
    /// Rows `[h·part/of, h·(part+1)/of)` of a frame of `h` rows.
    Slice {
        /// Which piece.
        part: usize,
        /// Of how many.
        of: usize,
    },
    /// Joined with side frame `side` of the task (see [`Plan::sides`]).
    Join {
        /// Which side frame.
        side: usize,
        /// This frame's key columns.
        left_on: Vec<String>,
        /// The side frame's key columns.
        right_on: Vec<String>,
        /// Polars' join type.
        how: JoinType,
        /// Appended to the side frame's clashing column names.
        suffix: String,
    },
    /// These expressions over side frame `side`'s rows followed by this
    /// frame's, keeping this frame's rows (the rows before a partition that
    /// its rolling windows reach, Dask's `map_overlap`).
    Overlapped {
        /// Which side frame: the earlier rows, with this frame's columns.
        side: usize,
        /// The columns.
        exprs: Vec<Expr>,
    },
}

/// File formats a partition can be read from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Format {
    /// Parquet.
    Parquet,
    /// CSV with these options.
    Csv(CsvSpec),
    /// JSON lines.
    JsonLines,
}

/// How a CSV file is parsed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct CsvSpec {
    /// Whether the first line names the columns.
    pub(crate) has_header: bool,
    /// The field separator.
    pub(crate) separator: u8,
    /// Types that replace inferred ones, by column.
    pub(crate) dtypes: Vec<(String, DataType)>,
    /// Every column's type, inferred once from a sample of the first
    /// file (Dask's `meta`), so that every block parses to the same types;
    /// empty to infer per file.
    pub(crate) schema: Vec<(String, DataType)>,
    /// Only the lines that start in this byte range of the file: a block of
    /// a file split by `blocksize`.
    pub(crate) bytes: Option<(u64, u64)>,
}

impl Format {
    /// How errors name the part of `location` a partition reads.
    pub(crate) fn part_name(&self, location: &str) -> String {
        match self {
            Format::Csv(CsvSpec {
                bytes: Some((start, end)),
                ..
            }) => format!("{location} (the block of bytes {start}..{end})"),
            _ => location.to_string(),
        }
    }
}

/// Where a partition's rows start.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Origin {
    /// Files in one format, their rows stacked in order (one file, or several
    /// small Parquet files read together), and what the steps read of them
    /// when less than all (a Parquet object then fetches only that).
    Files(Vec<FileRef>, Format, Option<super::ranged::ReadSet>),
    /// The task's inputs, partitions stacked in order.
    Inputs,
}

/// A file a partition reads: its path or URL, and the hive-style partition
/// columns its path names (`year=2024/…`).
pub(crate) type FileRef = (String, Vec<(String, HiveValue)>);

/// A hive partition column's value for one file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum HiveValue {
    /// Every file's value for this key is an integer.
    Int(i64),
    /// Otherwise text.
    Text(String),
}

impl HiveValue {
    /// The value as a literal column.
    pub(crate) fn expr(&self, name: &str) -> Expr {
        match self {
            HiveValue::Int(v) => lit(*v).alias(name),
            HiveValue::Text(v) => lit(v.clone()).alias(name),
        }
    }
}

/// A partition task's whole query.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Plan {
    pub(crate) origin: Origin,
    pub(crate) steps: Vec<Step>,
    /// The task's last `sides` inputs are side frames for joins, not rows.
    pub(crate) sides: usize,
}

impl Plan {
    /// Polars' own encoding of the plan (its expressions serialize only that
    /// way), to travel as a task's parameters: MessagePack, the encoding
    /// Polars keeps for plans that travel.
    pub(crate) fn to_bytes(&self) -> PolarsResult<Vec<u8>> {
        polars::polars_utils::pl_serialize::serialize_to_bytes::<_, true>(self)
    }

    /// The plan back from [`Plan::to_bytes`]. Its reader refuses nesting
    /// deeper than 1,024 levels (a few hundred nested expressions), so that
    /// a plan from a peer cannot overflow a task thread's stack, here or
    /// when the plan is dropped.
    pub(crate) fn from_bytes(bytes: &[u8]) -> PolarsResult<Plan> {
        polars::polars_utils::pl_serialize::deserialize_from_reader::<_, _, true>(bytes)
    }
}

/// A file's rows as a lazy scan of its bytes.
pub(crate) fn scan(bytes: Vec<u8>, format: &Format) -> PolarsResult<LazyFrame> {
    scan_buffer(Buffer::from(bytes), format)
}

/// A file's rows as a lazy scan of a buffer holding its bytes.
pub(crate) fn scan_buffer(bytes: Buffer<u8>, format: &Format) -> PolarsResult<LazyFrame> {
    scan_buffers(vec![bytes], format)
}

/// The rows of files, in order, as one lazy scan of buffers holding their bytes.
pub(crate) fn scan_buffers(buffers: Vec<Buffer<u8>>, format: &Format) -> PolarsResult<LazyFrame> {
    let sources = ScanSources::Buffers(buffers.into());
    match format {
        Format::Parquet => LazyFrame::scan_parquet_sources(
            sources,
            ScanArgsParquet {
                // Hive columns come from rask's own listing (below).
                hive_options: HiveOptions::new_disabled(),
                ..Default::default()
            },
        ),
        Format::Csv(spec) => scan_csv(sources, spec, spec.has_header),
        Format::JsonLines => LazyJsonLineReader::new_with_sources(sources).finish(),
    }
}

/// A schema from names and types.
fn schema_of(columns: &[(String, DataType)]) -> Schema {
    columns
        .iter()
        .map(|(name, dtype)| Field::new(name.as_str().into(), dtype.clone()))
        .collect()
}

/// CSV rows; `header` says whether these bytes start with the header line.
fn scan_csv(sources: ScanSources, spec: &CsvSpec, header: bool) -> PolarsResult<LazyFrame> {
    csv_reader(sources, spec, header).finish()
}

fn csv_reader(sources: ScanSources, spec: &CsvSpec, header: bool) -> LazyCsvReader {
    let reader = LazyCsvReader::new_with_sources(sources)
        .with_has_header(header)
        .with_separator(spec.separator);
    if spec.schema.is_empty() {
        reader
            .with_dtype_overwrite((!spec.dtypes.is_empty()).then(|| schema_of(&spec.dtypes).into()))
    } else {
        reader.with_schema(Some(schema_of(&spec.schema).into()))
    }
}

/// Every column's type, inferred from all the lines that start in the first
/// `sample` bytes of a CSV file (Dask's `sample`), with `spec`'s overrides.
pub(crate) fn infer_csv_schema(
    location: &Location,
    spec: &CsvSpec,
    sample: u64,
) -> PolarsResult<Vec<(String, DataType)>> {
    let lines = crate::io::line_blocks::read(location, 0, sample)
        .map_err(|e| polars_err!(ComputeError: "{e}"))?;
    let sources = ScanSources::Buffers(vec![Buffer::from(lines)].into());
    let schema = csv_reader(sources, spec, spec.has_header)
        .with_infer_schema_length(None)
        .finish()?
        .collect_schema()?;
    Ok(schema
        .iter()
        .map(|(name, dtype)| (name.to_string(), dtype.clone()))
        .collect())
}

/// A Polars error while reading `location`, naming it once.
pub(crate) fn in_file(location: &str, e: PolarsError) -> String {
    let message = e.to_string();
    if message.contains(location) {
        message
    } else {
        format!("{location}: {message}")
    }
}

/// Reads a file (path or URL) into a lazy scan with its hive columns added;
/// errors name it.
pub(crate) fn scan_file(
    location: &str,
    format: &Format,
    hive: &[(String, HiveValue)],
) -> PolarsResult<LazyFrame> {
    Ok(with_hive(scan_location(location, format)?, hive))
}

/// `frame` with a file's hive partition columns added.
pub(crate) fn with_hive(frame: LazyFrame, hive: &[(String, HiveValue)]) -> LazyFrame {
    if hive.is_empty() {
        return frame;
    }
    frame.with_columns(
        hive.iter()
            .map(|(name, value)| value.expr(name))
            .collect::<Vec<_>>(),
    )
}

/// Reads a file (path or URL) into a lazy scan; errors name it.
pub(crate) fn scan_location(location: &str, format: &Format) -> PolarsResult<LazyFrame> {
    let parsed = Location::parse(location).map_err(|e| polars_err!(ComputeError: "{e}"))?;
    if let Format::Csv(
        spec @ CsvSpec {
            bytes: Some((start, end)),
            ..
        },
    ) = format
    {
        let block = crate::io::line_blocks::read(&parsed, *start, *end)
            .map_err(|e| polars_err!(ComputeError: "{e}"))?;
        let header = spec.has_header && *start == 0;
        if block.is_empty() && !spec.schema.is_empty() {
            // No line starts in this block.
            return Ok(DataFrame::empty_with_schema(&schema_of(&spec.schema)).lazy());
        }
        let sources = ScanSources::Buffers(vec![Buffer::from(block)].into());
        return scan_csv(sources, spec, header);
    }
    scan_buffer(read_bytes(location)?, format)
}

/// The bytes of a file (path or URL). A local file is mapped, not read:
/// its pages are read from disk when a reader touches them, so a query
/// reads only the columns and row groups it decodes (as Polars' own local
/// scans do), and they count as page cache, not as the worker's memory.
pub(crate) fn read_bytes(location: &str) -> PolarsResult<Buffer<u8>> {
    let parsed = Location::parse(location).map_err(|e| polars_err!(ComputeError: "{e}"))?;
    if let Some(path) = parsed.as_path() {
        return map_file(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => polars_err!(ComputeError: "{location}: no such file"),
            _ => polars_err!(ComputeError: "{location}: {e}"),
        });
    }
    let bytes = parsed
        .read()
        .map_err(|e| polars_err!(ComputeError: "{e}"))?
        .ok_or_else(|| polars_err!(ComputeError: "{location}: no such file"))?;
    Ok(Buffer::from(bytes))
}

/// A local file's bytes, mapped read-only.
fn map_file(path: &std::path::Path) -> std::io::Result<Buffer<u8>> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() == 0 {
        // No mapping has no bytes.
        return Ok(Buffer::from(Vec::new()));
    }
    // SAFETY: the mapping is only read. A file truncated by another process
    // while it is mapped faults its reader, as Polars' own mapped scans do.
    let mapped = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Buffer::from_owner(mapped))
}

/// Runs `steps` on `frame`, reading `sides`. A `DropNulls` of a grouping's
/// keys right after it runs on the grouped (small) result: in the query,
/// Polars' optimiser would push it below the grouping, into a filter over
/// every row read.
pub(crate) fn run(
    frame: LazyFrame,
    steps: &[Step],
    sides: &[LazyFrame],
) -> PolarsResult<DataFrame> {
    if let Some(result) = super::hash_join::run(&frame, steps, sides)? {
        return Ok(result);
    }
    if let Some(result) = super::hash_groupby::run(&frame, steps, sides)? {
        return Ok(result);
    }
    let (query, after) = match steps {
        [.., Step::GroupBy(..), Step::DropNulls(subset)] => {
            (&steps[..steps.len() - 1], Some(subset.as_deref()))
        }
        _ => (steps, None),
    };
    let result = collect(apply(frame, query, sides)?, query)?;
    match after {
        Some(subset) => result.drop_nulls(subset),
        None => Ok(result),
    }
}

/// Runs a partition's query made of `steps`. Aggregations (groupbys,
/// uniques) run on Polars' streaming engine, about twice as fast as the
/// in-memory engine on a million-row partition; the rest in memory, where
/// joins and sorts took less time and memory in the benchmarks and the
/// memory test.
pub(super) fn collect(frame: LazyFrame, steps: &[Step]) -> PolarsResult<DataFrame> {
    let aggregates = steps
        .iter()
        .any(|s| matches!(s, Step::GroupBy(..) | Step::Unique(..)));
    if !aggregates {
        return frame.collect();
    }
    // A query without several sinks gives one frame (as Polars' own `collect`).
    frame
        .collect_with_engine(Engine::Streaming)
        .map(|result| result.unwrap_single())
}

/// `frame` with `steps` applied, still lazy; joins read `sides`.
pub(crate) fn apply(
    mut frame: LazyFrame,
    steps: &[Step],
    sides: &[LazyFrame],
) -> PolarsResult<LazyFrame> {
    for step in steps {
        frame = match step.clone() {
            Step::Filter(predicate) => frame.filter(predicate),
            Step::Select(exprs) => frame.select(exprs),
            Step::WithColumns(exprs) => frame.with_columns(exprs),
            Step::Rename(from, to) => frame.rename(from, to, true),
            Step::Drop(names) => frame.drop(Selector::ByName {
                names: names.into_iter().map(Into::into).collect(),
                strict: true,
            }),
            Step::DropNulls(subset) => frame.drop_nulls(subset.map(|names| Selector::ByName {
                names: names.into_iter().map(Into::into).collect(),
                strict: true,
            })),
            Step::Head(n) => frame.limit(n as IdxSize),
            Step::Tail(n) => frame.tail(n as IdxSize),
            Step::GroupBy(keys, aggs) => frame.group_by(keys).agg(aggs),
            Step::Sort(by, descending) => frame.sort(
                by,
                SortMultipleOptions::default()
                    .with_order_descending_multi(descending)
                    .with_nulls_last(true)
                    .with_maintain_order(true),
            ),
            Step::Unique(subset) => frame.unique_stable(
                subset.map(|names| Selector::ByName {
                    names: names.into_iter().map(Into::into).collect(),
                    strict: true,
                }),
                UniqueKeepStrategy::First,
            ),
            Step::Slice { part, of } => {
                let (part, of) = (part as i64, of.max(1) as i64);
                let height = len().cast(DataType::Int64);
                let row = col("__rask_row").cast(DataType::Int64);
                frame
                    .with_row_index("__rask_row", None)
                    .filter(
                        row.clone()
                            .gt_eq(height.clone() * lit(part) / lit(of))
                            .and(row.lt(height * lit(part + 1) / lit(of))),
                    )
                    .drop(Selector::ByName {
                        names: ["__rask_row".into()].into(),
                        strict: true,
                    })
            }
            Step::Join {
                side,
                left_on,
                right_on,
                how,
                suffix,
            } => {
                let other = sides.get(side).ok_or_else(
                    || polars_err!(ComputeError: "join: side frame {side} is missing"),
                )?;
                // Rows keep the order of the partition's rows (then the side's),
                // as pandas' merge does, whichever engine runs the join.
                let mut args = JoinArgs::new(how.clone()).with_suffix(Some(suffix.into()));
                args.maintain_order = match how {
                    JoinType::Right => MaintainOrderJoin::Right,
                    JoinType::Full => MaintainOrderJoin::LeftRight,
                    _ => MaintainOrderJoin::Left,
                };
                frame.join(
                    other.clone(),
                    left_on.iter().map(|c| col(c.as_str())).collect::<Vec<_>>(),
                    right_on.iter().map(|c| col(c.as_str())).collect::<Vec<_>>(),
                    args,
                )
            }
            Step::Overlapped { side, mut exprs } => {
                let before = sides.get(side).ok_or_else(
                    || polars_err!(ComputeError: "overlap: side frame {side} is missing"),
                )?;
                const EARLIER: &str = "__rask_earlier";
                let stacked = concat(
                    [
                        before.clone().with_column(lit(true).alias(EARLIER)),
                        frame.with_column(lit(false).alias(EARLIER)),
                    ],
                    UnionArgs::default(),
                )?;
                exprs.push(col(EARLIER));
                stacked
                    .select(exprs)
                    .filter(col(EARLIER).not())
                    .drop(Selector::ByName {
                        names: [EARLIER.into()].into(),
                        strict: true,
                    })
            }
        };
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan whose filter is `depth` negations deep, and whose column is
    /// the sum of `depth` columns (`((c0 + c1) + c2) + …`).
    fn nested(depth: usize) -> Plan {
        let mut predicate = col("x").gt(lit(0));
        let mut sum = col("c0");
        for i in 1..depth {
            predicate = predicate.not();
            sum = sum + col(format!("c{i}").as_str());
        }
        Plan {
            origin: Origin::Inputs,
            steps: vec![Step::Filter(predicate), Step::WithColumns(vec![sum])],
            sides: 0,
        }
    }

    /// `f` on a thread with `stack` bytes of stack.
    fn on_stack<T: Send + 'static>(stack: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(stack)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn a_plan_nested_too_deep_is_an_error_not_a_stack_overflow() {
        // Written on a big stack, as a hostile peer could; read on a task
        // thread's ordinary 2 MiB.
        let (shallow, deep) = on_stack(1 << 30, || {
            let bytes = |depth| nested(depth).to_bytes().unwrap();
            (bytes(500), bytes(200_000))
        });
        on_stack(2 << 20, move || {
            let plan = Plan::from_bytes(&shallow).expect("500 levels are read");
            assert!(matches!(
                plan.steps.as_slice(),
                [Step::Filter(_), Step::WithColumns(_)]
            ));
            // The plan, and the expression in it, dropped on this stack too.
            drop(plan);
            let error = Plan::from_bytes(&deep).expect_err("200,000 levels are refused");
            assert!(error.to_string().contains("depth"), "{error}");
        });
    }

    /// The share of `path`'s pages in the page cache.
    fn cached_share(path: &std::path::Path) -> f64 {
        let file = std::fs::File::open(path).unwrap();
        // SAFETY: a file of this test, only read.
        let mapped = unsafe { memmap2::Mmap::map(&file).unwrap() };
        // SAFETY: a query of a constant.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let mut resident = vec![0u8; mapped.len().div_ceil(page)];
        // SAFETY: a live mapping of `mapped.len()` bytes, one byte per page out.
        let status = unsafe {
            libc::mincore(
                mapped.as_ptr() as *mut libc::c_void,
                mapped.len(),
                resident.as_mut_ptr(),
            )
        };
        assert_eq!(status, 0, "{}", std::io::Error::last_os_error());
        resident.iter().filter(|&&r| r & 1 == 1).count() as f64 / resident.len() as f64
    }

    #[test]
    fn a_local_parquet_file_is_read_only_where_the_query_reads() {
        // Eight columns of 8 MB, uncompressed; the query reads one.
        let dir = std::env::temp_dir().join(format!("rask-mapped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wide.parquet");
        let rows = 1_000_000;
        let columns: Vec<Column> = (0..8)
            .map(|c| Column::new(format!("c{c}").into(), vec![c as f64; rows]))
            .collect();
        let mut frame = DataFrame::new(rows, columns).unwrap();
        let mut file = std::fs::File::create(&path).unwrap();
        ParquetWriter::new(&mut file)
            .with_compression(ParquetCompression::Uncompressed)
            .finish(&mut frame)
            .unwrap();
        file.sync_all().unwrap();
        // Out of the page cache, so that what the query reads comes back in.
        // SAFETY: an open descriptor; advice only.
        let advice = unsafe {
            use std::os::fd::AsRawFd;
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED)
        };
        assert_eq!(advice, 0);
        drop(file);
        let before = cached_share(&path);
        let location = path.display().to_string();
        let sum = scan_buffer(read_bytes(&location).unwrap(), &Format::Parquet)
            .unwrap()
            .select([col("c3").sum()])
            .collect()
            .unwrap();
        assert_eq!(
            sum.column("c3").unwrap().f64().unwrap().get(0),
            Some(3.0 * rows as f64)
        );
        let after = cached_share(&path);
        assert!(
            before < 0.05 && after < 0.3,
            "{:.0}% of the file cached before the read, {:.0}% after",
            before * 100.0,
            after * 100.0
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

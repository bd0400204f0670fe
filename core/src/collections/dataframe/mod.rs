//! Chunked dataframes (Dask's `dask.dataframe`): a lazy frame of partitions,
//! each a Polars frame. Tasks carry Polars expressions as data (never code), so
//! stock `rask worker` processes run every operation.
//!
//! ```no_run
//! use rask::dataframe::{col, lit, read_parquet, Agg};
//! use rask::prelude::*;
//!
//! let client = Client::local(LocalCluster::new().workers(2))?;
//! let trips = read_parquet("s3://bucket/trips/*.parquet")?;
//! let busy = trips.filter(col("passengers").gt(lit(2)))?;
//! let fares = busy.groupby(&["vendor"]).agg(&[("fare", Agg::Mean)])?;
//! println!("{}", fares.compute(&client)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod describe;
mod groupby;
mod hash_groupby;
mod hash_join;
mod index;
mod interval;
mod io;
mod join;
mod kernels;
mod map;
mod partition;
mod plan;
mod ranged;
mod reductions;
mod repartition;
mod resample;
mod rolling;
mod row_groups;
mod shuffle;
mod split_out;
mod summary;
mod to_array;

pub use groupby::{Agg, GroupBy};
pub use index::IndexValue;
pub use io::{read_csv, read_json, read_parquet, read_parquet_with, CsvOptions, ParquetOptions};
pub use join::How;
pub use partition::Partition;
pub use polars;
pub use polars::prelude::{col, lit, DataType, Expr};
pub use resample::Resample;
pub use rolling::{Rolling, Window};
pub use split_out::{GroupEstimate, DEFAULT_PARTITION_BYTES};
pub use summary::to_html;

use crate::client::lazy::Node;
use crate::client::{Client, Error};
use crate::collections::delayed::Delayed;
use plan::{Format, Origin, Plan, Step};
use polars::prelude::{IntoLazy, PolarsError, SchemaRef};
use std::sync::Arc;

/// What can go wrong building or computing a dataframe.
#[derive(Debug, thiserror::Error)]
pub enum DataFrameError {
    /// Polars refused an operation (a missing column, a type mismatch); the
    /// message names it.
    #[error("{0}")]
    Polars(String),
    /// An operation this dataframe cannot do yet; the message says why.
    #[error("{0}")]
    Unsupported(String),
    /// An argument out of range; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// Reading or listing files.
    #[error(transparent)]
    Store(#[from] crate::io::StoreError),
    /// Computing failed on the cluster.
    #[error(transparent)]
    Compute(#[from] Error),
}

impl From<PolarsError> for DataFrameError {
    fn from(e: PolarsError) -> Self {
        DataFrameError::Polars(e.to_string())
    }
}

/// Where a partition's rows start, on the client side.
#[derive(Clone)]
enum Source {
    /// Files in one format, read by the partition's own task: one, or
    /// several small Parquet files read together.
    Files(Vec<plan::FileRef>, Format),
    /// Another task's partition.
    Node(Arc<Node>),
}

impl Source {
    /// Whether it reads a Parquet file in an object store (read by ranges).
    fn is_parquet_object(&self) -> bool {
        matches!(self, Source::Files(files, Format::Parquet)
            if files.iter().any(|(location, _)| !location_is_local(location)))
    }
}

/// Whether a path or URL names a local file.
fn location_is_local(location: &str) -> bool {
    crate::io::Location::parse(location).is_ok_and(|l| l.is_local())
}

/// A lazy dataframe of Polars partitions.
#[derive(Clone)]
pub struct DataFrame {
    name: Arc<str>,
    schema: SchemaRef,
    sources: Arc<[Source]>,
    /// Applied to every partition by one task each, after its source.
    steps: Arc<Vec<Step>>,
    /// Frames every partition's task also takes, for broadcast joins.
    sides: Arc<[Side]>,
    partitions: Arc<[Arc<Node>]>,
    /// The columns (hive columns included) of the files its partitions read,
    /// when they read files.
    file_schema: Option<SchemaRef>,
    /// The column it is sorted and partitioned by, after `set_index`.
    index: Option<Arc<index::Index>>,
}

/// A frame every partition's task takes whole (the small side of a join).
#[derive(Clone)]
struct Side {
    node: Arc<Node>,
    schema: SchemaRef,
}

impl DataFrame {
    fn build(
        prefix: &str,
        schema: SchemaRef,
        sources: Arc<[Source]>,
        steps: Vec<Step>,
        sides: Arc<[Side]>,
        file_schema: Option<SchemaRef>,
    ) -> Result<DataFrame, DataFrameError> {
        let name: Arc<str> = Arc::from(format!("{prefix}-{}", crate::graph::fresh_token()));
        let side_schemas: Vec<SchemaRef> = sides.iter().map(|s| s.schema.clone()).collect();
        // Worked out once for every file: the columns and row groups a ranged
        // read fetches (all, if the optimiser cannot say).
        let read = match &file_schema {
            Some(files) if sources.iter().any(Source::is_parquet_object) => {
                ranged::read_set(files, &steps, &side_schemas).unwrap_or_else(|e| {
                    tracing::debug!(error = %e, "no column set for ranged reads");
                    None
                })
            }
            _ => None,
        };
        let partitions = sources
            .iter()
            .enumerate()
            .map(|(i, source)| {
                let key = crate::graph::Key::new(&*name).indexed(&[i]);
                let (origin, mut inputs) = match source {
                    Source::Files(files, format) => (
                        Origin::Files(files.clone(), format.clone(), read.clone()),
                        vec![],
                    ),
                    Source::Node(node) => (Origin::Inputs, vec![node.clone()]),
                };
                inputs.extend(sides.iter().map(|side| side.node.clone()));
                let plan = Plan {
                    origin,
                    steps: steps.clone(),
                    sides: sides.len(),
                };
                kernels::run_plan(key, &plan, inputs)
            })
            .collect::<Result<_, DataFrameError>>()?;
        Ok(DataFrame {
            name,
            schema,
            sources,
            steps: Arc::new(steps),
            sides,
            partitions,
            file_schema,
            index: None,
        })
    }

    /// A dataframe of the partitions `nodes` compute, with this schema.
    fn from_nodes(
        prefix: &str,
        schema: SchemaRef,
        nodes: Vec<Arc<Node>>,
    ) -> Result<DataFrame, DataFrameError> {
        let sources: Arc<[Source]> = nodes.iter().cloned().map(Source::Node).collect();
        // No steps: the nodes are the partitions themselves.
        let name: Arc<str> = Arc::from(format!("{prefix}-{}", crate::graph::fresh_token()));
        Ok(DataFrame {
            name,
            schema,
            sources,
            steps: Arc::new(Vec::new()),
            sides: Arc::new([]),
            partitions: nodes.into(),
            file_schema: None,
            index: None,
        })
    }

    /// Splits an in-memory Polars frame into `npartitions` partitions of
    /// consecutive rows (Dask's `from_pandas`).
    pub fn from_polars(
        frame: polars::prelude::DataFrame,
        npartitions: usize,
    ) -> Result<DataFrame, DataFrameError> {
        let parts = npartitions.max(1);
        let rows = frame.height();
        let schema = frame.schema().clone();
        let nodes = (0..parts)
            .map(|i| {
                let (start, end) = (rows * i / parts, rows * (i + 1) / parts);
                let slice = frame.slice(start as i64, end - start);
                kernels::literal(slice)
            })
            .collect::<Result<Vec<_>, _>>()?;
        DataFrame::from_nodes("from-polars", schema, nodes)
    }

    /// The same partitions with one more step; checks it against the schema
    /// (a missing column is an error here, naming it).
    fn then(&self, prefix: &str, step: Step) -> Result<DataFrame, DataFrameError> {
        self.then_with(prefix, step, None)
    }

    /// [`DataFrame::then`] with one more side frame for the step to join.
    fn then_with(
        &self,
        prefix: &str,
        step: Step,
        side: Option<Side>,
    ) -> Result<DataFrame, DataFrameError> {
        let mut sides = self.sides.to_vec();
        sides.extend(side);
        let mut steps = (*self.steps).clone();
        steps.push(step);
        let side_schemas: Vec<SchemaRef> = sides.iter().map(|s| s.schema.clone()).collect();
        // The new step, checked against the schema so far.
        let schema = schema_after(&self.schema, &steps[self.steps.len()..], &side_schemas)?;
        let index = self
            .index
            .as_ref()
            .and_then(|index| index.after(&steps[steps.len() - 1]));
        let mut frame = DataFrame::build(
            prefix,
            schema,
            self.sources.clone(),
            steps,
            sides.into(),
            self.file_schema.clone(),
        )?;
        frame.index = index;
        Ok(frame)
    }

    /// The name its partitions' keys start with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Column names and types.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Column names.
    pub fn columns(&self) -> Vec<String> {
        self.schema.iter_names().map(|n| n.to_string()).collect()
    }

    /// Number of partitions.
    pub fn npartitions(&self) -> usize {
        self.partitions.len()
    }

    /// Tasks in the graph (one per partition, plus those of its inputs,
    /// each counted once).
    pub fn ntasks(&self) -> usize {
        crate::collections::kernel::count_tasks(&self.partitions)
    }

    /// Only these columns, in this order (Dask's `df[["a", "b"]]`).
    pub fn select_columns(&self, names: &[&str]) -> Result<DataFrame, DataFrameError> {
        self.select(names.iter().map(|n| col(*n)).collect())
    }

    /// The columns these expressions make (Polars' `select`).
    pub fn select(&self, exprs: Vec<Expr>) -> Result<DataFrame, DataFrameError> {
        self.then("select", Step::Select(exprs))
    }

    /// Rows where `predicate` holds (Dask's `df[df.x > 0]`).
    pub fn filter(&self, predicate: Expr) -> Result<DataFrame, DataFrameError> {
        self.then("filter", Step::Filter(predicate))
    }

    /// Adds or replaces the column `expr` names (Polars' `with_column`).
    pub fn with_column(&self, expr: Expr) -> Result<DataFrame, DataFrameError> {
        self.with_columns(vec![expr])
    }

    /// Adds or replaces several columns.
    pub fn with_columns(&self, exprs: Vec<Expr>) -> Result<DataFrame, DataFrameError> {
        self.then("with-columns", Step::WithColumns(exprs))
    }

    /// Dask's `assign(name=expr)`.
    pub fn assign(&self, name: &str, expr: Expr) -> Result<DataFrame, DataFrameError> {
        self.with_column(expr.alias(name))
    }

    /// Casts columns (Dask's `astype({"a": "float64"})`).
    pub fn astype(&self, types: &[(&str, DataType)]) -> Result<DataFrame, DataFrameError> {
        let exprs = types
            .iter()
            .map(|(name, dtype)| col(*name).strict_cast(dtype.clone()))
            .collect();
        self.then("astype", Step::WithColumns(exprs))
    }

    /// Renames columns (`[(old, new)]`).
    pub fn rename(&self, names: &[(&str, &str)]) -> Result<DataFrame, DataFrameError> {
        let (from, to) = names
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unzip();
        self.then("rename", Step::Rename(from, to))
    }

    /// Drops columns.
    pub fn drop(&self, names: &[&str]) -> Result<DataFrame, DataFrameError> {
        let names = names.iter().map(|n| n.to_string()).collect();
        self.then("drop", Step::Drop(names))
    }

    /// Drops rows with a null in `subset` (any column when `None`).
    pub fn dropna(&self, subset: Option<&[&str]>) -> Result<DataFrame, DataFrameError> {
        let subset = subset.map(|s| s.iter().map(|n| n.to_string()).collect());
        self.then("dropna", Step::DropNulls(subset))
    }

    /// Replaces nulls in every column with `value` where the types allow.
    pub fn fillna(&self, value: Expr) -> Result<DataFrame, DataFrameError> {
        let exprs = self
            .columns()
            .iter()
            .map(|name| col(name.as_str()).fill_null(value.clone()))
            .collect();
        self.then("fillna", Step::WithColumns(exprs))
    }

    /// Groups rows by these key columns for [`GroupBy::agg`].
    pub fn groupby(&self, keys: &[&str]) -> GroupBy {
        GroupBy::new(self.clone(), keys)
    }

    /// A picture of the graph computing every chunk: DOT, or SVG for small
    /// graphs (Dask's `visualize`).
    pub fn visualize(&self) -> crate::diagnostics::Visualization {
        crate::diagnostics::Visualization::new(crate::collections::delayed::graph_of(
            &self.to_delayed(),
        ))
    }

    /// One delayed partition per partition (Dask's `to_delayed`).
    pub fn to_delayed(&self) -> Vec<Delayed<Partition>> {
        self.partitions
            .iter()
            .map(|node| Delayed::from_arc(node.clone()))
            .collect()
    }

    /// A dataframe of delayed partitions that share `schema` (Dask's
    /// `from_delayed` with `meta`).
    pub fn from_delayed(
        parts: &[Delayed<Partition>],
        schema: SchemaRef,
    ) -> Result<DataFrame, DataFrameError> {
        let nodes = parts.iter().map(|d| d.node().clone()).collect();
        DataFrame::from_nodes("from-delayed", schema, nodes)
    }

    /// Starts computing every partition, to be kept on the cluster (Dask's
    /// `persist`); later work on the result uses them.
    pub fn persist(&self, client: &Client) -> Result<DataFrame, DataFrameError> {
        let futures = client.compute_many(&self.to_delayed())?;
        let nodes = futures
            .into_iter()
            .map(|f| Delayed::from_future(f).node().clone())
            .collect();
        let mut persisted = DataFrame::from_nodes("persisted", self.schema.clone(), nodes)?;
        persisted.index = self.index.clone();
        Ok(persisted)
    }

    /// The partitions, computed, in order.
    pub fn compute_partitions(
        &self,
        client: &Client,
    ) -> Result<Vec<polars::prelude::DataFrame>, DataFrameError> {
        let futures = client.compute_many(&self.to_delayed())?;
        futures.iter().map(|f| Ok(f.shared()?.0.clone())).collect()
    }

    /// The whole dataframe as one Polars frame in this process.
    pub fn compute(&self, client: &Client) -> Result<polars::prelude::DataFrame, DataFrameError> {
        let parts = self.compute_partitions(client)?;
        concat(parts, &self.schema)
    }

    /// Number of rows (Dask's `len(df)`); only counts travel.
    pub fn len(&self, client: &Client) -> Result<usize, DataFrameError> {
        let counted = self.select(vec![polars::prelude::len().alias("len")])?;
        let parts = counted.compute_partitions(client)?;
        parts.iter().try_fold(0usize, |total, part| {
            let n = part.column("len")?.u32()?.get(0).unwrap_or(0);
            Ok(total + n as usize)
        })
    }

    /// Whether there are no rows.
    pub fn is_empty(&self, client: &Client) -> Result<bool, DataFrameError> {
        Ok(self.len(client)? == 0)
    }

    /// The first `n` rows, computing partitions in order only until there
    /// are enough (Dask's `head`, which reads the first partition).
    pub fn head(
        &self,
        n: usize,
        client: &Client,
    ) -> Result<polars::prelude::DataFrame, DataFrameError> {
        let parts = self.rows_from_one_end(n, Step::Head(n), client)?;
        Ok(concat(parts, &self.schema)?.head(Some(n)))
    }

    /// The last `n` rows, computing partitions from the end.
    pub fn tail(
        &self,
        n: usize,
        client: &Client,
    ) -> Result<polars::prelude::DataFrame, DataFrameError> {
        let mut parts = self.rows_from_one_end(n, Step::Tail(n), client)?;
        parts.reverse();
        Ok(concat(parts, &self.schema)?.tail(Some(n)))
    }

    /// Partitions limited by `step` (a head or a tail), computed one at a
    /// time from the end it names until they hold `n` rows.
    fn rows_from_one_end(
        &self,
        n: usize,
        step: Step,
        client: &Client,
    ) -> Result<Vec<polars::prelude::DataFrame>, DataFrameError> {
        let from_end = matches!(step, Step::Tail(_));
        let limited = self.then("head-or-tail", step)?;
        let mut order: Vec<&Arc<Node>> = limited.partitions.iter().collect();
        if from_end {
            order.reverse();
        }
        let (mut parts, mut rows) = (Vec::new(), 0);
        for node in order {
            if rows >= n {
                break;
            }
            let future = client.compute(&Delayed::<Partition>::from_arc(node.clone()))?;
            let part = future.shared()?.0.clone();
            rows += part.height();
            parts.push(part);
        }
        Ok(parts)
    }

    /// Writes one Parquet file per partition, `part.{i}.parquet` in `dir`
    /// (a path or URL), each by its own task.
    pub fn to_parquet(&self, dir: &str, client: &Client) -> Result<(), DataFrameError> {
        self.write(dir, io::WriteFormat::Parquet, client)
    }

    /// Writes one CSV file per partition, `part.{i}.csv` in `dir`.
    pub fn to_csv(&self, dir: &str, client: &Client) -> Result<(), DataFrameError> {
        self.write(dir, io::WriteFormat::Csv, client)
    }

    /// Writes one JSON-lines file per partition, `part.{i}.json` in `dir`.
    pub fn to_json(&self, dir: &str, client: &Client) -> Result<(), DataFrameError> {
        self.write(dir, io::WriteFormat::JsonLines, client)
    }

    fn write(
        &self,
        dir: &str,
        format: io::WriteFormat,
        client: &Client,
    ) -> Result<(), DataFrameError> {
        let base = crate::io::Location::parse(dir)?;
        let token = crate::graph::fresh_token();
        let tasks: Vec<Delayed<u64>> = self
            .partitions
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let target = base.join(&format!("part.{i}.{}", format.extension()));
                let key = crate::graph::Key::new(format!("to-{}-{token}", format.extension()))
                    .indexed(&[i]);
                Delayed::from_arc(kernels::write(
                    key,
                    &target.to_string(),
                    format,
                    node.clone(),
                ))
            })
            .collect();
        for future in client.compute_many(&tasks)? {
            future.shared()?;
        }
        Ok(())
    }
}

/// The schema after `steps`, checked by Polars on empty frames.
fn schema_after(
    schema: &SchemaRef,
    steps: &[Step],
    sides: &[SchemaRef],
) -> Result<SchemaRef, DataFrameError> {
    let empty = |schema: &SchemaRef| polars::prelude::DataFrame::empty_with_schema(schema).lazy();
    let sides: Vec<_> = sides.iter().map(empty).collect();
    let mut lazy = plan::apply(empty(schema), steps, &sides)?;
    Ok(lazy.collect_schema()?)
}

/// Partitions stacked into one frame (an empty one of `schema` when none).
fn concat(
    parts: Vec<polars::prelude::DataFrame>,
    schema: &SchemaRef,
) -> Result<polars::prelude::DataFrame, DataFrameError> {
    let mut iter = parts.into_iter();
    let Some(mut out) = iter.next() else {
        return Ok(polars::prelude::DataFrame::empty_with_schema(schema));
    };
    for part in iter {
        out.vstack_mut(&part)?;
    }
    out.rechunk_mut_par();
    Ok(out)
}

//! Bags (Dask's `dask.bag`): lazy, partitioned collections of items — JSON
//! values or lines of text — for semi-structured data before it is a table.
//! What a bag does to its items is data ([`Func`], [`Pred`], [`Binop`]) or a
//! registered op, so stock `rask worker` processes run every bag; a chain of
//! `map`, `filter` and `flatten` runs item by item in one task per partition.
//!
//! ```no_run
//! use rask::bag::{read_text, Func};
//! use rask::prelude::*;
//!
//! let client = Client::local(LocalCluster::new().workers(2))?;
//! let words = read_text("s3://bucket/posts/*.json.gz", None)?
//!     .map(Func::ParseJson)?
//!     .pluck("text")?
//!     .map(Func::Lower.then(Func::split_whitespace()))?
//!     .flatten()?;
//! for pair in words.frequencies()?.topk(10, Some(Func::get(1)))?.compute(&client)? {
//!     println!("{pair}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "dataframe")]
mod convert;
mod func;
mod groupby;
mod io;
mod kernels;
mod plan;
mod records;
mod reduce;
mod text_counts;

pub use func::{field, item, json_order, Binop, Cmp, Field, Func, Path, Pred};
pub use io::{read_json, read_text};
pub use plan::Compression;
pub use records::{Item, Records};
pub use serde_json::{json, Value as Json};

use crate::client::lazy::Node;
use crate::client::{Client, Error};
use crate::collections::delayed::Delayed;
use crate::graph::Key;
use plan::{Origin, Plan, Step, TextBlock};
use reduce::Reduction;
use std::fmt;
use std::sync::Arc;

/// What can go wrong building or computing a bag.
#[derive(Debug, thiserror::Error)]
pub enum BagError {
    /// An operation that cannot be built as asked; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// Reading or listing files.
    #[error(transparent)]
    Store(#[from] crate::io::StoreError),
    /// Computing failed on the cluster.
    #[error(transparent)]
    Compute(#[from] Error),
    /// Converting to or from a dataframe.
    #[cfg(feature = "dataframe")]
    #[error(transparent)]
    DataFrame(#[from] crate::collections::dataframe::DataFrameError),
}

/// Where a partition's items start.
#[derive(Clone)]
enum Source {
    /// Lines of a file, read by the partition's own task.
    Text(TextBlock),
    /// Another task's partition.
    Node(Arc<Node>),
}

/// A lazy bag of items in partitions.
#[derive(Clone)]
pub struct Bag {
    name: Arc<str>,
    sources: Arc<[Source]>,
    /// Applied to every item by its partition's task, after its source.
    steps: Arc<Vec<Step>>,
    partitions: Arc<[Arc<Node>]>,
}

impl Bag {
    fn build(prefix: &str, sources: Arc<[Source]>, steps: Vec<Step>) -> Bag {
        let name: Arc<str> = Arc::from(format!("{prefix}-{}", crate::graph::fresh_token()));
        let partitions = (0..sources.len())
            .map(|i| {
                let key = Key::new(&*name).indexed(&[i]);
                plan_node(key, &sources[i], &steps, None)
            })
            .collect();
        Bag {
            name,
            sources,
            steps: Arc::new(steps),
            partitions,
        }
    }

    /// A bag whose partitions are these nodes' results.
    fn from_nodes(prefix: &str, nodes: Vec<Arc<Node>>) -> Bag {
        let name: Arc<str> = Arc::from(format!("{prefix}-{}", crate::graph::fresh_token()));
        Bag {
            name,
            sources: nodes.iter().cloned().map(Source::Node).collect(),
            steps: Arc::new(Vec::new()),
            partitions: nodes.into(),
        }
    }

    /// Items split into `npartitions` partitions of consecutive items
    /// (Dask's `from_sequence`).
    pub fn from_sequence(items: Vec<Json>, npartitions: usize) -> Bag {
        let parts = npartitions.max(1);
        let token = crate::graph::fresh_token();
        let len = items.len();
        let mut items = items.into_iter();
        let nodes = (0..parts)
            .map(|i| {
                let size = len * (i + 1) / parts - len * i / parts;
                let chunk: Vec<Json> = items.by_ref().take(size).collect();
                kernels::literal(
                    Key::new(format!("from-sequence-{token}")).indexed(&[i]),
                    chunk,
                )
            })
            .collect();
        Bag::from_nodes("from-sequence", nodes)
    }

    fn then(&self, prefix: &str, step: Step) -> Bag {
        let mut steps = (*self.steps).clone();
        steps.push(step);
        Bag::build(prefix, self.sources.clone(), steps)
    }

    /// The name its partitions' keys start with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of partitions.
    pub fn npartitions(&self) -> usize {
        self.partitions.len()
    }

    /// Tasks in the graph (each counted once).
    pub fn ntasks(&self) -> usize {
        crate::collections::kernel::count_tasks(&self.partitions)
    }

    /// Every item replaced by `f`'s result (Dask's `map`).
    pub fn map(&self, f: Func) -> Result<Bag, BagError> {
        f.check().map_err(BagError::Invalid)?;
        Ok(self.then("map", Step::Map(f)))
    }

    /// The items `pred` holds for (Dask's `filter`).
    pub fn filter(&self, pred: Pred) -> Result<Bag, BagError> {
        pred.check().map_err(BagError::Invalid)?;
        Ok(self.then("filter", Step::Filter(pred)))
    }

    /// Every item, a list, replaced by its elements (Dask's `flatten`).
    pub fn flatten(&self) -> Result<Bag, BagError> {
        Ok(self.then("flatten", Step::Flatten))
    }

    /// A field of every item (Dask's `pluck`); an item without it is an error.
    pub fn pluck(&self, field: impl Into<Field>) -> Result<Bag, BagError> {
        self.map(Func::Get(field.into()))
    }

    /// A field of every item, or `default` where it is missing.
    pub fn pluck_or(&self, field: impl Into<Field>, default: Json) -> Result<Bag, BagError> {
        self.map(Func::GetOr(field.into(), default))
    }

    /// One partition reducing all items: per-partition partials, then merges
    /// of [`reduce::SPLIT_EVERY`] at a time.
    fn reduce(&self, prefix: &str, reduction: Reduction) -> Bag {
        let token = crate::graph::fresh_token();
        let mut level: Vec<Arc<Node>> = self
            .sources
            .iter()
            .enumerate()
            .map(|(i, source)| {
                let key = Key::new(format!("{prefix}-partial-{token}")).indexed(&[i]);
                plan_node(key, source, &self.steps, Some(reduction.clone()))
            })
            .collect();
        let mut depth = 0;
        while level.len() > 1 || depth == 0 {
            depth += 1;
            level = level
                .chunks(reduce::SPLIT_EVERY)
                .enumerate()
                .map(|(g, group)| {
                    let key = Key::new(format!("{prefix}{depth}-{token}")).indexed(&[g]);
                    kernels::merge(key, &reduction, group.to_vec())
                })
                .collect();
        }
        Bag::from_nodes(prefix, level)
    }

    /// `[item, count]` pairs, most frequent first (Dask's `frequencies`,
    /// sorted); one partition.
    pub fn frequencies(&self) -> Result<Bag, BagError> {
        Ok(self.reduce("frequencies", Reduction::Frequencies))
    }

    /// Each distinct item once, in order of first appearance (Dask's `distinct`).
    pub fn distinct(&self) -> Result<Bag, BagError> {
        Ok(self.reduce("distinct", Reduction::Distinct))
    }

    /// The `k` largest items, largest first, compared by `key`'s result (the
    /// items themselves when `None`) in [`json_order`] (Dask's `topk`).
    pub fn topk(&self, k: usize, key: Option<Func>) -> Result<Bag, BagError> {
        if let Some(key) = &key {
            key.check().map_err(BagError::Invalid)?;
        }
        Ok(self.reduce("topk", Reduction::TopK(k, key)))
    }

    /// The items folded into one value (Dask's `fold`): `binop(acc, item)`
    /// from `initial` (or the first item) in each partition, then the
    /// partitions' results by `combine` (`binop` when `None`).
    pub fn fold(
        &self,
        binop: Binop,
        combine: Option<Binop>,
        initial: Option<Json>,
    ) -> Result<Scalar, BagError> {
        binop.check().map_err(BagError::Invalid)?;
        let combine = combine.unwrap_or_else(|| binop.combiner());
        combine.check().map_err(BagError::Invalid)?;
        let reduced = self.reduce(
            "fold",
            Reduction::Fold {
                binop,
                combine,
                initial,
            },
        );
        Ok(Scalar(reduced))
    }

    /// `[key, value]` pairs: each key's items folded (Dask's `foldby`), keys
    /// in order of first appearance; one partition.
    pub fn foldby(
        &self,
        key: Func,
        binop: Binop,
        initial: Option<Json>,
        combine: Option<Binop>,
    ) -> Result<Bag, BagError> {
        key.check().map_err(BagError::Invalid)?;
        binop.check().map_err(BagError::Invalid)?;
        let combine = combine.unwrap_or_else(|| binop.combiner());
        combine.check().map_err(BagError::Invalid)?;
        Ok(self.reduce(
            "foldby",
            Reduction::FoldBy {
                key,
                binop,
                combine,
                initial,
            },
        ))
    }

    /// How many items (Dask's `count`).
    pub fn count(&self) -> Result<Scalar, BagError> {
        self.fold(Binop::Count, None, None)
    }

    /// The sum of numeric items (0 for an empty bag).
    pub fn sum(&self) -> Result<Scalar, BagError> {
        self.fold(Binop::Sum, None, Some(Json::from(0)))
    }

    /// The smallest item in [`json_order`].
    pub fn min(&self) -> Result<Scalar, BagError> {
        self.fold(Binop::Min, None, None)
    }

    /// The largest item in [`json_order`].
    pub fn max(&self) -> Result<Scalar, BagError> {
        self.fold(Binop::Max, None, None)
    }

    /// A picture of the graph computing every chunk: DOT, or SVG for small
    /// graphs (Dask's `visualize`).
    pub fn visualize(&self) -> crate::diagnostics::Visualization {
        crate::diagnostics::Visualization::new(crate::collections::delayed::graph_of(
            &self.to_delayed(),
        ))
    }

    /// One delayed partition per partition (Dask's `to_delayed`).
    pub fn to_delayed(&self) -> Vec<Delayed<Records>> {
        self.partitions
            .iter()
            .map(|node| Delayed::from_arc(node.clone()))
            .collect()
    }

    /// A bag of delayed partitions (Dask's `from_delayed`).
    pub fn from_delayed(parts: &[Delayed<Records>]) -> Bag {
        Bag::from_nodes(
            "from-delayed",
            parts.iter().map(|d| d.node().clone()).collect(),
        )
    }

    /// Starts computing every partition, kept on the cluster (Dask's `persist`).
    pub fn persist(&self, client: &Client) -> Result<Bag, BagError> {
        let futures = client.compute_many(&self.to_delayed())?;
        let nodes = futures
            .into_iter()
            .map(|f| Delayed::from_future(f).node().clone())
            .collect();
        Ok(Bag::from_nodes("persisted", nodes))
    }

    /// The partitions, computed, in order.
    pub fn compute_partitions(&self, client: &Client) -> Result<Vec<Vec<Json>>, BagError> {
        let futures = client.compute_many(&self.to_delayed())?;
        futures.iter().map(|f| Ok(f.shared()?.0.clone())).collect()
    }

    /// Every item, in order.
    pub fn compute(&self, client: &Client) -> Result<Vec<Json>, BagError> {
        Ok(self
            .compute_partitions(client)?
            .into_iter()
            .flatten()
            .collect())
    }

    /// The first `k` items, computing partitions in order only until there
    /// are enough (Dask's `take` with `npartitions=-1`).
    pub fn take(&self, k: usize, client: &Client) -> Result<Vec<Json>, BagError> {
        let mut out = Vec::new();
        for node in self.partitions.iter() {
            if out.len() >= k {
                break;
            }
            let future = client.compute(&Delayed::<Records>::from_arc(node.clone()))?;
            out.extend(future.shared()?.0.iter().take(k - out.len()).cloned());
        }
        Ok(out)
    }
}

/// Builds a partition's task from its source, steps and reduction.
fn plan_node(key: Key, source: &Source, steps: &[Step], reduction: Option<Reduction>) -> Arc<Node> {
    let (origin, inputs) = match source {
        Source::Text(block) => (Origin::Text(block.clone()), vec![]),
        Source::Node(node) => (Origin::Inputs, vec![node.clone()]),
    };
    let plan = Plan {
        origin,
        steps: steps.to_vec(),
        reduction,
    };
    kernels::run_plan(key, &plan, inputs)
}

/// One value a bag reduces to (Dask's delayed scalar from `fold`, `count`,
/// `sum`, …).
#[derive(Clone)]
pub struct Scalar(Bag);

impl Scalar {
    /// The value; an empty bag folded with no initial value is an error.
    pub fn compute(&self, client: &Client) -> Result<Json, BagError> {
        self.0
            .compute(client)?
            .into_iter()
            .next()
            .ok_or_else(|| BagError::Invalid("fold of an empty bag with no initial value".into()))
    }

    /// The value as a one-item bag.
    pub fn to_bag(&self) -> Bag {
        self.0.clone()
    }
}

impl fmt::Display for Bag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.name.rsplit_once('-').map_or(&*self.name, |(p, _)| p);
        write!(
            f,
            "rask.Bag<{prefix}, npartitions={}, tasks={}>",
            self.npartitions(),
            self.ntasks()
        )
    }
}

impl fmt::Debug for Bag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

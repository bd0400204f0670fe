//! `groupby(keys).agg(..)` as a tree reduction (Dask's `split_out=1`), or
//! with partials shuffled by key into `split_out` partitions. In a tree, each
//! partition aggregates its own rows into partial results, partials are
//! combined a few at a time, and the last combination finishes them (a mean
//! from sums and counts, a variance from counts, means and squared deviations
//! by Chan's formula). Rows with a null key are dropped, as pandas and Dask do.

use super::plan::Step;
use super::{DataFrame, DataFrameError};
use polars::prelude::*;

/// An aggregation of one column, with pandas' (and Dask's) meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agg {
    /// Sum of non-null values.
    Sum,
    /// Mean of non-null values.
    Mean,
    /// Count of non-null values.
    Count,
    /// Rows in the group, nulls included.
    Size,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Sample standard deviation (`ddof` 1).
    Std,
    /// Sample variance (`ddof` 1).
    Var,
    /// First non-null value, in partition order.
    First,
    /// Last non-null value, in partition order.
    Last,
    /// Number of distinct non-null values.
    Nunique,
}

impl Agg {
    /// Dask's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Agg::Sum => "sum",
            Agg::Mean => "mean",
            Agg::Count => "count",
            Agg::Size => "size",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Std => "std",
            Agg::Var => "var",
            Agg::First => "first",
            Agg::Last => "last",
            Agg::Nunique => "nunique",
        }
    }
}

/// Rows grouped by key columns, waiting for [`GroupBy::agg`].
pub struct GroupBy {
    frame: DataFrame,
    keys: Vec<String>,
    split_out: usize,
}

/// The three stages of one output column.
struct Stages {
    /// Per partition: partial columns.
    partial: Vec<Expr>,
    /// Partials to partials.
    combine: Vec<Expr>,
    /// The last combination: partials to what `finish` reads.
    last: Vec<Expr>,
    /// The output column.
    finish: Expr,
}

fn stages(column: &str, agg: Agg, i: usize, out: &str) -> Stages {
    let p = |what: &str| format!("__{i}_{what}");
    let c = || col(column);
    let same = |what: &str, partial: Expr, combine: fn(Expr) -> Expr| {
        let name = p(what);
        Stages {
            partial: vec![partial.alias(&name)],
            combine: vec![combine(col(&*name)).alias(&name)],
            last: vec![combine(col(&*name)).alias(&name)],
            finish: col(&*name).alias(out),
        }
    };
    match agg {
        Agg::Sum => same("sum", c().sum(), Expr::sum),
        Agg::Count => same("count", c().count(), Expr::sum),
        Agg::Size => same("size", len(), Expr::sum),
        Agg::Min => same("min", c().min(), Expr::min),
        Agg::Max => same("max", c().max(), Expr::max),
        Agg::First => same("first", c().drop_nulls().first(), |e| {
            e.drop_nulls().first()
        }),
        Agg::Last => same("last", c().drop_nulls().last(), |e| e.drop_nulls().last()),
        Agg::Mean => {
            let (s, n) = (p("sum"), p("count"));
            let combine = vec![col(&*s).sum().alias(&s), col(&*n).sum().alias(&n)];
            Stages {
                partial: vec![
                    c().cast(DataType::Float64).sum().alias(&s),
                    c().count().alias(&n),
                ],
                last: combine.clone(),
                combine,
                finish: when(col(&*n).gt(lit(0)))
                    .then(col(&*s) / col(&*n).cast(DataType::Float64))
                    .otherwise(lit(NULL).cast(DataType::Float64))
                    .alias(out),
            }
        }
        Agg::Var | Agg::Std => {
            let (n, mean, m2) = (p("n"), p("mean"), p("m2"));
            let x = || c().cast(DataType::Float64);
            let deviation = x() - x().mean();
            // Chan: n = Σnᵢ, mean = Σnᵢmeanᵢ / n, M2 = ΣM2ᵢ + Σnᵢ(meanᵢ - mean)².
            let total = || col(&*n).sum();
            // Null, not 0/0 = NaN, for a group with no values in any of the
            // partials combined, so that a later combination skips it.
            let pooled = || {
                when(total().gt(lit(0)))
                    .then(
                        (col(&*n).cast(DataType::Float64) * col(&*mean)).sum()
                            / total().cast(DataType::Float64),
                    )
                    .otherwise(lit(NULL).cast(DataType::Float64))
            };
            let spread = col(&*mean) - pooled();
            let combine = vec![
                total().alias(&n),
                pooled().alias(&mean),
                (col(&*m2).sum()
                    + (col(&*n).cast(DataType::Float64) * spread.clone() * spread).sum())
                .alias(&m2),
            ];
            let var = when(col(&*n).gt(lit(1)))
                .then(col(&*m2) / (col(&*n).cast(DataType::Float64) - lit(1.0)))
                .otherwise(lit(NULL).cast(DataType::Float64));
            Stages {
                partial: vec![
                    c().count().alias(&n),
                    x().mean().alias(&mean),
                    (deviation.clone() * deviation).sum().alias(&m2),
                ],
                last: combine.clone(),
                combine,
                finish: if agg == Agg::Std { var.sqrt() } else { var }.alias(out),
            }
        }
        Agg::Nunique => {
            let name = p("values");
            Stages {
                partial: vec![c().drop_nulls().unique().alias(&name)],
                combine: vec![col(&*name)
                    .explode(ExplodeOptions {
                        empty_as_null: true,
                        keep_nulls: true,
                    })
                    .drop_nulls()
                    .unique()
                    .alias(&name)],
                last: vec![col(&*name)
                    .explode(ExplodeOptions {
                        empty_as_null: true,
                        keep_nulls: true,
                    })
                    .drop_nulls()
                    .n_unique()
                    .alias(&name)],
                finish: col(&*name).cast(DataType::UInt64).alias(out),
            }
        }
    }
}

/// `(column, agg, output name)` for each pair: the column's own name, or
/// `{column}_{agg}` when the column is aggregated more than once.
pub(super) fn output_names(aggs: &[(&str, Agg)]) -> Vec<(String, Agg, String)> {
    let count = |name: &str| aggs.iter().filter(|(c, _)| *c == name).count();
    aggs.iter()
        .map(|&(column, agg)| {
            let out = if count(column) > 1 {
                format!("{column}_{}", agg.name())
            } else {
                column.to_string()
            };
            (column.to_string(), agg, out)
        })
        .collect()
}

impl GroupBy {
    pub(super) fn new(frame: DataFrame, keys: &[&str]) -> GroupBy {
        GroupBy {
            frame,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            split_out: 1,
        }
    }

    /// Results in `n` partitions (Dask's `split_out`): each partition's
    /// partial aggregates are shuffled by key, peer to peer, so no task ever
    /// holds every group. For many groups; with 1 (the default) partials are
    /// combined in a tree into one partition sorted by key. With more, each
    /// partition is sorted by key, and a key is in exactly one partition.
    /// [`GroupBy::split_out_auto`] chooses `n` from the data.
    pub fn split_out(mut self, n: usize) -> GroupBy {
        self.split_out = n.max(1);
        self
    }

    /// The frame being grouped.
    pub(super) fn frame(&self) -> &DataFrame {
        &self.frame
    }

    /// The key columns.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The output partitions [`GroupBy::agg`] makes.
    pub fn output_partitions(&self) -> usize {
        self.split_out
    }

    /// Aggregates `(column, agg)` pairs into one partition, sorted by the
    /// keys. An output column is named after its input, or `{column}_{agg}`
    /// when the column is aggregated more than once.
    pub fn agg(&self, aggs: &[(&str, Agg)]) -> Result<DataFrame, DataFrameError> {
        self.agg_named(&output_names(aggs))
    }

    /// Aggregates `(column, agg, output name)` triples (Dask's named
    /// aggregation, `agg(total=("fare", "sum"))`).
    pub fn agg_named(&self, aggs: &[(String, Agg, String)]) -> Result<DataFrame, DataFrameError> {
        let all: Vec<Stages> = aggs
            .iter()
            .enumerate()
            .map(|(i, (column, agg, out))| stages(column, *agg, i, out))
            .collect();
        let keys: Vec<Expr> = self.keys.iter().map(|k| col(k.as_str())).collect();
        let gather = |pick: fn(&Stages) -> &Vec<Expr>| -> Vec<Expr> {
            all.iter().flat_map(|s| pick(s).iter().cloned()).collect()
        };
        // Null keys are grouped like any other and their groups dropped
        // after: the same result as dropping their rows first, without a
        // filter over every row (which Polars pushes into the Parquet decoder).
        let partial = self
            .frame
            .then(
                "groupby-partial",
                Step::GroupBy(keys.clone(), gather(|s| &s.partial)),
            )?
            .then("groupby-partial", Step::DropNulls(Some(self.keys.clone())))?;
        let combine = Step::GroupBy(keys.clone(), gather(|s| &s.combine));
        let mut finish: Vec<Expr> = keys.clone();
        finish.extend(all.iter().map(|s| s.finish.clone()));
        let last = vec![
            Step::GroupBy(keys, gather(|s| &s.last)),
            Step::Select(finish),
            Step::Sort(self.keys.clone(), vec![false; self.keys.len()]),
        ];
        if self.split_out > 1 {
            let keys: Vec<&str> = self.keys.iter().map(|k| k.as_str()).collect();
            return partial.shuffle_then(&keys, self.split_out, last);
        }
        super::reductions::tree("groupby-agg", &partial, vec![combine], last)
    }

    /// Every other column summed.
    pub fn sum(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Sum)
    }

    /// Every other column's mean.
    pub fn mean(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Mean)
    }

    /// Every other column's count of non-null values.
    pub fn count(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Count)
    }

    /// Rows per group, in a column named `size`.
    pub fn size(&self) -> Result<DataFrame, DataFrameError> {
        let first = self.keys.first().cloned().unwrap_or_default();
        self.agg_named(&[(first, Agg::Size, "size".to_string())])
    }

    fn all(&self, agg: Agg) -> Result<DataFrame, DataFrameError> {
        let columns: Vec<String> = self
            .frame
            .columns()
            .into_iter()
            .filter(|c| !self.keys.contains(c))
            .collect();
        let pairs: Vec<(&str, Agg)> = columns.iter().map(|c| (c.as_str(), agg)).collect();
        self.agg(&pairs)
    }
}

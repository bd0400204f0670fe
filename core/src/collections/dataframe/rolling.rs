//! `rolling` (pandas' and Dask's name): windows of a fixed number of rows, or
//! of a time span over a datetime index. Each partition's task also takes the
//! rows before it that its first windows reach (Dask's `map_overlap`): for
//! `n` rows, the last `n - 1` rows before it, wherever they are (a chain of
//! small tasks carries them across partitions shorter than the window); for
//! a span, the earlier rows within the span of where the partition's index
//! values start (its division).

use super::groupby::{output_names, Agg};
use super::interval::Interval;
use super::kernels;
use super::plan::{Origin, Plan, Step};
use super::{DataFrame, DataFrameError};
use crate::client::lazy::Node;
use crate::graph::Key;
use polars::prelude::*;
use std::sync::Arc;

/// A rolling window's length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Window {
    /// This many rows, the current one last; windows with fewer rows (the
    /// first `n - 1`) give null, as pandas' default `min_periods` does.
    Rows(usize),
    /// Rows whose index lies in `(t - span, t]` for the current row's `t`
    /// (`"1h"`, `"30min"`), as pandas' time-based windows.
    Span(String),
}

impl From<usize> for Window {
    fn from(rows: usize) -> Window {
        Window::Rows(rows)
    }
}

impl From<&str> for Window {
    fn from(span: &str) -> Window {
        Window::Span(span.to_string())
    }
}

/// The window, checked against the frame.
#[derive(Clone, Debug)]
enum Checked {
    Rows(usize),
    Span {
        index: String,
        interval: Interval,
        /// The span in ticks of the index column.
        ticks: i64,
    },
}

/// A frame's rows in rolling windows, waiting for an aggregation.
pub struct Rolling {
    frame: DataFrame,
    window: Checked,
}

impl DataFrame {
    /// Rolling windows over the rows in order (Dask's `rolling`): a count of
    /// rows (`rolling(3)`) or a time span over a `Datetime` index set with
    /// [`DataFrame::set_index`] (`rolling("1h")`).
    pub fn rolling(&self, window: impl Into<Window>) -> Result<Rolling, DataFrameError> {
        let window = match window.into() {
            Window::Rows(0) => {
                return Err(DataFrameError::Invalid(
                    "a rolling window needs at least one row".into(),
                ))
            }
            Window::Rows(n) => Checked::Rows(n),
            Window::Span(text) => {
                let index = self.index().ok_or_else(|| {
                    DataFrameError::Unsupported(format!(
                        "a rolling window of {text:?} needs a datetime index: call set_index on a Datetime column first"
                    ))
                })?;
                let interval = Interval::parse(&text)?;
                let ticks = interval.ticks(self.schema.try_get(index)?, index)?;
                Checked::Span {
                    index: index.to_string(),
                    interval,
                    ticks,
                }
            }
        };
        Ok(Rolling {
            frame: self.clone(),
            window,
        })
    }
}

impl Rolling {
    /// The rolling `agg` of `column`.
    fn expr(&self, column: &str, agg: Agg) -> Result<Expr, DataFrameError> {
        let x = col(column);
        match &self.window {
            Checked::Rows(n) => {
                let options = RollingOptionsFixedWindow {
                    window_size: *n,
                    min_periods: *n,
                    ..Default::default()
                };
                Ok(match agg {
                    Agg::Sum => x.rolling_sum(options),
                    Agg::Mean => x.rolling_mean(options),
                    Agg::Min => x.rolling_min(options),
                    Agg::Max => x.rolling_max(options),
                    Agg::Std => x.rolling_std(options),
                    Agg::Var => x.rolling_var(options),
                    other => return Err(unsupported(other)),
                })
            }
            Checked::Span {
                index, interval, ..
            } => {
                let options = RollingOptionsDynamicWindow {
                    window_size: polars::prelude::Duration::try_parse(&interval.to_polars())?,
                    min_periods: 1,
                    closed_window: ClosedWindow::Right,
                    fn_params: None,
                };
                let by = col(index.as_str());
                Ok(match agg {
                    Agg::Sum => x.rolling_sum_by(by, options),
                    Agg::Mean => x.rolling_mean_by(by, options),
                    Agg::Min => x.rolling_min_by(by, options),
                    Agg::Max => x.rolling_max_by(by, options),
                    Agg::Std => x.rolling_std_by(by, options),
                    Agg::Var => x.rolling_var_by(by, options),
                    other => return Err(unsupported(other)),
                })
            }
        }
    }

    /// Rolling aggregations of `(column, agg)` pairs (sum, mean, min, max,
    /// std, var), with the rows and partitions of the frame: the index
    /// column, if one is set, then one column per pair, named as
    /// [`super::GroupBy::agg`] names them.
    pub fn agg(&self, aggs: &[(&str, Agg)]) -> Result<DataFrame, DataFrameError> {
        let mut exprs: Vec<Expr> = self.frame.index().map(col).into_iter().collect();
        for (column, agg, out) in output_names(aggs) {
            exprs.push(self.expr(&column, agg)?.alias(out.as_str()));
        }
        let schema = super::schema_after(&self.frame.schema, &[Step::Select(exprs.clone())], &[])?;
        let nodes = self.partitions(exprs)?;
        let mut out = DataFrame::from_nodes("rolling", schema, nodes)?;
        out.index = self.frame.index.clone();
        Ok(out)
    }

    /// One task per partition selecting `exprs` over the rows before it
    /// that its windows reach, then its own.
    fn partitions(&self, exprs: Vec<Expr>) -> Result<Vec<Arc<Node>>, DataFrameError> {
        let parts = &self.frame.partitions;
        let token = crate::graph::fresh_token();
        let divisions = match (&self.window, self.frame.divisions()) {
            (Checked::Span { .. }, Some(divisions)) => {
                Some(divisions.cast(&DataType::Int64)?.i64()?.clone())
            }
            _ => None,
        };
        let mut out = Vec::with_capacity(parts.len());
        let mut before: Option<Arc<Node>> = None;
        for (i, part) in parts.iter().enumerate() {
            let key = Key::new(format!("rolling-{token}")).indexed(&[i]);
            let (steps, inputs) = match &before {
                None => (vec![Step::Select(exprs.clone())], vec![part.clone()]),
                Some(before) => (
                    vec![Step::Overlapped {
                        side: 0,
                        exprs: exprs.clone(),
                    }],
                    vec![part.clone(), before.clone()],
                ),
            };
            let plan = Plan {
                origin: Origin::Inputs,
                sides: inputs.len() - 1,
                steps,
            };
            out.push(kernels::run_plan(key, &plan, inputs)?);
            if i + 1 == parts.len() {
                break;
            }
            // The rows of this partition and those before it that the next
            // one's windows reach.
            let keep = match &self.window {
                Checked::Rows(n) => Step::Tail(n - 1),
                Checked::Span { index, ticks, .. } => {
                    match divisions.as_ref().and_then(|d| d.get(i + 1)) {
                        Some(start) => Step::Filter(
                            col(index.as_str())
                                .cast(DataType::Int64)
                                .gt(lit(start.saturating_sub(*ticks))),
                        ),
                        None => Step::Head(usize::MAX),
                    }
                }
            };
            let mut inputs: Vec<Arc<Node>> = before.take().into_iter().collect();
            inputs.push(part.clone());
            let key = Key::new(format!("rolling-overlap-{token}")).indexed(&[i + 1]);
            let plan = Plan {
                origin: Origin::Inputs,
                sides: 0,
                steps: vec![keep],
            };
            before = Some(kernels::run_plan(key, &plan, inputs)?);
        }
        Ok(out)
    }

    fn all(&self, agg: Agg) -> Result<DataFrame, DataFrameError> {
        let index = self.frame.index();
        let columns: Vec<String> = self
            .frame
            .schema
            .iter()
            .filter(|(name, dtype)| dtype.is_primitive_numeric() && Some(name.as_str()) != index)
            .map(|(name, _)| name.to_string())
            .collect();
        let pairs: Vec<(&str, Agg)> = columns.iter().map(|c| (c.as_str(), agg)).collect();
        self.agg(&pairs)
    }

    /// Every numeric column's rolling sum.
    pub fn sum(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Sum)
    }

    /// Every numeric column's rolling mean.
    pub fn mean(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Mean)
    }

    /// Every numeric column's rolling minimum.
    pub fn min(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Min)
    }

    /// Every numeric column's rolling maximum.
    pub fn max(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Max)
    }

    /// Every numeric column's rolling sample standard deviation.
    pub fn std(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Std)
    }

    /// Every numeric column's rolling sample variance.
    pub fn var(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Var)
    }
}

fn unsupported(agg: Agg) -> DataFrameError {
    DataFrameError::Unsupported(format!(
        "rolling {}: rolling windows take sum, mean, min, max, std and var",
        agg.name()
    ))
}

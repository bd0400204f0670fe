//! Row groups a filter rules out, by the minimum, maximum and null count the
//! Parquet footer keeps for each column of each row group, so that a ranged
//! read from an object store never fetches them.
//!
//! When a frame's partitions are built, the filter that Polars' optimiser
//! pushes down to the files' rows becomes a [`StatsFilter`]: the comparisons of
//! a column with a literal, `is_null`, `is_not_null`, and `&`/`|` of them.
//! Anything else it cannot judge from statistics, so it keeps every row group
//! (an unknown conjunct of an `&` is dropped; an unknown side of an `|` makes
//! the whole `|` unknown). A row group is ruled out only when no row of it can
//! pass, whatever its other values, so results never change.

use polars::prelude::*;
use polars_parquet::parquet::metadata::RowGroupMetadata;
use polars_parquet::parquet::statistics::Statistics;
use polars_plan::dsl::Operator;
use polars_plan::plans::{AExpr, IRBooleanFunction, IRFunctionExpr, LiteralValue};
use polars_plan::prelude::{Arena, Node};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// How deep a predicate is followed; deeper parts are unknown.
const MAX_DEPTH: usize = 32;

/// What a filter asks of a file's rows, in terms its row groups' statistics
/// can answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum StatsFilter {
    /// Every one holds.
    All(Vec<StatsFilter>),
    /// At least one holds.
    Any(Vec<StatsFilter>),
    /// `column <comparison> value`; a null never passes.
    Compare {
        column: String,
        comparison: Comparison,
        value: Bound,
    },
    /// The column is null.
    IsNull(String),
    /// The column is not null.
    IsNotNull(String),
}

/// A comparison of a column with a value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Comparison {
    Eq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

/// A literal as the file stores it: integers (also dates, datetimes and
/// durations in the column's unit), 64-bit floats, or text (compared by bytes,
/// as Parquet orders UTF-8 and as Polars compares strings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Bound {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Comparison {
    fn from_operator(op: Operator) -> Option<Comparison> {
        Some(match op {
            Operator::Eq => Comparison::Eq,
            Operator::Lt => Comparison::Lt,
            Operator::LtEq => Comparison::LtEq,
            Operator::Gt => Comparison::Gt,
            Operator::GtEq => Comparison::GtEq,
            _ => return None,
        })
    }

    /// The same comparison with its sides swapped (`5 < x` is `x > 5`).
    fn flipped(self) -> Comparison {
        match self {
            Comparison::Eq => Comparison::Eq,
            Comparison::Lt => Comparison::Gt,
            Comparison::LtEq => Comparison::GtEq,
            Comparison::Gt => Comparison::Lt,
            Comparison::GtEq => Comparison::LtEq,
        }
    }
}

/// The filter of a predicate (in the optimiser's expression arena) over rows
/// of `schema`; `None` when statistics can judge none of it.
pub(super) fn from_predicate(
    node: Node,
    arena: &Arena<AExpr>,
    schema: &Schema,
) -> Option<StatsFilter> {
    convert(node, arena, schema, 0)
}

fn convert(node: Node, arena: &Arena<AExpr>, schema: &Schema, depth: usize) -> Option<StatsFilter> {
    if depth > MAX_DEPTH {
        return None;
    }
    match arena.get(node) {
        AExpr::BinaryExpr { left, op, right } => match op {
            Operator::And | Operator::LogicalAnd => {
                let sides: Vec<StatsFilter> = [left, right]
                    .into_iter()
                    .filter_map(|side| convert(*side, arena, schema, depth + 1))
                    .collect();
                (!sides.is_empty()).then_some(StatsFilter::All(sides))
            }
            Operator::Or | Operator::LogicalOr => Some(StatsFilter::Any(vec![
                convert(*left, arena, schema, depth + 1)?,
                convert(*right, arena, schema, depth + 1)?,
            ])),
            op => {
                let comparison = Comparison::from_operator(*op)?;
                let (column, literal, comparison) =
                    match (column(*left, arena, schema), arena.get(*right)) {
                        (Some(name), AExpr::Literal(value)) => (name, value, comparison),
                        _ => match (arena.get(*left), column(*right, arena, schema)) {
                            (AExpr::Literal(value), Some(name)) => {
                                (name, value, comparison.flipped())
                            }
                            _ => return None,
                        },
                    };
                let dtype = schema.get(column)?;
                let value = bound(literal, dtype)?;
                Some(StatsFilter::Compare {
                    column: column.to_string(),
                    comparison,
                    value,
                })
            }
        },
        AExpr::Function {
            input,
            function: IRFunctionExpr::Boolean(test),
            ..
        } => {
            let [only] = input.as_slice() else {
                return None;
            };
            let AExpr::Column(name) = arena.get(only.node()) else {
                return None;
            };
            schema.get(name)?;
            match test {
                IRBooleanFunction::IsNull => Some(StatsFilter::IsNull(name.to_string())),
                IRBooleanFunction::IsNotNull => Some(StatsFilter::IsNotNull(name.to_string())),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The column `node` reads, also through a cast between signed integer
/// types that keeps every value (`i32` to `i64`, as Polars casts a column to a
/// wider literal's type).
fn column<'a>(node: Node, arena: &'a Arena<AExpr>, schema: &Schema) -> Option<&'a PlSmallStr> {
    let width = |dtype: &DataType| match dtype {
        DataType::Int8 => Some(8),
        DataType::Int16 => Some(16),
        DataType::Int32 => Some(32),
        DataType::Int64 => Some(64),
        _ => None,
    };
    match arena.get(node) {
        AExpr::Column(name) => Some(name),
        AExpr::Cast { expr, dtype, .. } => match arena.get(*expr) {
            AExpr::Column(name) if width(schema.get(name)?)? <= width(dtype)? => Some(name),
            _ => None,
        },
        _ => None,
    }
}

/// A literal compared with a column of `dtype`, as the file stores it; `None`
/// when the comparison is not one of the file's stored values (a float with
/// an integer column, a `Float32` column whose values Polars compares in
/// single precision, unsigned columns stored as signed, NaN).
fn bound(literal: &LiteralValue, dtype: &DataType) -> Option<Bound> {
    let value = literal.to_any_value()?;
    let int = |value: &AnyValue| -> Option<i64> {
        match *value {
            AnyValue::Int8(v) => Some(v.into()),
            AnyValue::Int16(v) => Some(v.into()),
            AnyValue::Int32(v) => Some(v.into()),
            AnyValue::Int64(v) => Some(v),
            AnyValue::UInt8(v) => Some(v.into()),
            AnyValue::UInt16(v) => Some(v.into()),
            AnyValue::UInt32(v) => Some(v.into()),
            AnyValue::UInt64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    };
    match (dtype, &value) {
        (DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64, v) => {
            int(v).map(Bound::Int)
        }
        (DataType::Float64, AnyValue::Float64(v)) if !v.is_nan() => Some(Bound::Float(*v)),
        (DataType::Float64, AnyValue::Float32(v)) if !v.is_nan() => {
            Some(Bound::Float(f64::from(*v)))
        }
        (DataType::Float64, v) => int(v)
            .filter(|i| i.unsigned_abs() < 1 << 53)
            .map(|i| Bound::Float(i as f64)),
        (DataType::Date, AnyValue::Date(days)) => Some(Bound::Int((*days).into())),
        (DataType::Datetime(unit, _), AnyValue::Datetime(v, u, _))
        | (DataType::Datetime(unit, _), AnyValue::DatetimeOwned(v, u, _))
        | (DataType::Duration(unit), AnyValue::Duration(v, u))
            if unit == u =>
        {
            Some(Bound::Int(*v))
        }
        (DataType::String, AnyValue::String(s)) => Some(Bound::Text(s.to_string())),
        (DataType::String, AnyValue::StringOwned(s)) => Some(Bound::Text(s.to_string())),
        _ => None,
    }
}

/// One column chunk's statistics: the smallest and largest values (NaN
/// left out) and the count of nulls, each when the footer has it.
struct ColumnStats {
    min: Option<Bound>,
    max: Option<Bound>,
    nulls: Option<i64>,
}

impl StatsFilter {
    /// Whether some row of `group` may pass; `false` only when none can.
    /// `footer` is the buffer the metadata was decoded from.
    pub(super) fn may_match(&self, group: &RowGroupMetadata, footer: &[u8]) -> bool {
        let rows = group.num_rows() as i64;
        match self {
            StatsFilter::All(all) => all.iter().all(|f| f.may_match(group, footer)),
            StatsFilter::Any(any) => any.iter().any(|f| f.may_match(group, footer)),
            StatsFilter::IsNull(column) => {
                column_stats(group, column, footer).is_none_or(|s| s.nulls != Some(0))
            }
            StatsFilter::IsNotNull(column) => {
                column_stats(group, column, footer).is_none_or(|s| s.nulls != Some(rows))
            }
            StatsFilter::Compare {
                column,
                comparison,
                value,
            } => {
                let Some(stats) = column_stats(group, column, footer) else {
                    return true;
                };
                if stats.nulls == Some(rows) {
                    // Only nulls, and a null never passes a comparison.
                    return false;
                }
                compare_may_match(&stats, *comparison, value)
            }
        }
    }
}

/// Whether a value between `stats.min` and `stats.max` may pass
/// `value <comparison>`. Floats: NaN is not in the statistics and Polars
/// takes it as larger than any number, so `>` and `>=` never rule a group out.
fn compare_may_match(stats: &ColumnStats, comparison: Comparison, value: &Bound) -> bool {
    let order = |stat: &Option<Bound>| -> Option<Ordering> {
        match (stat.as_ref()?, value) {
            (Bound::Int(a), Bound::Int(b)) => Some(a.cmp(b)),
            (Bound::Float(a), Bound::Float(b)) => a.partial_cmp(b),
            (Bound::Text(a), Bound::Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            _ => None,
        }
    };
    let float = matches!(value, Bound::Float(_));
    let min = order(&stats.min);
    let max = if float { None } else { order(&stats.max) };
    match comparison {
        // Some value <= max and >= min may equal it.
        Comparison::Eq => {
            min != Some(Ordering::Greater) && order(&stats.max).is_none_or(|o| o != Ordering::Less)
        }
        Comparison::Lt => min.is_none_or(|o| o == Ordering::Less),
        Comparison::LtEq => min.is_none_or(|o| o != Ordering::Greater),
        Comparison::Gt => max.is_none_or(|o| o == Ordering::Greater),
        Comparison::GtEq => max.is_none_or(|o| o != Ordering::Less),
    }
}

/// The statistics of top-level column `name` in `group`, when it is one
/// chunk with statistics of a type [`Bound`] compares.
fn column_stats(group: &RowGroupMetadata, name: &str, footer: &[u8]) -> Option<ColumnStats> {
    let mut chunks = group.columns_under_root_iter(name)?;
    let chunk = chunks.next()?;
    if chunks.next().is_some() {
        return None;
    }
    let stats = chunk.statistics(footer)?.ok()?;
    Some(match stats {
        Statistics::Int32(s) => ColumnStats {
            min: s.min_value.map(|v| Bound::Int(v.into())),
            max: s.max_value.map(|v| Bound::Int(v.into())),
            nulls: s.null_count,
        },
        Statistics::Int64(s) => ColumnStats {
            min: s.min_value.map(Bound::Int),
            max: s.max_value.map(Bound::Int),
            nulls: s.null_count,
        },
        Statistics::Double(s) => ColumnStats {
            min: s.min_value.map(Bound::Float),
            max: s.max_value.map(Bound::Float),
            nulls: s.null_count,
        },
        Statistics::Binary(s) => {
            let text =
                |v: Option<Vec<u8>>| v.and_then(|b| String::from_utf8(b).ok()).map(Bound::Text);
            ColumnStats {
                min: text(s.min_value),
                max: text(s.max_value),
                nulls: s.null_count,
            }
        }
        // Booleans, fixed-length bytes, Int96 and f32: only null counts.
        Statistics::Boolean(s) => no_range(s.null_count),
        Statistics::FixedLen(s) => no_range(s.null_count),
        Statistics::Int96(s) => no_range(s.null_count),
        Statistics::Float(s) => no_range(s.null_count),
    })
}

fn no_range(nulls: Option<i64>) -> ColumnStats {
    ColumnStats {
        min: None,
        max: None,
        nulls,
    }
}

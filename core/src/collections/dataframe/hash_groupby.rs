//! rask's own grouped aggregation, for the step most groupbys spend their time
//! in: each partition's partial sums and counts by one integer key. `perf` of
//! the 50M-row groupby benchmark had 43% of its time in Polars' streaming
//! group-by (its hash table of "hot" groups and the reductions fed from it).
//! Here each row's key becomes a group number once — straight from the key
//! when the keys span a small range, else through an open-addressing table —
//! and each aggregation is one pass adding values into an array by group
//! number. The output has the columns, types and groups of Polars' `group_by`
//! (checked against Polars' own schema of the step before any row is read);
//! any other aggregation is Polars' to run.

use super::plan::{self, Step};
use polars::prelude::*;

/// No group yet.
const NIL: u32 = u32::MAX;
/// The widest span of keys given a group number by direct lookup, in keys.
const DENSE_SPAN: u64 = 1 << 20;

/// Runs `steps` over `frame` with their first groupby done by [`aggregate`],
/// when it takes it; `None` when there is no such groupby (Polars runs it all).
pub(super) fn run(
    frame: &LazyFrame,
    steps: &[Step],
    sides: &[LazyFrame],
) -> PolarsResult<Option<DataFrame>> {
    let Some(at) = steps.iter().position(|s| matches!(s, Step::GroupBy(..))) else {
        return Ok(None);
    };
    let Step::GroupBy(keys, aggs) = &steps[at] else {
        return Ok(None);
    };
    let [Expr::Column(key)] = keys.as_slice() else {
        return Ok(None);
    };
    let Some(outputs) = aggs.iter().map(Output::of).collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    let before = plan::apply(frame.clone(), &steps[..at], sides)?;
    let schema = before.clone().collect_schema()?;
    let polars_schema = plan::apply(before.clone(), &steps[at..=at], sides)?.collect_schema()?;
    if expected_schema(key, &outputs, &schema).as_ref() != Some(&*polars_schema) {
        return Ok(None);
    }
    let mut read: Vec<Expr> = vec![col(key.clone())];
    for output in &outputs {
        if let Some(column) = output.reduction.column() {
            if !read.contains(&col(column.clone())) {
                read.push(col(column.clone()));
            }
        }
    }
    let input = plan::collect(before.select(read), &steps[..at])?;
    let grouped = aggregate(&input, key, &outputs)?;
    drop(input);
    plan::run(grouped.lazy(), &steps[at + 1..], sides).map(Some)
}

/// One aggregation [`aggregate`] computes.
#[derive(Clone, Debug, PartialEq)]
enum Reduction {
    /// The sum of a column's non-null values, in its own type, or as `f64`
    /// when the column is cast to it first.
    Sum { column: PlSmallStr, as_float: bool },
    /// A column's non-null values.
    Count(PlSmallStr),
    /// Rows.
    Len,
}

impl Reduction {
    /// The column it reads, if any.
    fn column(&self) -> Option<&PlSmallStr> {
        match self {
            Reduction::Sum { column, .. } | Reduction::Count(column) => Some(column),
            Reduction::Len => None,
        }
    }

    /// The expression's reduction, if it is one of these.
    fn of(expr: &Expr) -> Option<Reduction> {
        match expr {
            Expr::Len => Some(Reduction::Len),
            Expr::Agg(AggExpr::Count {
                input,
                include_nulls: false,
            }) => match &**input {
                Expr::Column(c) => Some(Reduction::Count(c.clone())),
                _ => None,
            },
            Expr::Agg(AggExpr::Sum(input)) => match &**input {
                Expr::Column(c) => Some(Reduction::Sum {
                    column: c.clone(),
                    as_float: false,
                }),
                Expr::Cast {
                    expr,
                    dtype: DataTypeExpr::Literal(DataType::Float64),
                    ..
                } => match &**expr {
                    Expr::Column(c) => Some(Reduction::Sum {
                        column: c.clone(),
                        as_float: true,
                    }),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
    }

    /// Its output type for an input column of type `input` (`None` for
    /// [`Reduction::Len`]), when [`aggregate`] computes it.
    fn dtype(&self, input: Option<&DataType>) -> Option<DataType> {
        match (self, input) {
            (Reduction::Len, _) | (Reduction::Count(_), Some(_)) => Some(IDX_DTYPE),
            (Reduction::Sum { as_float: true, .. }, Some(dtype)) if numeric(dtype) => {
                Some(DataType::Float64)
            }
            (
                Reduction::Sum {
                    as_float: false, ..
                },
                Some(dtype),
            ) if numeric(dtype) => Some(dtype.clone()),
            _ => None,
        }
    }
}

/// The numeric types summed here, in their own type.
fn numeric(dtype: &DataType) -> bool {
    matches!(
        dtype,
        DataType::Int32 | DataType::Int64 | DataType::UInt32 | DataType::UInt64 | DataType::Float64
    )
}

/// An aggregation and its output column's name.
#[derive(Clone, Debug)]
struct Output {
    name: PlSmallStr,
    reduction: Reduction,
}

impl Output {
    /// `reduction.alias(name)`, the form every groupby stage writes.
    fn of(expr: &Expr) -> Option<Output> {
        let Expr::Alias(inner, name) = expr else {
            return None;
        };
        Some(Output {
            name: name.clone(),
            reduction: Reduction::of(inner)?,
        })
    }
}

/// The schema [`aggregate`] gives for input `schema`, if it takes the key's
/// type and every output's.
fn expected_schema(key: &str, outputs: &[Output], schema: &Schema) -> Option<Schema> {
    let key_type = schema.get(key)?;
    if !matches!(
        key_type,
        DataType::Int32 | DataType::Int64 | DataType::UInt32
    ) {
        return None;
    }
    let mut fields = vec![Field::new(key.into(), key_type.clone())];
    for output in outputs {
        let input = match output.reduction.column() {
            Some(column) => Some(schema.get(column)?),
            None => None,
        };
        fields.push(Field::new(
            output.name.clone(),
            output.reduction.dtype(input)?,
        ));
    }
    Some(fields.into_iter().collect())
}

/// Groups `input` by integer column `key` and computes `outputs`: the key
/// column (nulls a group of their own), then one column per output, one row
/// per group in order of first appearance.
fn aggregate(input: &DataFrame, key: &str, outputs: &[Output]) -> PolarsResult<DataFrame> {
    let key_column = input.column(key)?.as_materialized_series();
    let wide = key_column.cast(&DataType::Int64)?;
    let groups = Groups::of(wide.i64()?);
    let sizes = &groups.sizes;
    let mut columns = vec![Column::from(
        Int64Chunked::from_iter_options(key.into(), groups.keys.iter().copied())
            .into_series()
            .cast(key_column.dtype())?,
    )];
    for output in outputs {
        let name = output.name.clone();
        let column = match &output.reduction {
            Reduction::Len => IdxCa::from_vec(name, sizes.clone()).into_series(),
            Reduction::Count(c) => {
                let values = input.column(c)?.as_materialized_series();
                let counts = if values.null_count() == 0 {
                    sizes.clone()
                } else {
                    groups.counts(values)
                };
                IdxCa::from_vec(name, counts).into_series()
            }
            Reduction::Sum { column, as_float } => {
                let values = input.column(column)?.as_materialized_series();
                let values = if *as_float {
                    values.cast(&DataType::Float64)?
                } else {
                    values.clone()
                };
                groups.sums(&values)?.with_name(name)
            }
        };
        columns.push(column.into());
    }
    DataFrame::new(groups.keys.len(), columns)
}

/// Each row's group number, and each group's key and rows.
struct Groups {
    ids: Vec<u32>,
    keys: Vec<Option<i64>>,
    sizes: Vec<IdxSize>,
}

impl Groups {
    /// The groups of `keys`, numbered in order of first appearance.
    fn of(keys: &Int64Chunked) -> Groups {
        let Some((min, max)) = span(keys) else {
            // Every key null, or none.
            let rows = keys.len();
            return Groups {
                ids: vec![0; rows],
                keys: if rows == 0 { vec![] } else { vec![None] },
                sizes: if rows == 0 {
                    vec![]
                } else {
                    vec![rows as IdxSize]
                },
            };
        };
        let span = max.abs_diff(min);
        if span < DENSE_SPAN && span <= 4 * keys.len() as u64 {
            Groups::number(
                keys,
                Dense {
                    min,
                    ids: vec![NIL; span as usize + 1],
                },
            )
        } else {
            Groups::number(keys, Hashed::new())
        }
    }

    fn number(keys: &Int64Chunked, mut numbering: impl Numbering) -> Groups {
        let mut ids = vec![0; keys.len()];
        let mut group_keys = Vec::new();
        let mut out = ids.iter_mut();
        let mut null_group = NIL;
        for array in keys.downcast_iter() {
            match array.validity().filter(|v| v.unset_bits() > 0) {
                None => {
                    for (&k, id) in array.values().iter().zip(&mut out) {
                        *id = numbering.id(k, &mut group_keys);
                    }
                }
                Some(valid) => {
                    for ((&k, valid), id) in array.values().iter().zip(valid.iter()).zip(&mut out) {
                        *id = if valid {
                            numbering.id(k, &mut group_keys)
                        } else {
                            if null_group == NIL {
                                null_group = open(&mut group_keys, None);
                            }
                            null_group
                        };
                    }
                }
            }
        }
        let mut sizes = vec![0; group_keys.len()];
        for &id in &ids {
            sizes[id as usize] += 1;
        }
        Groups {
            ids,
            keys: group_keys,
            sizes,
        }
    }

    /// Non-null values of `values` per group.
    fn counts(&self, values: &Series) -> Vec<IdxSize> {
        let mut counts = vec![0; self.keys.len()];
        let mut ids = self.ids.as_slice();
        for array in values.chunks() {
            let (here, rest) = ids.split_at(array.len());
            ids = rest;
            match array.validity() {
                None => here.iter().for_each(|&id| counts[id as usize] += 1),
                Some(valid) => {
                    for (&id, valid) in here.iter().zip(valid.iter()) {
                        counts[id as usize] += IdxSize::from(valid);
                    }
                }
            }
        }
        counts
    }

    /// The sum of `values`' non-null values per group, in their type.
    fn sums(&self, values: &Series) -> PolarsResult<Series> {
        Ok(match values.dtype() {
            DataType::Int32 => self.sums_of(values.i32()?).into_series(),
            DataType::Int64 => self.sums_of(values.i64()?).into_series(),
            DataType::UInt32 => self.sums_of(values.u32()?).into_series(),
            DataType::UInt64 => self.sums_of(values.u64()?).into_series(),
            DataType::Float64 => self.sums_of(values.f64()?).into_series(),
            other => polars_bail!(ComputeError: "no grouped sum of {other}"),
        })
    }

    fn sums_of<T>(&self, values: &ChunkedArray<T>) -> ChunkedArray<T>
    where
        T: PolarsNumericType,
        T::Native: PolarsSum,
    {
        let mut sums = vec![T::Native::default(); self.keys.len()];
        let mut ids = self.ids.as_slice();
        for array in values.downcast_iter() {
            let (here, rest) = ids.split_at(array.len());
            ids = rest;
            match array.validity().filter(|v| v.unset_bits() > 0) {
                None => {
                    for (&id, &v) in here.iter().zip(array.values().iter()) {
                        let sum = &mut sums[id as usize];
                        *sum = sum.plus(v);
                    }
                }
                Some(valid) => {
                    for ((&id, &v), valid) in
                        here.iter().zip(array.values().iter()).zip(valid.iter())
                    {
                        if valid {
                            let sum = &mut sums[id as usize];
                            *sum = sum.plus(v);
                        }
                    }
                }
            }
        }
        ChunkedArray::from_vec(PlSmallStr::EMPTY, sums)
    }
}

/// The smallest and largest non-null key, if any.
fn span(keys: &Int64Chunked) -> Option<(i64, i64)> {
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    let mut any = false;
    for array in keys.downcast_iter() {
        match array.validity().filter(|v| v.unset_bits() > 0) {
            None => {
                any |= !array.values().is_empty();
                // Four lanes, so that the comparisons do not wait on each other.
                let mut lanes = [(i64::MAX, i64::MIN); 4];
                let mut quads = array.values().chunks_exact(4);
                for quad in &mut quads {
                    for (lane, &v) in lanes.iter_mut().zip(quad) {
                        *lane = (lane.0.min(v), lane.1.max(v));
                    }
                }
                for (lo, hi) in lanes {
                    (min, max) = (min.min(lo), max.max(hi));
                }
                for &v in quads.remainder() {
                    (min, max) = (min.min(v), max.max(v));
                }
            }
            Some(valid) => {
                for (&v, valid) in array.values().iter().zip(valid.iter()) {
                    if valid {
                        any = true;
                        (min, max) = (min.min(v), max.max(v));
                    }
                }
            }
        }
    }
    any.then_some((min, max))
}

/// Addition as Polars' sum does it: wrapping for integers.
trait PolarsSum: Copy {
    fn plus(self, other: Self) -> Self;
}

macro_rules! wrapping_add {
    ($($t:ty),*) => {$(
        impl PolarsSum for $t {
            fn plus(self, other: Self) -> Self {
                self.wrapping_add(other)
            }
        }
    )*};
}
wrapping_add!(i32, i64, u32, u64);

impl PolarsSum for f64 {
    fn plus(self, other: Self) -> Self {
        self + other
    }
}

/// How a key becomes its group's number.
trait Numbering {
    /// The group number of `key`, a new group (its key pushed on `keys`)
    /// the first time.
    fn id(&mut self, key: i64, keys: &mut Vec<Option<i64>>) -> u32;
}

/// A new group of `key`; its number.
#[cold]
fn open(keys: &mut Vec<Option<i64>>, key: Option<i64>) -> u32 {
    keys.push(key);
    (keys.len() - 1) as u32
}

/// Keys spanning a small range: group numbers in an array indexed by key.
struct Dense {
    min: i64,
    ids: Vec<u32>,
}

impl Numbering for Dense {
    fn id(&mut self, key: i64, keys: &mut Vec<Option<i64>>) -> u32 {
        let slot = &mut self.ids[key.abs_diff(self.min) as usize];
        if *slot == NIL {
            *slot = open(keys, Some(key));
        }
        *slot
    }
}

/// Any keys: an open-addressing table of (key, group number), kept at most
/// half full.
struct Hashed {
    /// 64 less the table's bits: a hash shifted right by it is a slot.
    shift: u32,
    slots: Vec<(i64, u32)>,
}

impl Hashed {
    fn new() -> Hashed {
        Hashed {
            shift: 64 - 10,
            slots: vec![(0, NIL); 1 << 10],
        }
    }

    fn slot(&self, key: i64) -> usize {
        // A folded multiply: every bit of the key reaches the top bits.
        let product = u128::from(key as u64) * 0x9E37_79B9_7F4A_7C15;
        ((product as u64 ^ (product >> 64) as u64) >> self.shift) as usize
    }

    /// Twice the slots, the groups placed again.
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.shift -= 1;
        self.slots = vec![(0, NIL); old.len() * 2];
        let mask = self.slots.len() - 1;
        for (key, id) in old.into_iter().filter(|&(_, id)| id != NIL) {
            let mut at = self.slot(key);
            while self.slots[at].1 != NIL {
                at = (at + 1) & mask;
            }
            self.slots[at] = (key, id);
        }
    }
}

impl Numbering for Hashed {
    fn id(&mut self, key: i64, keys: &mut Vec<Option<i64>>) -> u32 {
        let mask = self.slots.len() - 1;
        let mut at = self.slot(key);
        loop {
            let (k, id) = self.slots[at];
            if id == NIL {
                break;
            }
            if k == key {
                return id;
            }
            at = (at + 1) & mask;
        }
        let id = open(keys, Some(key));
        self.slots[at] = (key, id);
        if keys.len() * 2 > self.slots.len() {
            self.grow();
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A frame of `key` (of `dtype`, `keys` times `scale`) and value columns
    /// `i` (`i64`), `n` (`i32`) and `f` (`f64`) from `values`, in two chunks.
    fn frame(
        keys: &[Option<i16>],
        scale: i64,
        dtype: &DataType,
        values: &[Option<i16>],
    ) -> DataFrame {
        let unsigned = matches!(dtype, DataType::UInt32);
        let keys: Vec<Option<i64>> = keys
            .iter()
            .map(|k| {
                k.map(|k| {
                    let k = i64::from(k);
                    if unsigned {
                        k.abs() * scale
                    } else {
                        k * scale
                    }
                })
            })
            .collect();
        let rows = keys.len();
        let values: Vec<Option<i64>> = (0..rows)
            .map(|i| {
                values
                    .get(i % values.len().max(1))
                    .copied()
                    .flatten()
                    .map(i64::from)
            })
            .collect();
        let whole = DataFrame::new(
            rows,
            vec![
                Column::new("key".into(), keys).cast(dtype).unwrap(),
                Column::new("i".into(), values.clone()),
                Column::new("n".into(), values.clone())
                    .cast(&DataType::Int32)
                    .unwrap(),
                Column::new("f".into(), values)
                    .cast(&DataType::Float64)
                    .unwrap(),
            ],
        )
        .unwrap();
        let mut chunks = whole.slice(0, rows / 3);
        chunks
            .vstack_mut(&whole.slice((rows / 3) as i64, rows))
            .unwrap();
        chunks
    }

    fn every_reduction() -> Vec<Expr> {
        vec![
            col("i").sum().alias("i_sum"),
            col("n").sum().alias("n_sum"),
            col("f").sum().alias("f_sum"),
            col("i").cast(DataType::Float64).sum().alias("i_float_sum"),
            col("f").count().alias("f_count"),
            col("key").count().alias("key_count"),
            len().alias("rows"),
        ]
    }

    fn sorted(frame: DataFrame) -> DataFrame {
        frame
            .sort(
                ["key"],
                SortMultipleOptions::default().with_nulls_last(true),
            )
            .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// The groups, their keys and every aggregate are Polars' `group_by`'s:
        /// null keys and values, keys spanning a small range (numbered by
        /// lookup) and a wide one (hashed, the table growing past 512 and 1,024
        /// groups), `i32`, `i64` and `u32` keys, no rows.
        #[test]
        fn equals_polars_group_by(
            keys in prop::collection::vec(prop::option::weighted(0.9, -1500i16..1500), 0..3000),
            values in prop::collection::vec(prop::option::weighted(0.8, -1000i16..1000), 1..50),
            dtype in prop::sample::select(vec![DataType::Int32, DataType::Int64, DataType::UInt32]),
            wide in any::<bool>(),
        ) {
            let scale = match (wide, &dtype) {
                (false, _) => 1,
                (true, DataType::Int64) => 1 << 40,
                (true, _) => 1 << 20,
            };
            let input = frame(&keys, scale, &dtype, &values).lazy();
            let steps = [Step::GroupBy(vec![col("key")], every_reduction())];
            let ours = run(&input, &steps, &[]).unwrap().expect("rask's own groupby takes it");
            let polars = plan::apply(input, &steps, &[]).unwrap().collect().unwrap();
            let (ours, polars) = (sorted(ours), sorted(polars));
            prop_assert!(ours.equals_missing(&polars), "{ours}\n{polars}");
        }
    }

    #[test]
    fn other_groupbys_are_polars_to_run() {
        let input = frame(&[Some(1), None, Some(2)], 1, &DataType::Int64, &[Some(3)]).lazy();
        let polars_only = [
            Step::GroupBy(vec![col("key"), col("i")], vec![len().alias("rows")]),
            Step::GroupBy(vec![col("f")], vec![len().alias("rows")]),
            Step::GroupBy(vec![col("key")], vec![col("i").min().alias("least")]),
            Step::GroupBy(vec![col("key")], vec![col("i").mean().alias("mean")]),
            Step::GroupBy(vec![col("key")], vec![col("i").sum()]),
        ];
        for step in polars_only {
            assert!(
                run(&input, std::slice::from_ref(&step), &[])
                    .unwrap()
                    .is_none(),
                "{step:?}"
            );
        }
        // The steps around it run as they would on Polars alone.
        let steps = [
            Step::Filter(col("i").gt(lit(0))),
            Step::GroupBy(vec![col("key")], vec![len().alias("rows")]),
            Step::DropNulls(Some(vec!["key".into()])),
            Step::Sort(vec!["key".into()], vec![true]),
        ];
        let ours = run(&input, &steps, &[]).unwrap().unwrap();
        let expected = df!("key" => [2i64, 1], "rows" => [1 as IdxSize, 1]).unwrap();
        assert!(ours.equals_missing(&expected), "{ours}");
    }
}

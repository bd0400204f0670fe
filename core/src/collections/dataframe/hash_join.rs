//! rask's own hash join, for the joins most merges are: inner or left, on one
//! integer key column a side. Polars' in-memory join keeps a hash map from
//! each key to a vector of row numbers, and spent about half of a 10M × 1M
//! join probing it; here the side frame's keys go into one open-addressing
//! table of (key, first row) pairs, rows with the same key chained in an
//! array beside it, and the partition's rows probe it in parallel. Rows come
//! out as Polars' join (`maintain_order` left) gives them: in the partition's
//! order, each with its matches in the side frame's order, and the same
//! columns, which are checked against Polars' own schema of the join; any
//! other join, or an output that would differ, is Polars' to run.

use super::plan::{self, Step};
use polars::prelude::*;
use polars_plan::plans::IR;
use rayon::prelude::*;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

/// No row.
const NIL: u32 = u32::MAX;
/// Rows of the partition probed together by one thread.
const PROBE_CHUNK: usize = 1 << 16;
/// How many rows ahead of its probe a row's slot is fetched.
const PREFETCH_DISTANCE: usize = 16;

/// Runs `steps` over `frame` with their first join done by [`JoinOn::join`], when it
/// takes it; `None` when there is no such join (Polars runs it all then).
pub(super) fn run(
    frame: &LazyFrame,
    steps: &[Step],
    sides: &[LazyFrame],
) -> PolarsResult<Option<DataFrame>> {
    let Some(at) = steps.iter().position(|s| matches!(s, Step::Join { .. })) else {
        return Ok(None);
    };
    let Step::Join {
        side,
        left_on,
        right_on,
        how,
        suffix,
    } = &steps[at]
    else {
        return Ok(None);
    };
    let ([left_key], [right_key]) = (left_on.as_slice(), right_on.as_slice()) else {
        return Ok(None);
    };
    let Some(other) = sides.get(*side) else {
        return Ok(None);
    };
    let before = plan::apply(frame.clone(), &steps[..at], sides)?;
    let (left_schema, right_schema) = (
        before.clone().collect_schema()?,
        other.clone().collect_schema()?,
    );
    let (Some(left_type), Some(right_type)) = (
        left_schema.get(left_key.as_str()),
        right_schema.get(right_key.as_str()),
    ) else {
        return Ok(None);
    };
    if !takes(how, left_type, right_type) {
        return Ok(None);
    }
    // Only the columns the rest of the query reads, as Polars' optimiser
    // would project them.
    let (left_columns, right_columns) =
        columns_needed(&before, &steps[at..], sides, &left_schema, &right_schema)?;
    let left = plan::collect(before.select(left_columns), &steps[..at])?;
    let right = other.clone().select(right_columns).collect()?;
    let on = JoinOn {
        left: left_key,
        right: right_key,
        how,
        suffix,
    };
    let joined = on.join(&left, &right)?;
    // What the rest of the query does needs no more than the joined rows.
    drop((left, right));
    plan::run(joined.lazy(), &steps[at + 1..], sides).map(Some)
}

/// Whether [`JoinOn::join`] takes a join of keys of these types: inner or left, one
/// integer type on both sides whose every value fits an `i64` (the 8- and
/// 16-bit types are not built into rask's Polars).
fn takes(how: &JoinType, left: &DataType, right: &DataType) -> bool {
    matches!(how, JoinType::Inner | JoinType::Left)
        && left == right
        && matches!(left, DataType::Int32 | DataType::Int64 | DataType::UInt32)
}

/// The columns of the partition's rows and of the side frame that `steps`
/// (the join, then the rest) read, from Polars' optimised plan of them: the
/// schemas of the join's two inputs. Every column when the plan does not say.
fn columns_needed(
    before: &LazyFrame,
    steps: &[Step],
    sides: &[LazyFrame],
    left_schema: &Schema,
    right_schema: &Schema,
) -> PolarsResult<(Vec<Expr>, Vec<Expr>)> {
    let all = |schema: &Schema| schema.iter_names().map(|n| col(n.clone())).collect();
    let optimised = plan::apply(before.clone(), steps, sides)?.to_alp_optimized()?;
    let arena = &optimised.lp_arena;
    let mut joins = Vec::new();
    let mut stack = vec![optimised.lp_top];
    while let Some(node) = stack.pop() {
        let ir = arena.get(node);
        if let IR::Join {
            input_left,
            input_right,
            ..
        } = ir
        {
            joins.push((*input_left, *input_right));
        }
        ir.copy_inputs(&mut stack);
    }
    let [(left, right)] = joins.as_slice() else {
        return Ok((all(left_schema), all(right_schema)));
    };
    let kept = |node, schema: &Schema| -> Vec<Expr> {
        let projected = arena.get(node).schema(arena);
        // In the input's order, and only its own columns.
        schema
            .iter_names()
            .filter(|n| projected.contains(n))
            .map(|n| col(n.clone()))
            .collect()
    };
    Ok((kept(*left, left_schema), kept(*right, right_schema)))
}

/// The side frame's keys: an open-addressing table of each key and the
/// first row that has it, and for every row the next row with its key.
struct Table {
    /// 64 less the table's bits: a hash shifted right by it is a slot.
    shift: u32,
    slots: Vec<(i64, u32)>,
    next: Vec<u32>,
}

fn hash(key: i64) -> u64 {
    // A folded multiply: every bit of the key reaches the high bits.
    let product = u128::from(key as u64 ^ 0x243f_6a88_85a3_08d3) * 0x9e37_79b9_7f4a_7c15;
    (product as u64) ^ ((product >> 64) as u64)
}

impl Table {
    fn build(keys: &Int64Chunked) -> Table {
        let capacity = (keys.len() * 2).next_power_of_two().max(16);
        let shift = 64 - capacity.trailing_zeros();
        let mut slots = vec![(0i64, NIL); capacity];
        let mut next = vec![NIL; keys.len()];
        let keys = keys.downcast_as_array();
        let (values, valid) = (keys.values().as_slice(), keys.validity());
        // From the last row, so that each key's chain runs in row order.
        for (row, &key) in values.iter().enumerate().rev() {
            if valid.is_some_and(|v| !v.get_bit(row)) {
                continue;
            }
            let mut slot = (hash(key) >> shift) as usize;
            loop {
                let entry = &mut slots[slot];
                if entry.1 == NIL {
                    *entry = (key, row as u32);
                    break;
                }
                if entry.0 == key {
                    next[row] = entry.1;
                    entry.1 = row as u32;
                    break;
                }
                slot = (slot + 1) & (capacity - 1);
            }
        }
        Table { shift, slots, next }
    }

    /// The first match of every one of `keys` ([`NIL`] for none, and for a
    /// null), and whether any has several; in parallel.
    fn probe(&self, keys: &Int64Chunked) -> (Vec<u32>, bool) {
        let keys = keys.downcast_as_array();
        let (values, valid) = (keys.values().as_slice(), keys.validity());
        let mut first = vec![NIL; values.len()];
        let several = first
            .par_chunks_mut(PROBE_CHUNK)
            .enumerate()
            .map(|(c, out)| {
                let offset = c * PROBE_CHUNK;
                let mut several = false;
                for (i, m) in out.iter_mut().enumerate() {
                    let row = offset + i;
                    if let Some(&ahead) = values.get(row + PREFETCH_DISTANCE) {
                        self.prefetch(ahead);
                    }
                    if valid.is_none_or(|v| v.get_bit(row)) {
                        *m = self.first(values[row]);
                        several |= *m != NIL && self.next[*m as usize] != NIL;
                    }
                }
                several
            })
            .reduce(|| false, |a, b| a || b);
        (first, several)
    }

    /// Starts loading `key`'s slot into the cache: probes ask for slots all
    /// over a table larger than a core's cache, and would otherwise each
    /// wait on memory in turn.
    fn prefetch(&self, key: i64) {
        #[cfg(target_arch = "x86_64")]
        {
            let slot = (hash(key) >> self.shift) as usize;
            let address = self.slots[slot..].as_ptr().cast::<i8>();
            // SAFETY: a prefetch only hints the cache; the address is in the table.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address)
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = key;
    }

    /// The first row with `key`, or [`NIL`].
    fn first(&self, key: i64) -> u32 {
        let mask = self.slots.len() - 1;
        let mut slot = (hash(key) >> self.shift) as usize;
        loop {
            let (k, row) = self.slots[slot];
            if row == NIL || k == key {
                return row;
            }
            slot = (slot + 1) & mask;
        }
    }
}

/// Key column `name` of `frame` as one array of `i64`s.
fn keys(frame: &DataFrame, name: &str) -> PolarsResult<Int64Chunked> {
    Ok(key_column(frame, name)?.rechunk().into_owned())
}

/// Key column `name` of `frame` as `i64`s, in its own chunks (an `i64`
/// column is the frame's own, not a copy).
fn key_column(frame: &DataFrame, name: &str) -> PolarsResult<Int64Chunked> {
    let column = frame.column(name)?.cast(&DataType::Int64)?;
    Ok(column.i64()?.clone())
}

/// The tables of the side frames that tasks of this process are joining
/// with now: partitions joined with the same side frame (a broadcast join's)
/// at once, or one starting while another still joins, build its table once.
/// Nothing is kept once no task uses it.
static SHARED: Mutex<Vec<Weak<SharedTable>>> = Mutex::new(Vec::new());

/// A side frame's table, built by the first task that needs it.
struct SharedTable {
    /// The side frame's key column, as the tasks read it: the table's
    /// identity. Held here, its buffers stay allocated, so no other column
    /// can come to have their addresses while the table lives.
    column: Int64Chunked,
    table: OnceLock<Table>,
}

/// The table of side key column `column`: the one a task is using now, if
/// any, or a new one to build.
fn shared_table(column: Int64Chunked) -> Arc<SharedTable> {
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    shared.retain(|entry| entry.strong_count() > 0);
    let found = shared
        .iter()
        .filter_map(Weak::upgrade)
        .find(|entry| same_buffers(&entry.column, &column));
    found.unwrap_or_else(|| {
        let entry = Arc::new(SharedTable {
            column,
            table: OnceLock::new(),
        });
        shared.push(Arc::downgrade(&entry));
        entry
    })
}

/// Whether two columns are views of the same buffers (so of the same values).
fn same_buffers(a: &Int64Chunked, b: &Int64Chunked) -> bool {
    a.len() == b.len()
        && a.chunks().len() == b.chunks().len()
        && a.downcast_iter().zip(b.downcast_iter()).all(|(x, y)| {
            let (vx, vy) = (x.validity(), y.validity());
            x.values().as_ptr() == y.values().as_ptr()
                && x.len() == y.len()
                && vx.map(|v| (v.as_slice().0.as_ptr(), v.as_slice().1, v.len()))
                    == vy.map(|v| (v.as_slice().0.as_ptr(), v.as_slice().1, v.len()))
        })
}

/// A join [`run`] hands to [`JoinOn::join`]: inner or left, on integer
/// column `left` of the partition's rows and `right` of the side frame.
struct JoinOn<'a> {
    left: &'a str,
    right: &'a str,
    how: &'a JoinType,
    /// Appended to the side frame's clashing column names.
    suffix: &'a str,
}

impl JoinOn<'_> {
    /// `left` joined with `right` as Polars joins them with `maintain_order`
    /// left: by [`JoinOn::own`], or by Polars when that gives no result.
    fn join(&self, left: &DataFrame, right: &DataFrame) -> PolarsResult<DataFrame> {
        match self.own(left, right)? {
            Some(joined) => Ok(joined),
            None => self.polars(left, right).collect(),
        }
    }

    /// Polars' join of `left` and `right`, as [`JoinOn::join`] means it.
    fn polars(&self, left: &DataFrame, right: &DataFrame) -> LazyFrame {
        let mut args = JoinArgs::new(self.how.clone()).with_suffix(Some(self.suffix.into()));
        args.maintain_order = MaintainOrderJoin::Left;
        left.clone().lazy().join(
            right.clone().lazy(),
            [col(self.left)],
            [col(self.right)],
            args,
        )
    }

    /// [`JoinOn::join`] by rask's table; `None` when the side frame has too
    /// many rows for it, or its columns would not be Polars' join's.
    fn own(&self, left: &DataFrame, right: &DataFrame) -> PolarsResult<Option<DataFrame>> {
        let (left_on, right_on, how, suffix) = (self.left, self.right, self.how, self.suffix);
        if right.height() >= NIL as usize || left.height() >= IdxSize::MAX as usize {
            return Ok(None);
        }
        let side = shared_table(key_column(right, right_on)?);
        let table = side
            .table
            .get_or_init(|| Table::build(&side.column.rechunk()));
        let (mut first, several) = table.probe(&keys(left, left_on)?);
        let inner = matches!(how, JoinType::Inner);
        let unmatched = first.contains(&NIL);
        let (rows, matched): (Option<Vec<IdxSize>>, Vec<IdxSize>) = if several {
            // Each row once per match, in the side frame's order.
            let mut rows = Vec::with_capacity(first.len());
            let mut matched = Vec::with_capacity(first.len());
            for (row, &m) in first.iter().enumerate() {
                if m == NIL && !inner {
                    rows.push(row as IdxSize);
                    matched.push(NIL);
                }
                let mut m = m;
                while m != NIL {
                    rows.push(row as IdxSize);
                    matched.push(m);
                    m = table.next[m as usize];
                }
            }
            (Some(rows), matched)
        } else if inner && unmatched {
            let rows: Vec<IdxSize> = (0..first.len() as IdxSize)
                .filter(|&row| first[row as usize] != NIL)
                .collect();
            first.retain(|&m| m != NIL);
            (Some(rows), first)
        } else {
            (None, first)
        };
        drop(side);
        // Every row once, in order: the partition's columns, in one piece each
        // as a gather would leave them (a shuffle's partition is made of many
        // shards, and a column of many chunks is copied again downstream).
        let left_part = match rows {
            Some(rows) => left.take(&IdxCa::from_vec("".into(), rows))?,
            None => {
                let mut whole = left.clone();
                whole.rechunk_mut_par();
                whole
            }
        };
        let matched = if !inner && unmatched {
            IdxCa::from_iter_options(
                "".into(),
                matched.into_iter().map(|m| (m != NIL).then_some(m)),
            )
        } else {
            IdxCa::from_vec("".into(), matched)
        };
        let right_part = right.drop(right_on)?.take(&matched)?;
        let height = left_part.height();
        let mut columns = left_part.into_columns();
        for column in right_part.into_columns() {
            let name = column.name().clone();
            if columns.iter().any(|c| c.name() == &name) {
                columns.push(column.with_name(format!("{name}{suffix}").into()));
            } else {
                columns.push(column);
            }
        }
        let joined = DataFrame::new(height, columns)?;
        // The same columns as Polars' join, or none.
        let expected = self.polars(left, right).collect_schema()?;
        if joined.schema() != &expected {
            tracing::debug!(
                ours = ?joined.schema(),
                polars = ?expected,
                "own join's columns differ from Polars'; Polars joins"
            );
            return Ok(None);
        }
        Ok(Some(joined))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A frame of key column `key` (of `dtype`) and `columns` of row numbers.
    fn frame(key: &str, keys: &[Option<i8>], dtype: &DataType, columns: &[&str]) -> DataFrame {
        let unsigned = matches!(dtype, DataType::UInt32);
        let keys: Vec<Option<i64>> = keys
            .iter()
            .map(|k| {
                k.map(|k| {
                    if unsigned {
                        i64::from(k).abs()
                    } else {
                        k.into()
                    }
                })
            })
            .collect();
        let mut all = vec![Column::new(key.into(), keys).cast(dtype).unwrap()];
        for (c, name) in columns.iter().enumerate() {
            let values: Vec<f64> = (0..all[0].len()).map(|i| (i * 10 + c) as f64).collect();
            all.push(Column::new((*name).into(), values));
        }
        DataFrame::new(all[0].len(), all).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Rows, their order and the columns are Polars' join's
        /// (`maintain_order` left): nulls, repeated keys on both sides, rows
        /// without a match, clashing column names, `i32`, `i64` and `u32` keys,
        /// empty sides.
        #[test]
        fn equals_polars_join(
            left_keys in prop::collection::vec(prop::option::weighted(0.9, -4i8..12), 0..120),
            right_keys in prop::collection::vec(prop::option::weighted(0.9, -4i8..12), 0..40),
            dtype in prop::sample::select(vec![DataType::Int32, DataType::Int64, DataType::UInt32]),
            inner in any::<bool>(),
            same_key_name in any::<bool>(),
        ) {
            let how = if inner { JoinType::Inner } else { JoinType::Left };
            let right_on = if same_key_name { "key" } else { "rkey" };
            let left = frame("key", &left_keys, &dtype, &["v", "x"]);
            let right = frame(right_on, &right_keys, &dtype, &["w", "v"]);
            let on = JoinOn { left: "key", right: right_on, how: &how, suffix: "_right" };
            let ours = on.own(&left, &right).unwrap().expect("rask's own join takes it");
            let polars = on.polars(&left, &right).collect().unwrap();
            prop_assert!(ours.equals_missing(&polars), "{how:?}\n{ours}\n{polars}");
        }
    }

    #[test]
    fn outer_joins_and_other_keys_are_polars_to_run() {
        assert!(takes(&JoinType::Inner, &DataType::Int64, &DataType::Int64));
        assert!(!takes(&JoinType::Full, &DataType::Int64, &DataType::Int64));
        assert!(!takes(&JoinType::Right, &DataType::Int64, &DataType::Int64));
        assert!(!takes(&JoinType::Inner, &DataType::Int64, &DataType::Int32));
        assert!(!takes(
            &JoinType::Left,
            &DataType::UInt64,
            &DataType::UInt64
        ));
        assert!(!takes(
            &JoinType::Left,
            &DataType::String,
            &DataType::String
        ));
    }

    #[test]
    fn partitions_joined_with_one_side_frame_at_once_share_its_table() {
        let side = frame(
            "key",
            &[Some(1), Some(2), None, Some(2)],
            &DataType::Int64,
            &["w"],
        );
        let column = || key_column(&side, "key").unwrap();
        let first = shared_table(column());
        let built = first
            .table
            .get_or_init(|| Table::build(&first.column.rechunk()));
        // Another task's projection of the same frame: the same buffers.
        let projected = side.select(["key"]).unwrap();
        let second = shared_table(key_column(&projected, "key").unwrap());
        assert!(Arc::ptr_eq(&first, &second));
        assert!(std::ptr::eq(built, second.table.get().unwrap()));
        // Equal values in other buffers are another frame's.
        let copy = frame(
            "key",
            &[Some(1), Some(2), None, Some(2)],
            &DataType::Int64,
            &["w"],
        );
        let other = shared_table(key_column(&copy, "key").unwrap());
        assert!(!Arc::ptr_eq(&first, &other));
        // Once no task holds it, nothing is kept.
        let weak = Arc::downgrade(&first);
        drop((first, second));
        assert!(weak.upgrade().is_none());
        assert!(shared_table(column()).table.get().is_none());
    }
}

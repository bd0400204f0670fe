//! Dataframe checks shared by the in-process tests and the worker-process
//! tests: every result is compared with Polars computing the same thing on the
//! whole frame at once.

// Each test binary uses some of these.
#![allow(dead_code)]

use rask::dataframe::polars::prelude::*;
use rask::dataframe::{self as dd, Agg};
use rask::Client;

/// A frame of `rows` rows from `seed`: skewed string keys with nulls, an
/// integer key, floats and integers with nulls.
pub fn sample(seed: u64, rows: usize) -> DataFrame {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut key = Vec::new();
    let mut group = Vec::new();
    let mut x = Vec::new();
    let mut n = Vec::new();
    for _ in 0..rows {
        let r = next();
        // Skewed: half the rows in key "a".
        key.push(match r % 16 {
            0 => None,
            1..=8 => Some("a".to_string()),
            k => Some(format!("k{}", k % 5)),
        });
        group.push((r >> 8) as i64 % 3);
        x.push(((r >> 16) % 7 != 0).then(|| ((r >> 20) % 1000) as f64 / 10.0 - 20.0));
        n.push(((r >> 40) % 5 != 0).then(|| ((r >> 44) % 100) as i64 - 30));
    }
    df!("key" => key, "group" => group, "x" => x, "n" => n).unwrap()
}

/// Equal frames, floats to 1e-9 relative.
pub fn close(a: &DataFrame, b: &DataFrame) -> Result<(), String> {
    if a.shape() != b.shape() || a.get_column_names() != b.get_column_names() {
        return Err(format!("shapes or names differ:\n{a}\n{b}"));
    }
    for (ca, cb) in a.columns().iter().zip(b.columns()) {
        let (sa, sb) = (ca.as_materialized_series(), cb.as_materialized_series());
        if sa.dtype().is_float() {
            let (fa, fb) = (
                sa.f64().map_err(|e| e.to_string())?,
                sb.cast(&DataType::Float64).map_err(|e| e.to_string())?,
            );
            let fb = fb.f64().map_err(|e| e.to_string())?;
            for (va, vb) in fa.iter().zip(fb.iter()) {
                let same = match (va, vb) {
                    (None, None) => true,
                    (Some(p), Some(q)) => {
                        (p - q).abs() <= 1e-9 * (1.0 + p.abs().max(q.abs()))
                            || (p.is_nan() && q.is_nan())
                    }
                    _ => false,
                };
                if !same {
                    return Err(format!("column {}: {va:?} vs {vb:?}\n{a}\n{b}", sa.name()));
                }
            }
        } else if !sa.equals_missing(sb) {
            return Err(format!("column {} differs:\n{a}\n{b}", sa.name()));
        }
    }
    Ok(())
}

fn direct(frame: &DataFrame, build: impl FnOnce(LazyFrame) -> LazyFrame) -> DataFrame {
    build(frame.clone().lazy()).collect().unwrap()
}

/// Row-wise operations, `len`, `head`, `tail`: equal to Polars on the whole frame.
pub fn rowwise(client: &Client, seed: u64, rows: usize, parts: usize) -> Result<(), String> {
    let frame = sample(seed, rows);
    let lazy = dd::DataFrame::from_polars(frame.clone(), parts).map_err(|e| e.to_string())?;
    let e = |e: dd::DataFrameError| e.to_string();
    let got = lazy
        .filter(col("x").gt(lit(0.0)))
        .and_then(|d| d.assign("y", col("x") * lit(2.0) + col("n").cast(DataType::Float64)))
        .and_then(|d| d.rename(&[("group", "g")]))
        .and_then(|d| d.drop(&["n"]))
        .and_then(|d| d.compute(client))
        .map_err(e)?;
    let want = direct(&frame, |f| {
        f.filter(col("x").gt(lit(0.0)))
            .with_column((col("x") * lit(2.0) + col("n").cast(DataType::Float64)).alias("y"))
            .rename(["group"], ["g"], true)
            .drop(Selector::ByName {
                names: ["n".into()].into(),
                strict: true,
            })
    });
    close(&got, &want)?;
    let got = lazy
        .dropna(Some(&["x"]))
        .and_then(|d| d.compute(client))
        .map_err(e)?;
    close(
        &got,
        &direct(&frame, |f| {
            f.drop_nulls(Some(Selector::ByName {
                names: ["x".into()].into(),
                strict: true,
            }))
        }),
    )?;
    let got = lazy
        .select_columns(&["x", "n"])
        .and_then(|d| d.fillna(lit(0)))
        .and_then(|d| d.astype(&[("n", DataType::Float64)]))
        .and_then(|d| d.compute(client))
        .map_err(e)?;
    let want = direct(&frame, |f| {
        f.select([
            col("x").fill_null(lit(0)),
            col("n").fill_null(lit(0)).strict_cast(DataType::Float64),
        ])
    });
    close(&got, &want)?;
    let n = lazy.len(client).map_err(e)?;
    if n != rows {
        return Err(format!("len {n}, expected {rows}"));
    }
    for k in [0, 1, 7, rows / 2 + 3] {
        close(&lazy.head(k, client).map_err(e)?, &frame.head(Some(k)))?;
        close(&lazy.tail(k, client).map_err(e)?, &frame.tail(Some(k)))?;
    }
    Ok(())
}

/// Every aggregation groupby and resample take.
const EVERY_AGG: [Agg; 11] = [
    Agg::Sum,
    Agg::Mean,
    Agg::Count,
    Agg::Size,
    Agg::Min,
    Agg::Max,
    Agg::Std,
    Agg::Var,
    Agg::First,
    Agg::Last,
    Agg::Nunique,
];

/// The reference for one aggregation, as pandas means it.
fn reference(column: &str, agg: Agg) -> Expr {
    let c = col(column);
    match agg {
        Agg::Sum => c.sum(),
        Agg::Mean => c.cast(DataType::Float64).mean(),
        Agg::Count => c.count(),
        Agg::Size => len(),
        Agg::Min => c.min(),
        Agg::Max => c.max(),
        Agg::Std => c.cast(DataType::Float64).std(1),
        Agg::Var => c.cast(DataType::Float64).var(1),
        Agg::First => c.drop_nulls().first(),
        Agg::Last => c.drop_nulls().last(),
        Agg::Nunique => c.drop_nulls().n_unique().cast(DataType::UInt64),
    }
}

/// Every aggregation, by one and by two keys: equal to Polars on the whole frame.
pub fn groupby(client: &Client, seed: u64, rows: usize, parts: usize) -> Result<(), String> {
    let frame = sample(seed, rows);
    let lazy = dd::DataFrame::from_polars(frame.clone(), parts).map_err(|e| e.to_string())?;
    let aggs = EVERY_AGG;
    for keys in [&["key"][..], &["key", "group"][..]] {
        for column in ["x", "n"] {
            let pairs: Vec<(&str, Agg)> = aggs.iter().map(|a| (column, *a)).collect();
            let got = lazy
                .groupby(keys)
                .agg(&pairs)
                .and_then(|d| d.compute(client))
                .map_err(|e| e.to_string())?;
            let exprs: Vec<Expr> = aggs
                .iter()
                .map(|a| reference(column, *a).alias(format!("{column}_{}", a.name())))
                .collect();
            let want = direct(&frame, |f| {
                let key_exprs: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
                f.drop_nulls(Some(Selector::ByName {
                    names: keys.iter().map(|k| (*k).into()).collect(),
                    strict: true,
                }))
                .group_by(key_exprs)
                .agg(exprs)
                .sort(
                    keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
                    SortMultipleOptions::default().with_nulls_last(true),
                )
            });
            close(&got, &want).map_err(|e| format!("groupby {keys:?} of {column}: {e}"))?;
        }
    }
    Ok(())
}

/// `value_counts`, `unique`, `nunique`, `drop_duplicates`, `repartition` and
/// `merge` (every `how`): equal to Polars on the whole frame.
pub fn relational(client: &Client, seed: u64, rows: usize, parts: usize) -> Result<(), String> {
    let e = |e: dd::DataFrameError| e.to_string();
    let frame = sample(seed, rows);
    let lazy = dd::DataFrame::from_polars(frame.clone(), parts).map_err(e)?;
    let keys = Selector::ByName {
        names: ["key".into()].into(),
        strict: true,
    };
    let got = lazy
        .value_counts("key")
        .and_then(|d| d.compute(client))
        .map_err(e)?;
    let want = direct(&frame, |f| {
        f.drop_nulls(Some(keys.clone()))
            .group_by([col("key")])
            .agg([len().cast(DataType::UInt64).alias("count")])
            .sort(
                ["count", "key"],
                SortMultipleOptions::default().with_order_descending_multi([true, false]),
            )
    });
    close(&got, &want).map_err(|m| format!("value_counts: {m}"))?;
    let got = lazy
        .unique("key")
        .and_then(|d| d.compute(client))
        .map_err(e)?;
    let want = direct(&frame, |f| {
        f.select([col("key")])
            .unique_stable(None, UniqueKeepStrategy::First)
    });
    close(&got, &want).map_err(|m| format!("unique: {m}"))?;
    let n = lazy.nunique("group", client).map_err(e)?;
    let want_n = frame
        .column("group")
        .unwrap()
        .as_materialized_series()
        .drop_nulls()
        .n_unique()
        .unwrap();
    if n != want_n {
        return Err(format!("nunique {n}, Polars {want_n}"));
    }
    for subset in [None, Some(&["key", "group"][..])] {
        let got = lazy
            .drop_duplicates(subset)
            .and_then(|d| d.compute(client))
            .map_err(e)?;
        let sel = subset.map(|s| Selector::ByName {
            names: s.iter().map(|c| (*c).into()).collect(),
            strict: true,
        });
        let want = direct(&frame, |f| f.unique_stable(sel, UniqueKeepStrategy::First));
        close(&got, &want).map_err(|m| format!("drop_duplicates {subset:?}: {m}"))?;
        // Shuffled into 3 partitions: the same rows (the first of equal ones).
        let split = lazy.drop_duplicates_split_out(subset, 3).map_err(e)?;
        let got = split.compute(client).map_err(e)?;
        close(&order(&got), &order(&want))
            .map_err(|m| format!("drop_duplicates {subset:?}, split_out 3: {m}"))?;
    }
    let split = lazy.value_counts_split_out("key", 3).map_err(e)?;
    if split.npartitions() != 3 {
        return Err(format!(
            "value_counts split_out 3: {} partitions",
            split.npartitions()
        ));
    }
    let got = split.compute(client).map_err(e)?;
    let want = direct(&frame, |f| {
        f.drop_nulls(Some(keys.clone()))
            .group_by([col("key")])
            .agg([len().cast(DataType::UInt64).alias("count")])
    });
    close(&order(&got), &order(&want)).map_err(|m| format!("value_counts split_out 3: {m}"))?;
    let got = lazy
        .unique_split_out("key", 3)
        .and_then(|d| d.compute(client))
        .map_err(e)?;
    let want = direct(&frame, |f| {
        f.select([col("key")])
            .unique(None, UniqueKeepStrategy::First)
    });
    close(&order(&got), &order(&want)).map_err(|m| format!("unique split_out 3: {m}"))?;
    for n in [1, parts + 3, (parts / 2).max(1)] {
        let moved = lazy.repartition(n).map_err(e)?;
        if moved.npartitions() != n {
            return Err(format!("repartition({n}) gave {}", moved.npartitions()));
        }
        close(&moved.compute(client).map_err(e)?, &frame)
            .map_err(|m| format!("repartition({n}): {m}"))?;
    }
    // By size: every partition within the limit (one piece of a partition
    // may be alone), the rows and their order kept.
    let bytes = frame.estimated_size() as u64;
    let mut limits = vec![bytes / 7 + 1, bytes / 2 + 1, bytes * 2 + 1];
    if rows < 100 {
        // A row per partition.
        limits.push(1);
    }
    for limit in limits {
        let moved = lazy.repartition_size(limit, client).map_err(e)?;
        let parts = moved.compute_partitions(client).map_err(e)?;
        let whole = parts.iter().skip(1).fold(parts[0].clone(), |mut all, p| {
            all.vstack_mut(p).unwrap();
            all
        });
        close(&whole, &frame).map_err(|m| format!("repartition_size({limit}): {m}"))?;
        if limit > bytes && parts.len() != 1 {
            return Err(format!(
                "repartition_size({limit}) of {bytes} bytes gave {} partitions",
                parts.len()
            ));
        }
        let rows_per_part = (limit as f64 / bytes.max(1) as f64 * rows as f64).ceil() as usize;
        if let Some(big) = parts.iter().find(|p| p.height() > rows_per_part.max(1) * 2) {
            return Err(format!(
                "repartition_size({limit}): a partition of {} rows, about {rows_per_part} wanted",
                big.height()
            ));
        }
    }
    // A small table of group names, joined every way.
    let names = df!("group" => [0i64, 1, 5], "label" => ["zero", "one", "five"]).unwrap();
    let small = dd::DataFrame::from_polars(names.clone(), 2).map_err(e)?;
    for how in [
        dd::How::Inner,
        dd::How::Left,
        dd::How::Right,
        dd::How::Outer,
    ] {
        let joined = if matches!(how, dd::How::Inner | dd::How::Left) {
            lazy.clone()
        } else {
            lazy.repartition(parts.min(8)).map_err(e)?
        };
        let got = joined
            .merge(&small, &["group"], how)
            .and_then(|d| d.compute(client))
            .map_err(e)?;
        let want = polars_join(&frame, &names, "group", how);
        // Row order within a join is Polars' business: compare sorted.
        close(&order(&got), &order(&want)).map_err(|m| format!("merge {how:?}: {m}"))?;
    }
    Ok(())
}

/// Polars' join of `left` and `right` on column `on`, as `merge` means `how`.
fn polars_join(left: &DataFrame, right: &DataFrame, on: &str, how: dd::How) -> DataFrame {
    let how = match how {
        dd::How::Inner => JoinType::Inner,
        dd::How::Left => JoinType::Left,
        dd::How::Right => JoinType::Right,
        dd::How::Outer => JoinType::Full,
    };
    direct(left, |f| {
        f.join(
            right.clone().lazy(),
            [col(on)],
            [col(on)],
            JoinArgs::new(how).with_suffix(Some("_right".into())),
        )
    })
}

/// Rows sorted by every column, for results whose row order is not defined.
pub fn order(d: &DataFrame) -> DataFrame {
    let by: Vec<String> = d.get_column_names().iter().map(|c| c.to_string()).collect();
    d.sort(
        by,
        SortMultipleOptions::default()
            .with_nulls_last(true)
            .with_maintain_order(true),
    )
    .unwrap()
}

/// Everything that moves rows between partitions peer to peer: `shuffle`,
/// `sort_values` (both ways, one and two keys), shuffle joins of two
/// partitioned frames (every `how`) and groupbys with `split_out`; equal to
/// Polars on the whole frame.
pub fn shuffled(client: &Client, seed: u64, rows: usize, parts: usize) -> Result<(), String> {
    let e = |e: dd::DataFrameError| e.to_string();
    let frame = sample(seed, rows);
    let lazy = dd::DataFrame::from_polars(frame.clone(), parts).map_err(e)?;

    // shuffle: the same rows, each key in exactly one partition.
    let outputs = parts + 2;
    let moved = lazy.shuffle(&["key", "group"], outputs).map_err(e)?;
    let pieces = moved.compute_partitions(client).map_err(e)?;
    if pieces.len() != outputs {
        return Err(format!(
            "shuffle gave {} partitions, not {outputs}",
            pieces.len()
        ));
    }
    let mut seen = std::collections::HashMap::new();
    for (i, piece) in pieces.iter().enumerate() {
        let keys = piece
            .select(["key", "group"])
            .unwrap()
            .unique_stable(None, UniqueKeepStrategy::First, None)
            .unwrap();
        for row in 0..keys.height() {
            let key = format!("{:?}", keys.get_row(row).unwrap().0);
            if let Some(other) = seen.insert(key.clone(), i) {
                return Err(format!("shuffle: key {key} in partitions {other} and {i}"));
            }
        }
    }
    close(&order(&moved.compute(client).map_err(e)?), &order(&frame))
        .map_err(|m| format!("shuffle: {m}"))?;

    // sort_values: the whole frame in order, stable, nulls last.
    for (by, descending) in [
        (&["x"][..], false),
        (&["x"][..], true),
        (&["key", "n"][..], false),
        (&["n", "x"][..], true),
    ] {
        let got = lazy
            .sort_values(by, descending)
            .and_then(|d| d.compute(client))
            .map_err(e)?;
        let want = frame
            .sort(
                by.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                SortMultipleOptions::default()
                    .with_order_descending(descending)
                    .with_nulls_last(true)
                    .with_maintain_order(true),
            )
            .unwrap();
        close(&got, &want)
            .map_err(|m| format!("sort_values {by:?} descending {descending}: {m}"))?;
    }

    // Shuffle joins: neither side small enough to broadcast.
    let codes: Vec<i64> = (-30..70).collect();
    let labels: Vec<String> = codes.iter().map(|c| format!("n{c}")).collect();
    let table = df!("n" => codes, "label" => labels).unwrap();
    let right = dd::DataFrame::from_polars(table.clone(), 9).map_err(e)?;
    for how in [
        dd::How::Inner,
        dd::How::Left,
        dd::How::Right,
        dd::How::Outer,
    ] {
        let got = lazy
            .merge(&right, &["n"], how)
            .and_then(|d| d.compute(client))
            .map_err(e)?;
        let want = polars_join(&frame, &table, "n", how);
        close(&order(&got), &order(&want)).map_err(|m| format!("shuffle join {how:?}: {m}"))?;
    }

    // groupby with split_out: the tree's result, spread over partitions.
    let pairs = [
        ("x", Agg::Mean),
        ("n", Agg::Sum),
        ("x", Agg::Std),
        ("n", Agg::Nunique),
    ];
    for keys in [&["key"][..], &["key", "group"][..]] {
        let tree = lazy
            .groupby(keys)
            .agg(&pairs)
            .and_then(|d| d.compute(client))
            .map_err(e)?;
        let spread = lazy.groupby(keys).split_out(3).agg(&pairs).map_err(e)?;
        if spread.npartitions() != 3 {
            return Err(format!(
                "split_out(3) gave {} partitions",
                spread.npartitions()
            ));
        }
        let got = spread.compute(client).map_err(e)?;
        close(&order(&got), &order(&tree))
            .map_err(|m| format!("groupby {keys:?} split_out: {m}"))?;
    }
    Ok(())
}

/// `set_index` then `loc` on a random frame of `rows` rows in `parts`
/// partitions: the rows in index order (stable, nulls last), divisions that
/// bound every partition, and ranges that read only the partitions that can
/// hold them and equal a filter of the whole frame.
pub fn indexed(client: &Client, seed: u64, rows: usize, parts: usize) -> Result<(), String> {
    let e = |e: dd::DataFrameError| e.to_string();
    let frame = sample(seed, rows);
    let lazy = dd::DataFrame::from_polars(frame.clone(), parts).map_err(e)?;
    let order = |column: &str| {
        frame
            .sort(
                [column],
                SortMultipleOptions::default()
                    .with_nulls_last(true)
                    .with_maintain_order(true),
            )
            .unwrap()
    };
    for column in ["n", "key", "x"] {
        let indexed = lazy.set_index(column, client).map_err(e)?;
        if indexed.index() != Some(column) {
            return Err(format!("{column}: index {:?}", indexed.index()));
        }
        let partitions = indexed.compute_partitions(client).map_err(e)?;
        let stacked = partitions
            .iter()
            .skip(1)
            .fold(partitions[0].clone(), |mut all, p| {
                all.vstack_mut(p).unwrap();
                all
            });
        close(&stacked, &order(column)).map_err(|m| format!("set_index({column}): {m}"))?;
        // Divisions bound every partition's values.
        if let Some(divisions) = indexed.divisions() {
            if divisions.len() != parts + 1 {
                return Err(format!(
                    "{column}: {} divisions for {parts}",
                    divisions.len()
                ));
            }
            for (i, part) in partitions.iter().enumerate() {
                let values = part
                    .column(column)
                    .unwrap()
                    .as_materialized_series()
                    .drop_nulls();
                if values.is_empty() {
                    continue;
                }
                let low = divisions.slice(i as i64, 1);
                let high = divisions.slice(i as i64 + 1, 1);
                let min = values.min_reduce().unwrap().into_series("".into());
                let max = values.max_reduce().unwrap().into_series("".into());
                let below = min.lt(&low.cast(min.dtype()).unwrap()).unwrap().any();
                let above = if i + 1 == parts {
                    max.gt(&high.cast(max.dtype()).unwrap()).unwrap().any()
                } else {
                    max.gt_eq(&high.cast(max.dtype()).unwrap()).unwrap().any()
                };
                if below || above {
                    return Err(format!(
                        "{column}: partition {i} ({min}..{max}) outside {divisions}"
                    ));
                }
            }
        } else if frame.column(column).unwrap().null_count() < rows {
            return Err(format!("{column}: no divisions"));
        }
    }
    // Ranges of an integer index against a filter of the whole frame.
    let by_n = lazy.set_index("n", client).map_err(e)?;
    let sorted = order("n");
    let check = |name: &str, got: dd::DataFrame, keep: Expr| -> Result<usize, String> {
        let want = sorted.clone().lazy().filter(keep).collect().unwrap();
        let reads = got.npartitions();
        close(&got.compute(client).map_err(e)?, &want).map_err(|m| format!("loc {name}: {m}"))?;
        Ok(reads)
    };
    for (a, b) in [
        (-30i64, 69i64),
        (0, 10),
        (5, 5),
        (40, 20),
        (-100, -50),
        (60, 200),
    ] {
        let reads = check(
            &format!("{a}..={b}"),
            by_n.loc(a..=b).map_err(e)?,
            col("n").gt_eq(lit(a)).and(col("n").lt_eq(lit(b))),
        )?;
        if a == b && parts > 2 && rows > 1000 && reads > 2 {
            return Err(format!("loc {a}..={b} read {reads} of {parts} partitions"));
        }
        check(
            &format!("{a}..{b}"),
            by_n.loc(a..b).map_err(e)?,
            col("n").gt_eq(lit(a)).and(col("n").lt(lit(b))),
        )?;
        check(
            &format!("{a}.."),
            by_n.loc(a..).map_err(e)?,
            col("n").gt_eq(lit(a)),
        )?;
        check(
            &format!("..={b}"),
            by_n.loc(..=b).map_err(e)?,
            col("n").lt_eq(lit(b)),
        )?;
    }
    // A text index.
    let by_key = lazy.set_index("key", client).map_err(e)?;
    let want = order("key")
        .lazy()
        .filter(col("key").gt_eq(lit("k1")).and(col("key").lt_eq(lit("k3"))))
        .collect()
        .unwrap();
    let got = by_key
        .loc("k1"..="k3")
        .and_then(|d| d.compute(client))
        .map_err(e)?;
    close(&got, &want).map_err(|m| format!("loc k1..=k3: {m}"))?;
    // Row filters and new columns keep the index; a groupby does not.
    let kept = by_n
        .filter(col("x").gt(lit(0.0)))
        .and_then(|d| d.with_column(col("x").alias("y")))
        .map_err(e)?;
    if kept.index() != Some("n") || kept.divisions() != by_n.divisions() {
        return Err("filter and with_column lost the index".into());
    }
    let renamed = by_n.rename(&[("n", "m")]).map_err(e)?;
    if renamed.index() != Some("m") {
        return Err(format!("rename: index {:?}", renamed.index()));
    }
    if by_n.groupby(&["key"]).sum().map_err(e)?.index().is_some() {
        return Err("a groupby kept the index".into());
    }
    // Bad input: loc without an index; a bound of the wrong type.
    let none = lazy
        .loc(0i64..=1)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    if !none.contains("set_index") {
        return Err(format!("loc without an index: {none:?}"));
    }
    let wrong = by_n
        .loc("a"..="b")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    if !wrong.contains("loc") {
        return Err(format!(
            "loc with text bounds on an integer index: {wrong:?}"
        ));
    }
    Ok(())
}

/// A time series of `rows` rows from `seed`: strictly increasing times
/// (millisecond `Datetime`, gaps of 1 to 40 minutes, so some bins are empty)
/// in shuffled order, floats and integers with nulls.
pub fn series(seed: u64, rows: usize) -> DataFrame {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut t = 1_704_067_200_000i64; // 2024-01-01
    let mut rows_out = Vec::with_capacity(rows);
    for _ in 0..rows {
        let r = next();
        t += (1 + (r % 40) as i64) * 60_000 + ((r >> 8) % 1000) as i64;
        let x = ((r >> 16) % 6 != 0).then(|| ((r >> 20) % 1000) as f64 / 10.0 - 20.0);
        let n = ((r >> 40) % 5 != 0).then(|| ((r >> 44) % 100) as i64 - 30);
        rows_out.push((next(), t, x, n));
    }
    rows_out.sort_by_key(|row| row.0);
    let times: Vec<i64> = rows_out.iter().map(|r| r.1).collect();
    let t = Series::new("t".into(), times)
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap();
    let x: Vec<Option<f64>> = rows_out.iter().map(|r| r.2).collect();
    let n: Vec<Option<i64>> = rows_out.iter().map(|r| r.3).collect();
    DataFrame::new(
        rows,
        vec![
            t.into(),
            Series::new("x".into(), x).into(),
            Series::new("n".into(), n).into(),
        ],
    )
    .unwrap()
}

/// `resample` with every aggregation and `rolling` by rows and by time span
/// over a datetime index: equal to Polars on the whole sorted frame (resample
/// bin by bin, so empty bins are checked against aggregations of no rows).
pub fn windows(client: &Client, seed: u64, rows: usize, parts: usize) -> Result<(), String> {
    let e = |e: dd::DataFrameError| e.to_string();
    let frame = series(seed, rows);
    let sorted = frame
        .sort(["t"], SortMultipleOptions::default())
        .map_err(|e| e.to_string())?;
    // Persisted once (keeping the index and its divisions).
    let indexed = dd::DataFrame::from_polars(frame, parts)
        .and_then(|d| d.set_index("t", client))
        .and_then(|d| d.persist(client))
        .map_err(e)?;
    if indexed.index() != Some("t") {
        return Err(format!("persist lost the index: {:?}", indexed.index()));
    }
    let aggs = EVERY_AGG;
    let dtype = DataType::Datetime(TimeUnit::Milliseconds, None);
    for (rule, every) in [
        ("1h", 3_600_000i64),
        ("15min", 900_000),
        ("1D", 86_400_000),
        ("7min", 420_000),
    ] {
        for column in ["x", "n"] {
            let pairs: Vec<(&str, Agg)> = aggs.iter().map(|a| (column, *a)).collect();
            let got = indexed
                .resample(rule)
                .and_then(|r| r.agg(&pairs))
                .and_then(|d| d.compute(client))
                .map_err(e)?;
            // Each row's bin by integer arithmetic, the bins with rows
            // grouped by Polars, and every empty bin given the aggregations of
            // no rows at all.
            let ticks = sorted.column("t").unwrap().cast(&DataType::Int64).unwrap();
            let ticks = ticks.i64().unwrap();
            let named: Vec<Expr> = aggs
                .iter()
                .map(|a| reference(column, *a).alias(format!("{column}_{}", a.name())))
                .collect();
            let mut want: Option<DataFrame> = None;
            if let (Some(first), Some(last)) = (ticks.min(), ticks.max()) {
                let bin = |t: i64| t.div_euclid(every) * every;
                let bins: Vec<i64> = ticks.iter().map(|t| bin(t.unwrap())).collect();
                let mut with_bins = sorted.clone();
                with_bins
                    .with_column(Series::new("bin".into(), bins).into())
                    .unwrap();
                let grouped = direct(&with_bins, |f| {
                    f.group_by([col("bin")])
                        .agg(named.clone())
                        .with_column(lit(true).alias("present"))
                });
                let empty = direct(&sorted.head(Some(0)), |f| f.select(named.clone()));
                let all: Vec<i64> = (0..=(bin(last) - bin(first)) / every)
                    .map(|k| bin(first) + k * every)
                    .collect();
                let filled: Vec<Expr> = empty
                    .columns()
                    .iter()
                    .map(|c| {
                        let name = c.name().as_str();
                        when(col("present").is_null())
                            .then(lit(c.as_materialized_series().clone()).first())
                            .otherwise(col(name))
                            .alias(name)
                    })
                    .collect();
                let frame = df!("bin" => all).unwrap();
                let mut args = JoinArgs::new(JoinType::Left);
                args.maintain_order = MaintainOrderJoin::Left;
                let mut exprs = vec![col("bin").cast(dtype.clone()).alias("t")];
                exprs.extend(filled);
                want = Some(direct(&frame, |f| {
                    f.join(grouped.lazy(), [col("bin")], [col("bin")], args)
                        .select(exprs)
                }));
            }
            let want = want.unwrap_or_else(|| got.clone());
            close(&got, &want).map_err(|m| format!("resample({rule}) of {column}: {m}"))?;
        }
    }
    // Rolling windows of rows (shorter and longer than a partition) and of time.
    for window in [
        dd::Window::Rows(1),
        dd::Window::Rows(3),
        dd::Window::Rows(50),
        dd::Window::from("30min"),
        dd::Window::from("1D"),
    ] {
        let rolled = [Agg::Sum, Agg::Mean, Agg::Min, Agg::Max, Agg::Std, Agg::Var];
        let pairs: Vec<(&str, Agg)> = ["x", "n"]
            .iter()
            .flat_map(|c| rolled.iter().map(move |a| (*c, *a)))
            .collect();
        let got = indexed
            .rolling(window.clone())
            .and_then(|r| r.agg(&pairs))
            .and_then(|d| d.compute(client))
            .map_err(e)?;
        let roll = |c: &str, agg: Agg| -> Expr {
            match &window {
                dd::Window::Rows(n) => {
                    let o = RollingOptionsFixedWindow {
                        window_size: *n,
                        min_periods: *n,
                        ..Default::default()
                    };
                    match agg {
                        Agg::Sum => col(c).rolling_sum(o),
                        Agg::Mean => col(c).rolling_mean(o),
                        Agg::Min => col(c).rolling_min(o),
                        Agg::Max => col(c).rolling_max(o),
                        Agg::Std => col(c).rolling_std(o),
                        _ => col(c).rolling_var(o),
                    }
                }
                dd::Window::Span(span) => {
                    let o = RollingOptionsDynamicWindow {
                        window_size: Duration::parse(&span.replace("min", "m").to_lowercase()),
                        min_periods: 1,
                        closed_window: ClosedWindow::Right,
                        fn_params: None,
                    };
                    match agg {
                        Agg::Sum => col(c).rolling_sum_by(col("t"), o),
                        Agg::Mean => col(c).rolling_mean_by(col("t"), o),
                        Agg::Min => col(c).rolling_min_by(col("t"), o),
                        Agg::Max => col(c).rolling_max_by(col("t"), o),
                        Agg::Std => col(c).rolling_std_by(col("t"), o),
                        _ => col(c).rolling_var_by(col("t"), o),
                    }
                }
            }
        };
        let mut exprs = vec![col("t")];
        exprs.extend(
            pairs
                .iter()
                .map(|(c, a)| roll(c, *a).alias(format!("{c}_{}", a.name()))),
        );
        let want = direct(&sorted, |f| f.select(exprs));
        close(&got, &want).map_err(|m| format!("rolling {window:?}: {m}"))?;
    }
    Ok(())
}

/// `split_out_by_size` picks a tree for few groups and a shuffle into several
/// partitions for many (unique ids), and both results equal Polars.
/// 40,000 rows: about 1.6 MB of groups by `id`, six times the 256 KiB target.
pub fn automatic_split_out(client: &Client, seed: u64, parts: usize) -> Result<(), String> {
    let err = |e: dd::DataFrameError| e.to_string();
    let rows = 40_000;
    let few = sample(seed, rows);
    let ids: Vec<i64> = (0..rows as i64).map(|i| (i * 7919) % rows as i64).collect();
    let many = df!("id" => ids, "v" => (0..rows as i64).collect::<Vec<_>>()).unwrap();
    // Never more output partitions than input ones: one partition stays one.
    for (frame, key, column, expect_many) in
        [(few, "key", "n", false), (many, "id", "v", parts > 1)]
    {
        let lazy = dd::DataFrame::from_polars(frame.clone(), parts).map_err(err)?;
        let grouped = lazy
            .groupby(&[key])
            .split_out_by_size(256 << 10, client)
            .map_err(err)?;
        let chosen = grouped.output_partitions();
        if expect_many != (chosen > 1) {
            return Err(format!(
                "split_out for {key} ({rows} rows in {parts}) is {chosen}"
            ));
        }
        let result = grouped
            .agg(&[(column, Agg::Sum), (column, Agg::Count)])
            .map_err(err)?;
        if result.npartitions() != chosen {
            return Err(format!("{} partitions, not {chosen}", result.npartitions()));
        }
        let got = order(&result.compute(client).map_err(err)?);
        let want = direct(&frame, |f| {
            f.drop_nulls(Some(Selector::ByName {
                names: [key.into()].into(),
                strict: true,
            }))
            .group_by([col(key)])
            .agg([
                col(column).sum().alias(format!("{column}_sum")),
                col(column).count().alias(format!("{column}_count")),
            ])
        });
        close(&got, &order(&want)).map_err(|e| format!("split_out {chosen} by {key}: {e}"))?;
    }
    Ok(())
}

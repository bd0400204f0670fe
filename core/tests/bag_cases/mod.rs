//! Bag cases shared by the embedded-cluster tests and the worker-process
//! tests: each builds a bag, computes it on the client it is given, and
//! compares with the same computation done directly in Rust on the items.

#![allow(dead_code)]

use rask::bag::{field, item, json, Bag, Binop, Func, Json};
use rask::Client;
use std::collections::HashMap;

/// Random records: a skewed text key (some missing), a number, a list of words.
pub fn records(seed: u64, n: usize) -> Vec<Json> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let words = ["apple", "Pear", "fig", "kiwi", "plum", "lime", "date", "é"];
    (0..n)
        .map(|i| {
            // Skewed: half the records share key "k0".
            let key = if next(2) == 0 {
                "k0".to_string()
            } else {
                format!("k{}", next(20))
            };
            let count = next(6);
            let text: Vec<&str> = (0..count).map(|_| words[next(8) as usize]).collect();
            let mut record = json!({"id": i, "n": next(100) as i64 - 50, "text": text.join(" ")});
            if next(10) != 0 {
                record["key"] = json!(key);
            }
            record
        })
        .collect()
}

fn expect_eq(what: &str, got: &[Json], want: &[Json]) -> Result<(), String> {
    if got != want {
        let show = |v: &[Json]| {
            let text = serde_json::to_string(v).unwrap();
            text.chars().take(400).collect::<String>()
        };
        return Err(format!("{what}: got {} want {}", show(got), show(want)));
    }
    Ok(())
}

fn words_of(items: &[Json]) -> Vec<Json> {
    items
        .iter()
        .flat_map(|r| {
            r["text"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .split_whitespace()
                .map(|w| json!(w))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `[item, count]` pairs, most frequent first, ties in JSON order.
pub fn frequencies(items: &[Json]) -> Vec<Json> {
    let mut counts: Vec<(Json, u64)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for item in items {
        let slot = *index.entry(item.to_string()).or_insert_with(|| {
            counts.push((item.clone(), 0));
            counts.len() - 1
        });
        counts[slot].1 += 1;
    }
    counts.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| rask::bag::json_order(&a.0, &b.0))
    });
    counts.into_iter().map(|(k, n)| json!([k, n])).collect()
}

/// map, filter, flatten, pluck, distinct, frequencies, topk, fold, foldby,
/// count/sum/min/max and take against direct computations. `custom_ops`: the
/// client's cluster runs this test binary's ops (an embedded cluster).
pub fn operations(
    client: &Client,
    seed: u64,
    n: usize,
    parts: usize,
    custom_ops: bool,
) -> Result<(), String> {
    let items = records(seed, n);
    let bag = Bag::from_sequence(items.clone(), parts);
    let e = |e: rask::bag::BagError| e.to_string();

    // map + flatten + frequencies: word counts.
    let words = bag
        .pluck("text")
        .and_then(|b| b.map(Func::Lower.then(Func::split_whitespace())))
        .and_then(|b| b.flatten())
        .map_err(e)?;
    let want_words = words_of(&items);
    expect_eq("words", &words.compute(client).map_err(e)?, &want_words)?;
    expect_eq(
        "frequencies",
        &words.frequencies().map_err(e)?.compute(client).map_err(e)?,
        &frequencies(&want_words),
    )?;

    // filter on a field and on the item itself.
    let positive: Vec<Json> = items
        .iter()
        .filter(|r| r["n"].as_i64().unwrap() > 0)
        .cloned()
        .collect();
    let got = bag
        .filter(field("n").gt(0))
        .map_err(e)?
        .compute(client)
        .map_err(e)?;
    expect_eq("filter n > 0", &got, &positive)?;
    let ns: Vec<Json> = items.iter().map(|r| r["n"].clone()).collect();
    let small: Vec<Json> = ns
        .iter()
        .filter(|v| v.as_i64().unwrap() <= -10)
        .cloned()
        .collect();
    let got = bag
        .pluck("n")
        .and_then(|b| b.filter(item().le(-10)))
        .map_err(e)?
        .compute(client)
        .map_err(e)?;
    expect_eq("filter item <= -10", &got, &small)?;

    // distinct keys (missing ones null), in order of first appearance.
    let keys: Vec<Json> = items
        .iter()
        .map(|r| r.get("key").cloned().unwrap_or(Json::Null))
        .collect();
    let mut want_distinct = Vec::new();
    for k in &keys {
        if !want_distinct.contains(k) {
            want_distinct.push(k.clone());
        }
    }
    let got = bag
        .pluck_or("key", Json::Null)
        .and_then(|b| b.distinct())
        .map_err(e)?
        .compute(client)
        .map_err(e)?;
    expect_eq("distinct", &got, &want_distinct)?;

    // topk by a field, and of plain numbers.
    let mut by_n = items.clone();
    by_n.sort_by(|a, b| b["n"].as_i64().cmp(&a["n"].as_i64()));
    let got = bag
        .topk(5, Some(Func::get("n")))
        .map_err(e)?
        .compute(client)
        .map_err(e)?;
    let got_n: Vec<Json> = got.iter().map(|r| r["n"].clone()).collect();
    let want_n: Vec<Json> = by_n.iter().take(5).map(|r| r["n"].clone()).collect();
    expect_eq("topk by n", &got_n, &want_n)?;

    // fold, count, sum, min, max.
    let sum: i64 = ns.iter().map(|v| v.as_i64().unwrap()).sum();
    let scalar = |s: Result<rask::bag::Scalar, rask::bag::BagError>| -> Result<Json, String> {
        s.map_err(e)?.compute(client).map_err(e)
    };
    let numbers = bag.pluck("n").map_err(e)?;
    if scalar(numbers.sum())? != json!(sum) {
        return Err(format!("sum: want {sum}"));
    }
    if scalar(bag.count())? != json!(n) {
        return Err(format!("count: want {n}"));
    }
    let folded = scalar(numbers.fold(Binop::Sum, None, Some(json!(1000))));
    // Dask's fold starts every partition from `initial`.
    if n > 0 && folded? != json!(sum + 1000 * parts as i64) {
        return Err("fold with initial".into());
    }
    if n > 0 {
        let min = ns.iter().map(|v| v.as_i64().unwrap()).min().unwrap();
        let max = ns.iter().map(|v| v.as_i64().unwrap()).max().unwrap();
        if scalar(numbers.min())? != json!(min) || scalar(numbers.max())? != json!(max) {
            return Err("min or max".into());
        }
    } else if scalar(numbers.max()).is_ok() {
        return Err("max of an empty bag should be an error".into());
    }

    // foldby: items per key (built in), and the sum of n per key (an op).
    let mut want_by: Vec<(Json, i64, i64)> = Vec::new();
    for (k, v) in keys.iter().zip(&ns) {
        match want_by.iter_mut().find(|(key, _, _)| key == k) {
            Some(slot) => {
                slot.1 += 1;
                slot.2 += v.as_i64().unwrap();
            }
            None => want_by.push((k.clone(), 1, v.as_i64().unwrap())),
        }
    }
    let key = || Func::GetOr("key".into(), Json::Null);
    let want: Vec<Json> = want_by.iter().map(|(k, c, _)| json!([k, c])).collect();
    let got = bag
        .foldby(key(), Binop::Count, None, None)
        .map_err(e)?
        .compute(client)
        .map_err(e)?;
    expect_eq("foldby count", &got, &want)?;
    if custom_ops {
        let want: Vec<Json> = want_by.iter().map(|(k, _, s)| json!([k, s])).collect();
        let got = bag
            .foldby(key(), Binop::op(AddN), Some(json!(0)), Some(Binop::Sum))
            .map_err(e)?
            .compute(client)
            .map_err(e)?;
        expect_eq("foldby with an op", &got, &want)?;
    }

    // take: the first items, in order.
    let got = bag.take(7, client).map_err(e)?;
    expect_eq("take", &got, &items[..7.min(n)])?;
    Ok(())
}

rask::op! {
    /// `acc + item["n"]`: foldby's binop in the tests.
    pub fn AddN(acc: rask::bag::Item, x: rask::bag::Item) -> rask::bag::Item {
        let n = x.0.get("n").and_then(Json::as_i64).unwrap_or(0);
        rask::bag::Item(json!(acc.0.as_i64().unwrap_or(0) + n))
    }
}

/// groupby (a peer-to-peer shuffle) against grouping directly: the same
/// groups, each with its items in input order.
pub fn groupby(
    client: &Client,
    seed: u64,
    n: usize,
    parts: usize,
    outputs: usize,
) -> Result<(), String> {
    let items = records(seed, n);
    let bag = Bag::from_sequence(items.clone(), parts);
    let e = |e: rask::bag::BagError| e.to_string();
    let grouped = bag
        .groupby(Func::GetOr("key".into(), Json::Null), Some(outputs))
        .map_err(e)?;
    if grouped.npartitions() != outputs.max(1) {
        return Err(format!(
            "{} partitions, want {outputs}",
            grouped.npartitions()
        ));
    }
    let mut got: Vec<(String, Vec<Json>)> = grouped
        .compute(client)
        .map_err(e)?
        .into_iter()
        .map(|pair| (pair[0].to_string(), pair[1].as_array().unwrap().clone()))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want: HashMap<String, Vec<Json>> = HashMap::new();
    for r in &items {
        let key = r.get("key").cloned().unwrap_or(Json::Null).to_string();
        want.entry(key).or_default().push(r.clone());
    }
    let mut want: Vec<(String, Vec<Json>)> = want.into_iter().collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    if got != want {
        return Err(format!(
            "groupby: {} groups, want {}",
            got.len(),
            want.len()
        ));
    }
    Ok(())
}

/// Words of JSON lines written as plain, gzip and zstd files, read back in
/// blocks, counted, against counting directly.
pub fn word_frequencies_from_files(
    client: &Client,
    dir: &str,
    blocksize: Option<u64>,
) -> Result<(), String> {
    let e = |e: rask::bag::BagError| e.to_string();
    let items = records(77, 3000);
    let source = Bag::from_sequence(items.clone(), 3);
    for name in ["plain/*.json", "gzip/*.json.gz", "zstd/*.json.zst"] {
        source
            .to_textfiles(&format!("{dir}/{name}"), client)
            .map_err(e)?;
        let bag = rask::bag::read_json(&format!("{dir}/{name}"), blocksize).map_err(e)?;
        let back = bag.compute(client).map_err(e)?;
        expect_eq(&format!("{name} read back"), &back, &items)?;
        let counted = bag
            .pluck("text")
            .and_then(|b| b.map(Func::Lower.then(Func::split_whitespace())))
            .and_then(|b| b.flatten())
            .and_then(|b| b.frequencies())
            .map_err(e)?
            .compute(client)
            .map_err(e)?;
        expect_eq(
            &format!("{name} frequencies"),
            &counted,
            &frequencies(&words_of(&items)),
        )?;
    }
    Ok(())
}

//! The bag part of `rask demo`: generated posts written as gzip-compressed
//! JSON lines, read back by glob, their words counted (the top ten printed)
//! and grouped by author, the posts turned into a dataframe; every number
//! checked against counting the generated posts directly.

use anyhow::{ensure, Result};
use rask::bag::{self as db, field, json, Bag, Binop, Func, Json};
use rask::prelude::*;
use std::collections::HashMap;
use std::time::Instant;

/// Posts generated.
const POSTS: usize = 200_000;

/// Deterministic posts: an author, a score and a few words of text.
fn posts() -> Vec<Json> {
    let words = [
        "rask", "dask", "rust", "data", "graph", "task", "worker", "shuffle", "bag", "frame",
        "array", "cluster", "fast", "lazy", "chunk", "disk",
    ];
    let mut state = 7u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..POSTS)
        .map(|id| {
            let r = next();
            // Zipf-like: low word numbers are common.
            let text: Vec<&str> = (0..(r % 12 + 1))
                .map(|i| {
                    let w = next() >> (i % 4);
                    words[((w % 16) * (w % 16) / 16) as usize]
                })
                .collect();
            json!({
                "id": id,
                "author": format!("user{}", (r >> 20) % 50),
                "score": ((r >> 32) % 100) as i64,
                "text": text.join(" "),
            })
        })
        .collect()
}

/// Runs the workload on `client` and prints what it found.
pub fn run(client: &Client) -> Result<()> {
    let posts = posts();
    let dir = std::env::temp_dir().join(format!("rask-demo-bag-{}", std::process::id()));
    let dir_text = dir.display().to_string();
    let started = Instant::now();
    Bag::from_sequence(posts.clone(), 8)
        .to_textfiles(&format!("{dir_text}/posts/*.json.gz"), client)?;
    let read = db::read_json(&format!("{dir_text}/posts/*.json.gz"), None)?;
    let words = read
        .pluck("text")?
        .map(Func::split_whitespace())?
        .flatten()?;
    let top = words
        .frequencies()?
        .topk(10, Some(Func::get(1)))?
        .compute(client)?;
    let liked = read.filter(field("score").ge(90))?;
    let per_author = liked
        .foldby(Func::get("author"), Binop::Count, None, None)?
        .compute(client)?;
    let frame = read.to_dataframe(None, client)?;
    let rows = frame.len(client)?;
    let elapsed = started.elapsed();
    std::fs::remove_dir_all(&dir)?;
    println!("{read}");
    println!("the ten commonest words: {}", Json::Array(top.clone()));

    // The same, counted directly.
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for post in &posts {
        for word in post["text"].as_str().unwrap_or_default().split_whitespace() {
            *counts.entry(word).or_default() += 1;
        }
    }
    let mut want: Vec<(&str, u64)> = counts.into_iter().collect();
    want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let want_top: Vec<Json> = want.iter().take(10).map(|(w, n)| json!([w, n])).collect();
    ensure!(
        top == want_top,
        "word counts differ: {top:?} vs {want_top:?}"
    );
    let mut want_authors: HashMap<String, u64> = HashMap::new();
    for post in posts.iter().filter(|p| p["score"].as_i64() >= Some(90)) {
        *want_authors
            .entry(post["author"].as_str().unwrap_or_default().into())
            .or_default() += 1;
    }
    ensure!(
        per_author.len() == want_authors.len(),
        "authors with liked posts differ"
    );
    for pair in &per_author {
        let author = pair[0].as_str().unwrap_or_default();
        ensure!(
            pair[1].as_u64() == want_authors.get(author).copied(),
            "{author}'s liked posts differ"
        );
    }
    ensure!(rows == POSTS, "the dataframe has {rows} rows, not {POSTS}");
    println!(
        "bags: {POSTS} posts to 8 gzip JSON-lines files, read back by glob, words counted, \
         liked posts counted per author, the posts made a dataframe, in {:.3} s (matches \
         counting directly)",
        elapsed.as_secs_f64()
    );
    Ok(())
}

//! Bag reductions as trees: every partition reduces its own items (a partial
//! result, itself a list of items), then the partials are merged a few at a
//! time until one is left. `frequencies`, `distinct`, `topk`, `fold`,
//! `foldby` and `count` are all this.

use super::func::{json_order, Binop, Func};
use super::text_counts::TextCounts;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;

/// Partials merged per task.
pub(super) const SPLIT_EVERY: usize = 8;

/// A reduction of a bag's items.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Reduction {
    /// `[item, count]` pairs, most frequent first (ties in item order).
    Frequencies,
    /// Each distinct item once, in order of first appearance.
    Distinct,
    /// The `k` largest items by `key` (the item itself when `None`), largest first.
    TopK(usize, Option<Func>),
    /// One value: items folded by `binop` from `initial` (or the first item),
    /// partials by `combine`.
    Fold {
        binop: Binop,
        combine: Binop,
        initial: Option<Json>,
    },
    /// `[key, value]` pairs: each key's items folded as [`Reduction::Fold`].
    FoldBy {
        key: Func,
        binop: Binop,
        combine: Binop,
        initial: Option<Json>,
    },
}

/// Items as hash keys: texts as they are, anything else by its JSON text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum HashKey {
    Text(String),
    Json(String),
}

impl HashKey {
    pub(super) fn of_ref(item: &Json) -> HashKey {
        match item {
            Json::String(text) => HashKey::Text(text.clone()),
            other => HashKey::Json(other.to_string()),
        }
    }

    /// A hash every process computes alike (shuffles place keys by it).
    pub(super) fn stable_hash(&self) -> u64 {
        let state = foldhash::fast::FixedState::with_seed(0x7261_736b_5f62_6167);
        state.hash_one(self)
    }
}

type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A reduction in progress inside one task.
pub(super) enum Accumulator {
    /// Counts of texts, and of other items by their JSON.
    Frequencies(TextCounts, Map<String, u64>),
    Distinct(Map<HashKey, ()>, Vec<Json>),
    TopK(usize, Option<Func>, Vec<(Json, Json)>),
    Fold(Binop, Option<Json>),
    FoldBy(
        Func,
        Binop,
        Option<Json>,
        Map<HashKey, usize>,
        Vec<(Json, Json)>,
    ),
}

impl Accumulator {
    /// Starts a reduction; `partials` when it takes other tasks' partial
    /// results rather than items.
    pub(super) fn new(reduction: &Reduction, partials: bool) -> Accumulator {
        match reduction {
            Reduction::Frequencies => {
                Accumulator::Frequencies(TextCounts::default(), Map::default())
            }
            Reduction::Distinct => Accumulator::Distinct(Map::default(), Vec::new()),
            Reduction::TopK(k, key) => {
                // Partials hold items already; their keys are recomputed.
                Accumulator::TopK(*k, key.clone(), Vec::new())
            }
            Reduction::Fold {
                binop,
                combine,
                initial,
            } => {
                let (op, start) = fold_start(binop, combine, initial, partials);
                Accumulator::Fold(op, start)
            }
            Reduction::FoldBy {
                key,
                binop,
                combine,
                initial,
            } => {
                let (op, start) = fold_start(binop, combine, initial, partials);
                let key = if partials { Func::get(0) } else { key.clone() };
                Accumulator::FoldBy(key, op, start, Map::default(), Vec::new())
            }
        }
    }

    /// Takes one item (or, merging, one item of a partial result).
    pub(super) fn push(&mut self, item: Json, partials: bool) -> Result<(), String> {
        match self {
            Accumulator::Frequencies(texts, others) => {
                let (key, n) = if partials {
                    pair(item)
                        .and_then(|(k, n)| Ok((k, n.as_u64().ok_or("count is not a number")?)))?
                } else {
                    (item, 1)
                };
                match key {
                    Json::String(text) => texts.add(&text, n),
                    other => *others.entry(other.to_string()).or_insert(0) += n,
                }
            }
            Accumulator::Distinct(seen, order) => {
                let key = HashKey::of_ref(&item);
                if let Entry::Vacant(slot) = seen.entry(key) {
                    slot.insert(());
                    order.push(item);
                }
            }
            Accumulator::TopK(k, key, kept) => {
                let sort_key = match key {
                    Some(f) => f.key_of(&item)?,
                    None => item.clone(),
                };
                kept.push((sort_key, item));
                // Trim now and then, so a partition holds about 2k.
                if kept.len() >= (*k).max(512) * 2 {
                    trim_top(kept, *k);
                }
            }
            Accumulator::Fold(op, acc) => {
                // Items and partials alike: the accumulator so far meets the next.
                *acc = Some(match acc.take() {
                    None => item,
                    Some(acc) => op.apply(acc, item)?,
                });
            }
            Accumulator::FoldBy(key, op, start, index, groups) => {
                let (k, value) = if partials {
                    pair(item)?
                } else {
                    (key.key_of(&item)?, item)
                };
                match index.entry(HashKey::of_ref(&k)) {
                    Entry::Occupied(at) => {
                        let slot = &mut groups[*at.get()].1;
                        let acc = std::mem::take(slot);
                        *slot = op.apply(acc, value)?;
                    }
                    Entry::Vacant(at) => {
                        at.insert(groups.len());
                        let acc = match start {
                            Some(start) => op.apply(start.clone(), value)?,
                            None => value,
                        };
                        groups.push((k, acc));
                    }
                }
            }
        }
        Ok(())
    }

    /// The result: a partial (more merging to come) or the final items.
    pub(super) fn finish(self) -> Vec<Json> {
        let pair = |(k, v): (Json, Json)| Json::Array(vec![k, v]);
        match self {
            Accumulator::Frequencies(texts, others) => {
                let mut pairs: Vec<(Json, u64)> = texts
                    .into_counts()
                    .map(|(k, n)| (Json::String(k), n))
                    .chain(
                        others
                            .into_iter()
                            .map(|(k, n)| (serde_json::from_str(&k).unwrap_or(Json::Null), n)),
                    )
                    .collect();
                pairs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| json_order(&a.0, &b.0)));
                pairs
                    .into_iter()
                    .map(|(k, n)| Json::Array(vec![k, Json::from(n)]))
                    .collect()
            }
            Accumulator::Distinct(_, order) => order,
            Accumulator::TopK(k, _, mut kept) => {
                trim_top(&mut kept, k);
                kept.into_iter().map(|(_, item)| item).collect()
            }
            Accumulator::Fold(_, acc) => acc.into_iter().collect(),
            Accumulator::FoldBy(_, _, _, _, groups) => groups.into_iter().map(pair).collect(),
        }
    }
}

impl super::plan::Sink for Accumulator {
    fn item(&mut self, item: Json) -> Result<(), String> {
        self.push(item, false)
    }

    fn text(&mut self, text: &str) -> Result<(), String> {
        match self {
            Accumulator::Frequencies(texts, _) => {
                texts.add(text, 1);
                Ok(())
            }
            _ => self.push(Json::String(text.to_string()), false),
        }
    }
}

/// The binop and first accumulator of a fold: `binop` from `initial` over
/// items, `combine` from nothing over partials.
fn fold_start(
    binop: &Binop,
    combine: &Binop,
    initial: &Option<Json>,
    partials: bool,
) -> (Binop, Option<Json>) {
    if partials {
        (combine.clone(), None)
    } else {
        (binop.clone(), initial.clone().or_else(|| binop.start()))
    }
}

/// Keeps the `k` largest by their keys, largest first (stable for ties).
fn trim_top(kept: &mut Vec<(Json, Json)>, k: usize) {
    kept.sort_by(|a, b| json_order(&b.0, &a.0));
    kept.truncate(k);
}

/// A `[first, second]` pair of a partial result.
fn pair(item: Json) -> Result<(Json, Json), String> {
    match item {
        Json::Array(mut pair) if pair.len() == 2 => {
            let second = pair.pop().unwrap_or(Json::Null);
            let first = pair.pop().unwrap_or(Json::Null);
            Ok((first, second))
        }
        other => Err(format!(
            "a partial result is not a pair: {}",
            super::func::show(&other)
        )),
    }
}

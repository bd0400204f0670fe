//! What a bag does to its items, as data: functions ([`Func`]), predicates
//! ([`Pred`]) and folds ([`Binop`]). Built-in ones cover parsing, picking
//! fields, splitting and comparing; anything else is a registered op
//! (`rask::op!`) named by [`Func::op`], [`Pred::op`] or [`Binop::op`], so stock
//! `rask worker` processes run every bag.

use super::records::Item;
use crate::ops::{Op, OpRef};
use crate::value::Value;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::cmp::Ordering;

/// A field name or a list index (Dask's `pluck` key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Field {
    /// An object's field.
    Name(String),
    /// A list's element.
    Index(usize),
}

impl From<&str> for Field {
    fn from(name: &str) -> Self {
        Field::Name(name.to_string())
    }
}

impl From<String> for Field {
    fn from(name: String) -> Self {
        Field::Name(name)
    }
}

impl From<usize> for Field {
    fn from(index: usize) -> Self {
        Field::Index(index)
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Name(name) => write!(f, "{name:?}"),
            Field::Index(index) => write!(f, "{index}"),
        }
    }
}

/// A function of one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Func {
    /// The item itself.
    Identity,
    /// A text item parsed as JSON (`json.loads`).
    ParseJson,
    /// The item as JSON text (`json.dumps`).
    ToJson,
    /// A field or element (`pluck`); missing is an error.
    Get(Field),
    /// A field or element, or this default when missing.
    GetOr(Field, Json),
    /// Text split into a list of words: on whitespace (`str.split()`), or on
    /// this separator.
    Split(Option<String>),
    /// Text in lower case.
    Lower,
    /// Text in upper case.
    Upper,
    /// Text without leading and trailing whitespace.
    Strip,
    /// The length of a text (in characters), list or object.
    Len,
    /// These functions one after another.
    Chain(Vec<Func>),
    /// A registered op taking and returning an [`Item`].
    Op(String),
}

impl Func {
    /// Picks a field or element (`pluck`).
    pub fn get(field: impl Into<Field>) -> Func {
        Func::Get(field.into())
    }

    /// Text split on whitespace.
    pub fn split_whitespace() -> Func {
        Func::Split(None)
    }

    /// A registered op (`rask::op! { fn f(x: Item) -> Item {..} }`).
    pub fn op<O: Op<Args = (Item,), Output = Item>>(op: O) -> Func {
        Func::Op(op.name().to_string())
    }

    /// This function, then `next` on its result.
    pub fn then(self, next: Func) -> Func {
        match self {
            Func::Chain(mut funcs) => {
                funcs.push(next);
                Func::Chain(funcs)
            }
            first => Func::Chain(vec![first, next]),
        }
    }

    /// Applies the function to an item it may consume.
    pub fn apply(&self, item: Json) -> Result<Json, String> {
        match self {
            Func::Identity => Ok(item),
            Func::ParseJson => match &item {
                Json::String(text) => parse_json(text),
                other => Err(format!("parse_json: {} is not text", show(other))),
            },
            Func::ToJson => Ok(Json::String(item.to_string())),
            Func::Get(field) => take_field(item, field)
                .map_err(|item| format!("pluck({field}): {} has no such field", show(&item))),
            Func::GetOr(field, default) => Ok(take_field(item, field).unwrap_or(default.clone())),
            Func::Split(separator) => {
                let text = as_text(&item, "split")?;
                let words: Vec<Json> = match separator {
                    None => text
                        .split_whitespace()
                        .map(|w| Json::String(w.to_string()))
                        .collect(),
                    Some(sep) => text
                        .split(sep.as_str())
                        .map(|w| Json::String(w.to_string()))
                        .collect(),
                };
                Ok(Json::Array(words))
            }
            Func::Lower => Ok(Json::String(as_text(&item, "lower")?.to_lowercase())),
            Func::Upper => Ok(Json::String(as_text(&item, "upper")?.to_uppercase())),
            Func::Strip => Ok(Json::String(as_text(&item, "strip")?.trim().to_string())),
            Func::Len => match &item {
                Json::String(s) => Ok(Json::from(s.chars().count())),
                Json::Array(a) => Ok(Json::from(a.len())),
                Json::Object(o) => Ok(Json::from(o.len())),
                other => Err(format!("len: {} has no length", show(other))),
            },
            Func::Chain(funcs) => funcs.iter().try_fold(item, |item, f| f.apply(item)),
            Func::Op(name) => {
                let out = call_op(name, &[Value::new(Item(item))])?;
                let item = out
                    .get::<Item>()
                    .map_err(|e| format!("op `{name}` must return an Item: {e}"))?;
                Ok(
                    std::sync::Arc::try_unwrap(item)
                        .map_or_else(|shared| shared.0.clone(), |i| i.0),
                )
            }
        }
    }

    /// The function's result for an item it may not consume (a key).
    pub fn key_of(&self, item: &Json) -> Result<Json, String> {
        match self {
            Func::Identity => Ok(item.clone()),
            Func::Get(field) => field_of(item, field)
                .cloned()
                .ok_or_else(|| format!("pluck({field}): {} has no such field", show(item))),
            _ => self.apply(item.clone()),
        }
    }

    /// Checks that a registered op is in this binary (so a missing one is an
    /// error when the bag is built, not when it runs).
    pub(super) fn check(&self) -> Result<(), String> {
        match self {
            Func::Op(name) => check_op(name),
            Func::Chain(funcs) => funcs.iter().try_for_each(Func::check),
            _ => Ok(()),
        }
    }
}

fn parse_json(text: &str) -> Result<Json, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

fn as_text<'a>(item: &'a Json, what: &str) -> Result<&'a str, String> {
    match item {
        Json::String(text) => Ok(text),
        other => Err(format!("{what}: {} is not text", show(other))),
    }
}

/// The field taken out of the item, or the item back when it has none.
fn take_field(item: Json, field: &Field) -> Result<Json, Json> {
    match (item, field) {
        (Json::Object(mut map), Field::Name(name)) => match map.remove(name) {
            Some(value) => Ok(value),
            None => Err(Json::Object(map)),
        },
        (Json::Array(mut items), Field::Index(i)) if *i < items.len() => Ok(items.swap_remove(*i)),
        (item, _) => Err(item),
    }
}

fn field_of<'a>(item: &'a Json, field: &Field) -> Option<&'a Json> {
    match (item, field) {
        (Json::Object(map), Field::Name(name)) => map.get(name),
        (Json::Array(items), Field::Index(i)) => items.get(*i),
        _ => None,
    }
}

/// An item in an error message: its JSON, cut to 80 characters.
pub(super) fn show(item: &Json) -> String {
    let text = item.to_string();
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

fn check_op(name: &str) -> Result<(), String> {
    match crate::ops::resolve(name) {
        Some(_) => Ok(()),
        None => Err(format!(
            "op `{name}` is not registered in this binary nor in a loaded plugin (define it with rask::op!)"
        )),
    }
}

fn call_op(name: &str, args: &[Value]) -> Result<Value, String> {
    let op = crate::ops::resolve(name).ok_or_else(|| {
        format!("op `{name}` is not registered in this worker's binary nor in a loaded plugin")
    })?;
    op.call(args)
        .map_err(|e| format!("op `{name}`: {}", e.message))
}

fn op_name<O: Op>(op: &O) -> String {
    match op.op_ref() {
        OpRef::Registered(entry) => entry.name.to_string(),
        _ => op.name().to_string(),
    }
}

/// How a predicate compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmp {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
}

/// A test of one item, for `filter`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Pred {
    /// The value at a path (fields from the item; empty: the item) compared
    /// with a constant in JSON's order (numbers by value, texts by bytes); a
    /// missing field fails every comparison but `Ne`.
    Compare(Vec<Field>, Cmp, Json),
    /// The value at a path holds this text (a substring) or this element.
    Contains(Vec<Field>, Json),
    /// The value at a path exists and is not null.
    Exists(Vec<Field>),
    /// The opposite.
    Not(Box<Pred>),
    /// Every one holds.
    All(Vec<Pred>),
    /// Some one holds.
    Any(Vec<Pred>),
    /// A registered op taking an [`Item`] and returning `bool`.
    Op(String),
}

/// A path into items for building predicates: `field("fare").gt(10)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Path(Vec<Field>);

/// The item itself, for predicates on whole items: `item().gt(3)`.
pub fn item() -> Path {
    Path::default()
}

/// A field of the item, for predicates: `field("name").eq("Alice")`.
pub fn field(name: impl Into<Field>) -> Path {
    Path(vec![name.into()])
}

impl Path {
    /// A field below this one.
    pub fn field(mut self, name: impl Into<Field>) -> Path {
        self.0.push(name.into());
        self
    }

    fn compare(self, cmp: Cmp, value: impl Into<Json>) -> Pred {
        Pred::Compare(self.0, cmp, value.into())
    }

    /// Equal to `value`.
    pub fn eq(self, value: impl Into<Json>) -> Pred {
        self.compare(Cmp::Eq, value)
    }

    /// Not equal to `value`.
    pub fn ne(self, value: impl Into<Json>) -> Pred {
        self.compare(Cmp::Ne, value)
    }

    /// Less than `value`.
    pub fn lt(self, value: impl Into<Json>) -> Pred {
        self.compare(Cmp::Lt, value)
    }

    /// At most `value`.
    pub fn le(self, value: impl Into<Json>) -> Pred {
        self.compare(Cmp::Le, value)
    }

    /// Greater than `value`.
    pub fn gt(self, value: impl Into<Json>) -> Pred {
        self.compare(Cmp::Gt, value)
    }

    /// At least `value`.
    pub fn ge(self, value: impl Into<Json>) -> Pred {
        self.compare(Cmp::Ge, value)
    }

    /// Holds this substring or element.
    pub fn contains(self, value: impl Into<Json>) -> Pred {
        Pred::Contains(self.0, value.into())
    }

    /// Present and not null.
    pub fn exists(self) -> Pred {
        Pred::Exists(self.0)
    }
}

impl Pred {
    /// A registered op (`rask::op! { fn f(x: Item) -> bool {..} }`).
    pub fn op<O: Op<Args = (Item,), Output = bool>>(op: O) -> Pred {
        Pred::Op(op_name(&op))
    }

    /// The opposite of this test.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Pred {
        Pred::Not(Box::new(self))
    }

    /// Both hold.
    pub fn and(self, other: Pred) -> Pred {
        Pred::All(vec![self, other])
    }

    /// Either holds.
    pub fn or(self, other: Pred) -> Pred {
        Pred::Any(vec![self, other])
    }

    /// Whether `item` passes.
    pub fn test(&self, item: &Json) -> Result<bool, String> {
        let at = |path: &[Field]| {
            path.iter()
                .try_fold(item, |value, field| field_of(value, field))
        };
        Ok(match self {
            Pred::Compare(path, cmp, value) => match at(path) {
                None => *cmp == Cmp::Ne,
                Some(found) => {
                    let order = json_order(found, value);
                    match cmp {
                        Cmp::Eq => order == Ordering::Equal,
                        Cmp::Ne => order != Ordering::Equal,
                        Cmp::Lt => order == Ordering::Less,
                        Cmp::Le => order != Ordering::Greater,
                        Cmp::Gt => order == Ordering::Greater,
                        Cmp::Ge => order != Ordering::Less,
                    }
                }
            },
            Pred::Contains(path, needle) => match (at(path), needle) {
                (Some(Json::String(text)), Json::String(part)) => text.contains(part.as_str()),
                (Some(Json::Array(items)), needle) => items.contains(needle),
                (Some(Json::Object(map)), Json::String(key)) => map.contains_key(key),
                _ => false,
            },
            Pred::Exists(path) => at(path).is_some_and(|v| !v.is_null()),
            Pred::Not(inner) => !inner.test(item)?,
            Pred::All(preds) => {
                for pred in preds {
                    if !pred.test(item)? {
                        return Ok(false);
                    }
                }
                true
            }
            Pred::Any(preds) => {
                for pred in preds {
                    if pred.test(item)? {
                        return Ok(true);
                    }
                }
                false
            }
            Pred::Op(name) => {
                let out = call_op(name, &[Value::new(Item(item.clone()))])?;
                *out.get::<bool>()
                    .map_err(|e| format!("op `{name}` must return a bool: {e}"))?
            }
        })
    }

    pub(super) fn check(&self) -> Result<(), String> {
        match self {
            Pred::Op(name) => check_op(name),
            Pred::Not(inner) => inner.check(),
            Pred::All(preds) | Pred::Any(preds) => preds.iter().try_for_each(Pred::check),
            _ => Ok(()),
        }
    }
}

/// A total order on JSON values: null, booleans, numbers (by value), texts,
/// lists (element by element), objects (by their JSON text).
pub fn json_order(a: &Json, b: &Json) -> Ordering {
    fn rank(v: &Json) -> u8 {
        match v {
            Json::Null => 0,
            Json::Bool(_) => 1,
            Json::Number(_) => 2,
            Json::String(_) => 3,
            Json::Array(_) => 4,
            Json::Object(_) => 5,
        }
    }
    match (a, b) {
        (Json::Bool(x), Json::Bool(y)) => x.cmp(y),
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (
                    x.as_f64().unwrap_or(f64::NAN),
                    y.as_f64().unwrap_or(f64::NAN),
                );
                x.total_cmp(&y)
            }
        },
        (Json::String(x), Json::String(y)) => x.cmp(y),
        (Json::Array(x), Json::Array(y)) => {
            for (x, y) in x.iter().zip(y) {
                match json_order(x, y) {
                    Ordering::Equal => continue,
                    other => return other,
                }
            }
            x.len().cmp(&y.len())
        }
        (Json::Object(_), Json::Object(_)) => a.to_string().cmp(&b.to_string()),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// How a fold combines an accumulator with an item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Binop {
    /// Adds numbers (integers stay integers while they fit).
    Sum,
    /// The smaller in [`json_order`].
    Min,
    /// The larger in [`json_order`].
    Max,
    /// Counts items (the accumulator starts at 0; partial counts add).
    Count,
    /// A registered op `(acc: Item, item: Item) -> Item`.
    Op(String),
}

impl Binop {
    /// A registered op (`rask::op! { fn f(acc: Item, x: Item) -> Item {..} }`).
    pub fn op<O: Op<Args = (Item, Item), Output = Item>>(op: O) -> Binop {
        Binop::Op(op_name(&op))
    }

    /// Folds `item` into `acc`.
    pub fn apply(&self, acc: Json, item: Json) -> Result<Json, String> {
        match self {
            Binop::Sum => add(&acc, &item),
            Binop::Min => Ok(if json_order(&item, &acc) == Ordering::Less {
                item
            } else {
                acc
            }),
            Binop::Max => Ok(if json_order(&item, &acc) == Ordering::Greater {
                item
            } else {
                acc
            }),
            Binop::Count => add(&acc, &Json::from(1)),
            Binop::Op(name) => {
                let out = call_op(name, &[Value::new(Item(acc)), Value::new(Item(item))])?;
                out.get::<Item>()
                    .map(|i| i.0.clone())
                    .map_err(|e| format!("op `{name}` must return an Item: {e}"))
            }
        }
    }

    /// The accumulator before any item, when the binop has a natural one.
    pub(super) fn start(&self) -> Option<Json> {
        match self {
            Binop::Count => Some(Json::from(0)),
            _ => None,
        }
    }

    /// How partial results of this binop combine (counts add up).
    pub(super) fn combiner(&self) -> Binop {
        match self {
            Binop::Count => Binop::Sum,
            other => other.clone(),
        }
    }

    pub(super) fn check(&self) -> Result<(), String> {
        match self {
            Binop::Op(name) => check_op(name),
            _ => Ok(()),
        }
    }
}

fn add(a: &Json, b: &Json) -> Result<Json, String> {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                if let Some(sum) = x.checked_add(y) {
                    return Ok(Json::from(sum));
                }
            }
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            Ok(serde_json::Number::from_f64(x + y).map_or(Json::Null, Json::Number))
        }
        (a, b) => Err(format!("sum: cannot add {} and {}", show(a), show(b))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn functions_pick_split_and_chain() {
        let record = json!({"text": "The  cat sat", "n": [1, 2]});
        let words = Func::get("text")
            .then(Func::Lower)
            .then(Func::split_whitespace())
            .apply(record.clone())
            .unwrap();
        assert_eq!(words, json!(["the", "cat", "sat"]));
        assert_eq!(
            Func::get("n")
                .then(Func::get(1))
                .apply(record.clone())
                .unwrap(),
            json!(2)
        );
        let missing = Func::get("nope").apply(record.clone()).unwrap_err();
        assert!(
            missing.contains("pluck(\"nope\")") && missing.contains("text"),
            "{missing}"
        );
        assert_eq!(
            Func::GetOr("nope".into(), json!(0)).apply(record).unwrap(),
            json!(0)
        );
        assert!(Func::ParseJson
            .apply(json!("{\"a\": "))
            .unwrap_err()
            .starts_with("not JSON"));
        assert_eq!(Func::ParseJson.apply(json!("[1]")).unwrap(), json!([1]));
    }

    #[test]
    fn predicates_compare_in_json_order() {
        let row = json!({"fare": 12.5, "name": "Alice", "tags": ["a", "b"]});
        assert!(field("fare").gt(10).test(&row).unwrap());
        assert!(!field("fare").gt(12.5).test(&row).unwrap());
        assert!(field("name")
            .eq("Alice")
            .and(field("tags").contains("b"))
            .test(&row)
            .unwrap());
        assert!(field("missing").ne(1).test(&row).unwrap());
        assert!(!field("missing").eq(1).test(&row).unwrap());
        assert!(field("missing").exists().not().test(&row).unwrap());
        assert!(item().lt(3).test(&json!(2)).unwrap());
        assert_eq!(json_order(&json!(1), &json!(1.5)), Ordering::Less);
        assert_eq!(json_order(&json!(null), &json!("a")), Ordering::Less);
    }

    #[test]
    fn binops_fold_numbers_and_refuse_text() {
        assert_eq!(Binop::Sum.apply(json!(2), json!(3)).unwrap(), json!(5));
        assert_eq!(Binop::Sum.apply(json!(2), json!(0.5)).unwrap(), json!(2.5));
        assert_eq!(
            Binop::Sum.apply(json!(i64::MAX), json!(1)).unwrap(),
            json!(i64::MAX as f64 + 1.0)
        );
        assert!(Binop::Sum.apply(json!(1), json!("x")).is_err());
        assert_eq!(
            Binop::Max.apply(json!("a"), json!("b")).unwrap(),
            json!("b")
        );
        assert_eq!(
            Binop::Count.apply(json!(4), json!("anything")).unwrap(),
            json!(5)
        );
    }
}

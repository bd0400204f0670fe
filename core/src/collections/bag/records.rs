//! What bags hold: [`Records`], one partition of JSON values, and [`Item`], one
//! value as a registered op's argument or result. Both travel as JSON lines
//! (serde's compact binary encodings cannot carry an untyped JSON value).

use crate::value::{Data, ValueError};
use serde_json::Value as Json;
use std::any::Any;
use std::sync::Arc;

/// One partition of a [`Bag`](super::Bag): its items in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Records(pub Vec<Json>);

/// One item, as the argument and result of a registered op that a bag maps,
/// filters or folds with (`rask::op! { fn f(x: Item) -> Item { .. } }`).
#[derive(Clone, Debug, PartialEq)]
pub struct Item(pub Json);

fn encode_error(type_name: &'static str, e: impl ToString) -> ValueError {
    ValueError::Encode {
        type_name,
        message: e.to_string(),
    }
}

fn decode_error(type_name: &'static str, len: usize, e: impl ToString) -> ValueError {
    ValueError::Decode {
        type_name,
        len,
        message: e.to_string(),
    }
}

/// A JSON value's heap bytes, roughly (for memory accounting).
pub(super) fn json_size(value: &Json) -> usize {
    const SLOT: usize = std::mem::size_of::<Json>();
    match value {
        Json::String(s) => SLOT + s.len(),
        Json::Array(items) => SLOT + items.iter().map(json_size).sum::<usize>(),
        Json::Object(map) => {
            SLOT + map
                .iter()
                .map(|(k, v)| k.len() + 32 + json_size(v))
                .sum::<usize>()
        }
        _ => SLOT,
    }
}

impl Data for Records {
    fn encode(&self) -> Result<Vec<u8>, ValueError> {
        let mut bytes = Vec::with_capacity(self.0.len() * 16);
        for value in &self.0 {
            serde_json::to_writer(&mut bytes, value)
                .map_err(|e| encode_error("rask::bag::Records", e))?;
            bytes.push(b'\n');
        }
        Ok(bytes)
    }

    fn decode(bytes: &[u8]) -> Result<Self, ValueError> {
        serde_json::Deserializer::from_slice(bytes)
            .into_iter::<Json>()
            .collect::<Result<Vec<_>, _>>()
            .map(Records)
            .map_err(|e| decode_error("rask::bag::Records", bytes.len(), e))
    }

    fn nbytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.0.iter().map(json_size).sum::<usize>()
    }

    fn type_name(&self) -> &'static str {
        "rask::bag::Records"
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

impl Data for Item {
    fn encode(&self) -> Result<Vec<u8>, ValueError> {
        serde_json::to_vec(&self.0).map_err(|e| encode_error("rask::bag::Item", e))
    }

    fn decode(bytes: &[u8]) -> Result<Self, ValueError> {
        serde_json::from_slice(bytes)
            .map(Item)
            .map_err(|e| decode_error("rask::bag::Item", bytes.len(), e))
    }

    fn nbytes(&self) -> usize {
        json_size(&self.0)
    }

    fn type_name(&self) -> &'static str {
        "rask::bag::Item"
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_and_items_travel_as_json_and_garbage_is_an_error() {
        let records = Records(vec![
            json!({"a": [1, 2.5, null]}),
            json!("line\nbreak"),
            json!(7),
        ]);
        assert_eq!(
            Records::decode(&records.encode().unwrap()).unwrap(),
            records
        );
        assert_eq!(Records::decode(b"").unwrap(), Records(vec![]));
        let item = Item(json!({"k": "v"}));
        assert_eq!(Item::decode(&item.encode().unwrap()).unwrap(), item);
        assert!(Records::decode(b"{\"a\": ").is_err());
        assert!(Item::decode(b"not json").is_err());
    }
}

//! Compile-time registration of named ops (through `inventory`) and lookup by name.

use super::TaskFailure;
use crate::value::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The erased body of a registered op.
pub type OpFn = fn(&[Value]) -> Result<Value, TaskFailure>;

/// One registered op: its full name (`crate::module::op`) and its body.
#[derive(Debug)]
pub struct OpEntry {
    /// The full name, unique within a binary.
    pub name: &'static str,
    /// The body: arguments in, result out.
    pub run: OpFn,
}

inventory::collect!(OpEntry);

fn table() -> &'static HashMap<&'static str, &'static OpEntry> {
    static TABLE: OnceLock<HashMap<&'static str, &'static OpEntry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = HashMap::new();
        for entry in inventory::iter::<OpEntry> {
            if table.insert(entry.name, entry).is_some() {
                tracing::warn!(op = entry.name, "op registered twice; keeping the last one");
            }
        }
        table
    })
}

/// The registered op with this full name.
pub fn lookup(name: &str) -> Option<&'static OpEntry> {
    table().get(name).copied()
}

/// Every registered op's name, sorted.
pub fn registered() -> Vec<&'static str> {
    let mut names: Vec<_> = table().keys().copied().collect();
    names.sort_unstable();
    names
}

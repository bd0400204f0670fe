//! Compile-time registration of named ops (through `inventory`) and lookup by name.

use super::TaskFailure;
use crate::value::Value;
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

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

/// The ops registered so far, by name, and how many registrations that is.
#[derive(Default)]
struct Table {
    ops: HashMap<&'static str, &'static OpEntry>,
    registrations: usize,
}

impl Table {
    /// Every registration `inventory` holds. It lists the newest first (a
    /// library loaded later, such as a notebook cell's, registers later), and
    /// the newest registration of a name is the one kept: a notebook cell
    /// that defines an op again replaces it.
    fn collect() -> Table {
        let mut table = Table::default();
        for entry in inventory::iter::<OpEntry> {
            table.registrations += 1;
            if table.ops.contains_key(entry.name) {
                tracing::debug!(op = entry.name, "op registered again; keeping the newest");
            } else {
                table.ops.insert(entry.name, entry);
            }
        }
        table
    }
}

fn table() -> &'static RwLock<Table> {
    static TABLE: OnceLock<RwLock<Table>> = OnceLock::new();
    TABLE.get_or_init(|| RwLock::new(Table::collect()))
}

/// The registered op with this full name. Ops registered after the first
/// lookup (by a library loaded since, such as a notebook cell) are found too.
pub fn lookup(name: &str) -> Option<&'static OpEntry> {
    let table = table();
    let known = {
        let read = table.read().unwrap_or_else(|e| e.into_inner());
        match read.ops.get(name) {
            Some(entry) => return Some(*entry),
            None => read.registrations,
        }
    };
    if inventory::iter::<OpEntry>.into_iter().count() == known {
        return None;
    }
    let mut write = table.write().unwrap_or_else(|e| e.into_inner());
    *write = Table::collect();
    write.ops.get(name).copied()
}

/// Every registered op's name, sorted.
pub fn registered() -> Vec<&'static str> {
    let table = table().read().unwrap_or_else(|e| e.into_inner());
    let mut names: Vec<_> = table.ops.keys().copied().collect();
    names.sort_unstable();
    names
}

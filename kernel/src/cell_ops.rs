//! Ops defined in cells.
//!
//! A cell's `rask::op! { pub fn score(x: i64) -> i64 { .. } }` is a macro
//! call, which evcxr would run as a statement of that cell only. The kernel
//! rewrites it into a named module and a `use` of the op, items evcxr keeps
//! for later cells and replaces when a later cell defines the op again:
//!
//! ```text
//! mod rask_op_score { use super::*; rask::op! { pub fn score(..) .. } }
//! pub use rask_op_score::score;
//! ```
//!
//! For clusters of processes, the kernel also keeps every item the cells
//! defined ([`CellItems`]) and compiles them into an op plugin that stock
//! workers load (see [`crate::cells_lib::CellsLib::build_plugin`]).

use crate::cells_lib::CellsLib;
use crate::cluster::Clusters;
use ra_ap_syntax::ast::{self, HasName};
use ra_ap_syntax::{AstNode, Edition, SourceFile, SyntaxNode};
use std::collections::BTreeMap;

/// The edition cells are compiled in (evcxr's).
const EDITION: Edition = Edition::Edition2024;

/// A cell with its op definitions rewritten into items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The code evcxr runs.
    pub code: String,
    /// The ops the cell defines, by name.
    pub ops: Vec<String>,
}

/// What a cell is wrapped in to parse it as a function body, as evcxr does.
pub(crate) const CELL_PRELUDE: &str = "fn f(){";

/// A cell parsed as a function body (after [`CELL_PRELUDE`]): its statement
/// list, and whether it parsed without errors.
pub(crate) fn parse_cell(code: &str) -> Option<(ast::StmtList, bool)> {
    let parsed = SourceFile::parse(&format!("{CELL_PRELUDE}{code}\n}}"), EDITION);
    let clean = parsed.errors().is_empty();
    let list = parsed
        .tree()
        .syntax()
        .children()
        .find_map(ast::Fn::cast)
        .and_then(|f| f.body())
        .and_then(|b| b.stmt_list())?;
    Some((list, clean))
}

/// The top-level statements and items of a cell, with their text.
fn statements(code: &str) -> Vec<(SyntaxNode, String)> {
    let Some((list, _)) = parse_cell(code) else {
        return Vec::new();
    };
    list.syntax()
        .children()
        .map(|node| {
            let text = node.text().to_string();
            (node, text)
        })
        .collect()
}

/// The macro call a statement is, if it is `op! {..}` or `rask::op! {..}`.
fn op_call(node: &SyntaxNode) -> Option<ast::MacroCall> {
    let call = node
        .descendants()
        .find_map(ast::MacroCall::cast)
        .filter(|c| c.syntax().text_range() == node.text_range() || is_statement_of(node, c))?;
    let path = call.path()?.syntax().text().to_string();
    let path: String = path.split_whitespace().collect();
    (path == "op" || path == "rask::op" || path == "::rask::op").then_some(call)
}

/// Whether `call` is the whole of the statement `node` (but its `;`).
fn is_statement_of(node: &SyntaxNode, call: &ast::MacroCall) -> bool {
    let text = node.text().to_string();
    let inner = call.syntax().text().to_string();
    text.trim().trim_end_matches(';').trim() == inner.trim()
}

/// The name of the op an `op!` call defines and its body with `pub` before
/// `fn` (the op is used from outside its module).
fn op_definition(call: &ast::MacroCall) -> Option<(String, String)> {
    let tokens = call.token_tree()?;
    let text = tokens.syntax().text().to_string();
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let fn_at = find_fn_keyword(inner)?;
    let after = &inner[fn_at + 2..];
    let name: String = after
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() {
        return None;
    }
    let before = inner[..fn_at].trim_end();
    let has_visibility = before.ends_with("pub") || before.ends_with(')');
    let body = if has_visibility {
        inner.to_owned()
    } else {
        format!("{}pub {}", &inner[..fn_at], &inner[fn_at..])
    };
    Some((name, body))
}

/// The byte offset of the `fn` keyword that starts the op's signature
/// (after its doc comments and attributes).
fn find_fn_keyword(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'[' | b'(' => depth += 1,
            b']' | b')' => depth = depth.saturating_sub(1),
            b'f' if depth == 0
                && bytes.get(i + 1) == Some(&b'n')
                && bytes.get(i + 2).is_some_and(|c| c.is_ascii_whitespace())
                && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')) =>
            {
                return Some(i);
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The module an op lives in.
fn module_of(op: &str) -> String {
    format!("rask_op_{op}")
}

/// Rewrites the cell's op definitions into items evcxr keeps.
pub fn rewrite(code: &str) -> Rewritten {
    let mut out = String::with_capacity(code.len());
    let mut ops = Vec::new();
    let mut last = 0;
    for (node, text) in statements(code) {
        let Some((name, body)) = op_call(&node).as_ref().and_then(op_definition) else {
            continue;
        };
        // The statement's place in the cell (the parse added a prefix).
        let Some(start) = code[last..].find(text.trim()).map(|at| last + at) else {
            continue;
        };
        let end = start + text.trim().len();
        let module = module_of(&name);
        out.push_str(&code[last..start]);
        out.push_str(&format!(
            "#[allow(non_snake_case, unused_imports)]\nmod {module} {{\n    use super::*;\n    \
             rask::op! {{{body}}}\n}}\npub use {module}::{name};"
        ));
        last = end;
        ops.push(name);
    }
    out.push_str(&code[last..]);
    Rewritten { code: out, ops }
}

/// The items the cells have defined, latest definition of each name kept:
/// the source of an op plugin.
#[derive(Debug, Default, Clone)]
pub struct CellItems {
    /// Named items (functions, types, modules, `use`s of ops), in the order
    /// first defined.
    named: BTreeMap<String, (usize, String)>,
    /// Items with no name of their own (`impl` blocks, `use` declarations).
    unnamed: Vec<String>,
    defined: usize,
    ops: Vec<String>,
}

impl CellItems {
    /// Records the items of a cell that ran (its rewritten code).
    pub fn record(&mut self, rewritten: &Rewritten) {
        for (node, text) in statements(&rewritten.code) {
            let Some(item) = ast::Item::cast(node) else {
                continue;
            };
            let name = match &item {
                ast::Item::Fn(i) => i.name(),
                ast::Item::Struct(i) => i.name(),
                ast::Item::Enum(i) => i.name(),
                ast::Item::Const(i) => i.name(),
                ast::Item::Static(i) => i.name(),
                ast::Item::Trait(i) => i.name(),
                ast::Item::TypeAlias(i) => i.name(),
                ast::Item::Union(i) => i.name(),
                ast::Item::Module(i) => i.name(),
                ast::Item::MacroRules(i) => i.name(),
                _ => None,
            };
            let text = text.trim().to_owned();
            match name {
                Some(name) => {
                    let name = name.text().to_string();
                    let order = self
                        .named
                        .get(&name)
                        .map_or(self.defined, |(order, _)| *order);
                    self.defined += 1;
                    self.named.insert(name, (order, text));
                }
                None if !self.unnamed.contains(&text) => self.unnamed.push(text),
                None => {}
            }
        }
        for op in &rewritten.ops {
            if !self.ops.contains(op) {
                self.ops.push(op.clone());
            }
        }
    }

    /// The ops defined so far.
    pub fn ops(&self) -> &[String] {
        &self.ops
    }

    /// The source of a plugin crate holding every item the cells defined.
    pub fn plugin_source(&self) -> String {
        let mut named: Vec<&(usize, String)> = self.named.values().collect();
        named.sort_by_key(|(order, _)| *order);
        let mut source = String::from(
            "#![allow(unused_imports, dead_code, non_snake_case, unused_variables)]\n\
             use rask::prelude::*;\n",
        );
        for (_, text) in named {
            source.push_str(text);
            source.push('\n');
        }
        for text in &self.unnamed {
            source.push_str(text);
            source.push('\n');
        }
        source
    }
}

/// The cells' ops and the plugin made of them for clusters of processes.
#[derive(Debug)]
pub struct CellOps {
    items: CellItems,
    /// Bumped whenever a cell defines items.
    version: usize,
    /// What plugins are built with (none if rask is not prepared for cells).
    lib: Option<CellsLib>,
    /// The version of the items the last plugin was built from.
    built: Option<usize>,
}

impl CellOps {
    /// No ops yet; plugins are built against `lib`.
    pub fn new(lib: Option<CellsLib>) -> CellOps {
        CellOps {
            items: CellItems::default(),
            version: 0,
            lib,
            built: None,
        }
    }

    /// Records the items of a cell that ran.
    pub fn record(&mut self, rewritten: &Rewritten) {
        let before = self.items.plugin_source();
        self.items.record(rewritten);
        if self.items.plugin_source() != before {
            self.version += 1;
        }
    }

    /// For a cell defining ops on a cluster of processes: the plugin the
    /// cluster will need if the cell runs, to build while evcxr compiles the
    /// cell (each takes about a second, and there are two cores).
    pub fn plan_ahead(&self, rewritten: &Rewritten, clusters: &Clusters) -> Option<PluginPlan> {
        if rewritten.ops.is_empty() || !clusters.is_processes() {
            return None;
        }
        let mut items = self.items.clone();
        items.record(rewritten);
        Some(PluginPlan {
            lib: self.lib.clone()?,
            source: items.plugin_source(),
            serial: self.version + 1,
        })
    }

    /// When the attached cluster is one of processes and the cells have
    /// defined ops the workers do not have yet: builds the plugin (or takes
    /// `early`, when it was built from the same items) and has the cells'
    /// process upload it (and keep it for clusters it attaches later).
    /// Returns what to tell the user, if anything happened.
    pub fn sync(
        &mut self,
        clusters: &Clusters,
        early: Option<EarlyPlugin>,
    ) -> Option<Result<String, String>> {
        if self.items.ops().is_empty() || !clusters.is_processes() {
            return None;
        }
        if self.built == Some(self.version) {
            return None;
        }
        let lib = self.lib.as_ref()?;
        let source = self.items.plugin_source();
        let started = std::time::Instant::now();
        let built = match early.filter(|early| early.source == source) {
            Some(early) => early.built.map(|path| (path, early.took)),
            None => lib
                .build_plugin(&source, self.version)
                .map(|path| (path, started.elapsed()))
                .map_err(|e| format!("{e:#}")),
        };
        let (path, built_in) = match built {
            Ok(built) => built,
            Err(e) => return Some(Err(e)),
        };
        let reply = match clusters.send_plugin(&path) {
            Ok(reply) => reply,
            Err(e) => return Some(Err(format!("uploading the cells' ops: {e}"))),
        };
        self.built = Some(self.version);
        let size = std::fs::metadata(&path).map(|m| m.len() >> 20).unwrap_or(0);
        Some(Ok(format!(
            "ops {} sent to the cluster's workers ({} loaded it; plugin of {size} MiB built in {:.1?})",
            self.items.ops().join(", "),
            reply["loaded"].as_u64().unwrap_or(0),
            built_in
        )))
    }
}

/// A plugin to build ahead of its cell's result ([`CellOps::plan_ahead`]).
#[derive(Debug)]
pub struct PluginPlan {
    lib: CellsLib,
    source: String,
    serial: usize,
}

impl PluginPlan {
    /// Builds the plugin (seconds).
    pub fn build(self) -> EarlyPlugin {
        let started = std::time::Instant::now();
        let built = self
            .lib
            .build_plugin(&self.source, self.serial)
            .map_err(|e| format!("{e:#}"));
        EarlyPlugin {
            source: self.source,
            built,
            took: started.elapsed(),
        }
    }
}

/// A plugin built while its cell compiled.
#[derive(Debug)]
pub struct EarlyPlugin {
    /// The source it was built from ([`CellItems::plugin_source`]).
    source: String,
    built: Result<std::path::PathBuf, String>,
    took: std::time::Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_op_call_becomes_a_module_and_a_use() {
        let cell = "let x = 1;\nrask::op! {\n    /// Squares.\n    fn score(v: i64) -> i64 { v * v }\n}\nx + 1";
        let out = rewrite(cell);
        assert_eq!(out.ops, vec!["score".to_owned()]);
        assert!(out.code.starts_with("let x = 1;\n#[allow"), "{}", out.code);
        assert!(out.code.contains("mod rask_op_score {"), "{}", out.code);
        assert!(out.code.contains("pub fn score(v: i64)"), "{}", out.code);
        assert!(
            out.code.contains("pub use rask_op_score::score;"),
            "{}",
            out.code
        );
        assert!(out.code.ends_with("\nx + 1"), "{}", out.code);
    }

    #[test]
    fn cells_without_ops_are_left_alone() {
        for cell in [
            "1 + 2",
            "fn f() {}\nf()",
            "println!(\"op! {{}}\");",
            "my::op!(3)",
        ] {
            assert_eq!(rewrite(cell).code, cell);
            assert!(rewrite(cell).ops.is_empty());
        }
    }

    #[test]
    fn a_later_definition_replaces_an_earlier_one_in_the_plugin() {
        let mut items = CellItems::default();
        items.record(&rewrite(
            "fn helper() -> i64 { 1 }\nop! { pub fn a(x: i64) -> i64 { x + helper() } }",
        ));
        items.record(&rewrite("let y = 3;\nfn helper() -> i64 { 2 }"));
        items.record(&rewrite("op! { pub fn a(x: i64) -> i64 { x - helper() } }"));
        let source = items.plugin_source();
        assert_eq!(source.matches("fn helper").count(), 1, "{source}");
        assert!(source.contains("{ 2 }"), "{source}");
        assert_eq!(source.matches("mod rask_op_a").count(), 1, "{source}");
        assert!(source.contains("x - helper()"), "{source}");
        assert!(!source.contains("let y"), "{source}");
        assert_eq!(items.ops(), ["a".to_owned()]);
    }
}

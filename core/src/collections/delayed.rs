//! Delayed values: op calls recorded lazily into a graph (Dask's `dask.delayed`).
//!
//! ```
//! use rask::prelude::*;
//! rask::op! { fn inc(x: u64) -> u64 { x + 1 } }
//! rask::op! { fn add(a: u64, b: u64) -> u64 { a + b } }
//!
//! let a = delayed(inc, 1);
//! let b = delayed(inc, 2);
//! let total = delayed(add, (&a, &b));
//! assert_eq!(total.graph().len(), 3);
//! let client = Client::local(LocalCluster::new().workers(1))?;
//! assert_eq!(total.compute(&client)?, 5);
//! # Ok::<(), rask::Error>(())
//! ```

use crate::client::lazy::{ArgSource, IntoArg, IntoArgs, Lazy, Node, NodeKind};
use crate::client::{Client, Error, Future};
use crate::graph::{Annotations, Graph, Key};
use crate::ops::{short_name, Op};
use crate::value::Data;
use std::marker::PhantomData;
use std::sync::Arc;

/// A lazy value of type `T` (Dask's `Delayed`).
pub struct Delayed<T> {
    node: Arc<Node>,
    types: PhantomData<fn() -> T>,
}

impl<T> Clone for Delayed<T> {
    fn clone(&self) -> Self {
        Delayed {
            node: self.node.clone(),
            types: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Delayed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Delayed({})", self.node.key)
    }
}

/// Records a call of `op` on `args` without running it.
///
/// Arguments may be values, other delayed values or futures.
pub fn delayed<O: Op>(op: O, args: impl IntoArgs<O::Args>) -> Delayed<O::Output> {
    let key = Key::unique(short_name(op.name()));
    Delayed::from_node(Node {
        key,
        kind: NodeKind::Task {
            op: op.op_ref(),
            args: args.into_args(),
            annotations: Annotations::default(),
        },
    })
}

impl<T> Delayed<T> {
    pub(crate) fn from_node(node: Node) -> Self {
        Delayed {
            node: Arc::new(node),
            types: PhantomData,
        }
    }

    /// A delayed value for an existing node.
    pub(crate) fn from_arc(node: Arc<Node>) -> Self {
        Delayed {
            node,
            types: PhantomData,
        }
    }

    /// A delayed value standing for a future's result.
    pub fn from_future(future: Future<T>) -> Self {
        let handle = future.handle().clone();
        Delayed::from_node(Node {
            key: handle.key().clone(),
            kind: NodeKind::Persisted(handle),
        })
    }

    /// The key of the result.
    pub fn key(&self) -> &Key {
        &self.node.key
    }

    /// The underlying node.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The graph that computes this value (persisted inputs are not in it).
    pub fn graph(&self) -> Graph {
        let mut builder = crate::client::GraphBuilderAccess::default();
        builder.add_node(&self.node);
        builder.graph()
    }

    /// A picture of its graph: DOT, or SVG for small graphs (Dask's `visualize`).
    pub fn visualize(&self) -> crate::diagnostics::Visualization {
        crate::diagnostics::Visualization::new(self.graph())
    }

    fn annotate(self, change: impl FnOnce(&mut Annotations)) -> Self {
        let mut node = Arc::unwrap_or_clone(self.node);
        if let NodeKind::Task { annotations, .. } = &mut node.kind {
            change(annotations);
        }
        Delayed::from_node(node)
    }

    /// Runs before lower-priority work (Dask's `priority=` annotation).
    pub fn priority(self, priority: i32) -> Self {
        self.annotate(|a| a.priority = priority)
    }

    /// Runs again up to `n` times if it fails (Dask's `retries=`).
    pub fn retries(self, n: u32) -> Self {
        self.annotate(|a| a.retries = n)
    }

    /// Needs these abstract resources on its worker, e.g. `[("GPU", 1.0)]`.
    pub fn resources(self, resources: &[(&str, f64)]) -> Self {
        self.annotate(|a| {
            a.resources = resources.iter().map(|(n, v)| (n.to_string(), *v)).collect()
        })
    }

    /// Runs only on the named workers (Dask's `workers=`).
    pub fn workers(self, names: &[&str]) -> Self {
        self.annotate(|a| a.workers = names.iter().map(|n| n.to_string()).collect())
    }
}

impl<T: Data> Lazy for Delayed<T> {
    type Output = T;

    fn node(&self) -> &Arc<Node> {
        &self.node
    }

    fn from_future(future: Future<T>) -> Self {
        Delayed::from_future(future)
    }
}

impl<T: Data> IntoArg<T> for Delayed<T> {
    fn into_arg(self) -> ArgSource {
        ArgSource::Node(self.node)
    }
}

impl<T: Data> IntoArg<T> for &Delayed<T> {
    fn into_arg(self) -> ArgSource {
        ArgSource::Node(self.node.clone())
    }
}

impl<T: Data + Clone> Delayed<T> {
    /// Computes the value on the cluster and returns it (Dask's `.compute()`).
    pub fn compute(&self, client: &Client) -> Result<T, Error> {
        client.compute(self)?.result()
    }
}

/// The graph computing all of `values` (their shared inputs once).
pub fn graph_of<T: Data>(values: &[Delayed<T>]) -> Graph {
    let mut builder = crate::client::GraphBuilderAccess::default();
    for value in values {
        builder.add_node(value.node());
    }
    builder.graph()
}

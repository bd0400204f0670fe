//! Collection kernels: the registered ops that blocks and partitions run. A
//! kernel's first argument is its parameters (a serde value); the rest are its
//! inputs. Tasks carry these parameters, never code, so stock `rask worker`
//! processes run every collection's kernels.

use crate::client::lazy::ArgSource;
use crate::client::lazy::{Node, NodeKind};
use crate::graph::{Annotations, Key};
use crate::ops::OpRef;
use crate::value::{Data, Value};
use std::sync::Arc;

/// Registers a kernel named `$prefix$name`: `$name::NAME` runs
/// `$body(&params, inputs)`.
macro_rules! collection_kernel {
    ($prefix:literal, $(#[$meta:meta])* $vis:vis $name:ident($params:ty) => $body:expr) => {
        $(#[$meta])*
        $vis struct $name;

        impl $name {
            /// The registered op's name.
            $vis const NAME: &'static str = concat!($prefix, stringify!($name));

            fn erased(args: &[$crate::value::Value]) -> Result<$crate::value::Value, $crate::ops::TaskFailure> {
                let Some((first, inputs)) = args.split_first() else {
                    return Err($crate::ops::TaskFailure::new(concat!(
                        $prefix, stringify!($name), ": no parameters")));
                };
                let params = first.get::<$params>().map_err(|e| {
                    $crate::ops::TaskFailure::new(format!("{}: parameters: {e}", Self::NAME))
                })?;
                let body: fn(&$params, &[$crate::value::Value]) -> Result<$crate::value::Value, $crate::ops::TaskFailure> = $body;
                body(&params, inputs)
            }

            /// A node running this kernel on `inputs`.
            #[allow(dead_code)]
            $vis fn node(
                key: $crate::graph::Key,
                params: &$crate::collections::kernel::Params<$params>,
                inputs: Vec<std::sync::Arc<$crate::client::lazy::Node>>,
            ) -> std::sync::Arc<$crate::client::lazy::Node> {
                $crate::collections::kernel::node(key, Self::NAME, params.value().clone(), inputs)
            }
        }

        $crate::inventory::submit! {
            $crate::ops::OpEntry { name: $name::NAME, run: $name::erased }
        }
    };
}
pub(crate) use collection_kernel;

/// A node running the kernel `name` with `params` on `inputs`.
pub(crate) fn node(
    key: Key,
    name: &'static str,
    params: Value,
    inputs: Vec<Arc<Node>>,
) -> Arc<Node> {
    let mut args = Vec::with_capacity(inputs.len() + 1);
    args.push(ArgSource::Literal(params));
    args.extend(inputs.into_iter().map(ArgSource::Node));
    with_args(key, name, args)
}

/// [`node`] with scheduler hints.
pub(crate) fn node_annotated(
    key: Key,
    name: &'static str,
    params: Value,
    inputs: Vec<Arc<Node>>,
    annotations: Annotations,
) -> Arc<Node> {
    let mut args = Vec::with_capacity(inputs.len() + 1);
    args.push(ArgSource::Literal(params));
    args.extend(inputs.into_iter().map(ArgSource::Node));
    annotated(key, name, args, annotations)
}

/// A node running the kernel `name` on argument sources as they are.
pub(crate) fn with_args(key: Key, name: &'static str, args: Vec<ArgSource>) -> Arc<Node> {
    annotated(key, name, args, Annotations::default())
}

/// [`with_args`] with scheduler hints.
fn annotated(
    key: Key,
    name: &'static str,
    args: Vec<ArgSource>,
    annotations: Annotations,
) -> Arc<Node> {
    let op = match crate::ops::lookup(name) {
        Some(entry) => OpRef::Registered(entry),
        None => OpRef::Missing(name.into()),
    };
    Arc::new(Node {
        key,
        kind: NodeKind::Task {
            op,
            args,
            annotations,
        },
    })
}

/// Input `n` of a kernel as a `T`; `what` names the kernel in errors.
pub(crate) fn input<T: Data>(
    inputs: &[Value],
    n: usize,
    what: &str,
) -> Result<Arc<T>, crate::ops::TaskFailure> {
    let fail = crate::ops::TaskFailure::new;
    inputs
        .get(n)
        .ok_or_else(|| fail(format!("{what}: missing input {n}")))?
        .get::<T>()
        .map_err(|e| fail(format!("{what}: input {n}: {e}")))
}

/// Tasks in the graph that computes `nodes`, each counted once.
pub(crate) fn count_tasks(nodes: &[Arc<Node>]) -> usize {
    let mut builder = crate::client::GraphBuilderAccess::default();
    for node in nodes {
        builder.add_node(node);
    }
    builder.graph().len()
}

/// A kernel's parameters, wrapped once and shared by all its blocks; the type
/// ties them to the kernels that take them.
pub(crate) struct Params<P> {
    value: Value,
    kind: std::marker::PhantomData<fn() -> P>,
}

impl<P> Params<P> {
    /// The wrapped value.
    pub(crate) fn value(&self) -> &Value {
        &self.value
    }
}

impl<P> Clone for Params<P> {
    fn clone(&self) -> Self {
        Params {
            value: self.value.clone(),
            kind: std::marker::PhantomData,
        }
    }
}

/// Wraps a kernel's parameters.
pub(crate) fn params<P: Data>(params: P) -> Params<P> {
    Params {
        value: Value::new(params),
        kind: std::marker::PhantomData,
    }
}

//! Work not yet submitted: the nodes of lazy graphs (a delayed call, an array's
//! block) and what each argument slot of `submit`, `map` and `delayed` takes —
//! a value, a lazy node or a future. Collections build their graphs from these
//! nodes; the client walks them into tasks when they are computed.

use super::{Future, FutureHandle};
use crate::graph::{Annotations, Key};
use crate::ops::OpRef;
use crate::value::{Data, Value};
use std::sync::Arc;

/// One lazy value: a call not yet made, or a result already on the cluster.
#[derive(Clone, Debug)]
pub struct Node {
    /// The key its result will have.
    pub key: Key,
    /// What produces it.
    pub kind: NodeKind,
}

/// What produces a lazy value.
#[derive(Clone, Debug)]
pub enum NodeKind {
    /// An op call.
    Task {
        /// The op.
        op: OpRef,
        /// Where each argument comes from.
        args: Vec<ArgSource>,
        /// Scheduler hints.
        annotations: Annotations,
    },
    /// A result persisted on the cluster.
    Persisted(FutureHandle),
}

/// A typed lazy value a client can compute or persist (a delayed value).
pub trait Lazy: Sized {
    /// The type of its result.
    type Output: Data;
    /// Its graph's last node.
    fn node(&self) -> &Arc<Node>;
    /// The same kind of value, standing for a result on the cluster.
    fn from_future(future: Future<Self::Output>) -> Self;
}

/// Where one argument's value comes from.
#[derive(Clone, Debug)]
pub enum ArgSource {
    /// A value known now.
    Literal(Value),
    /// The result of a lazy task.
    Node(Arc<Node>),
    /// The result of a submitted task.
    Future(FutureHandle),
}

/// Anything that can fill an argument slot of type `T`: a `T`, a `Delayed<T>` or a `Future<T>`.
pub trait IntoArg<T> {
    /// Where the argument comes from.
    fn into_arg(self) -> ArgSource;
}

impl<T: Data> IntoArg<T> for T {
    fn into_arg(self) -> ArgSource {
        ArgSource::Literal(Value::new(self))
    }
}

impl<T: Data> IntoArg<T> for Future<T> {
    fn into_arg(self) -> ArgSource {
        ArgSource::Future(self.handle().clone())
    }
}

impl<T: Data> IntoArg<T> for &Future<T> {
    fn into_arg(self) -> ArgSource {
        ArgSource::Future(self.handle().clone())
    }
}

/// A whole argument list for an op whose argument types are the tuple `Args`.
///
/// A single argument needs no tuple: `client.submit(inc, 1)`.
pub trait IntoArgs<Args> {
    /// The argument sources, in order.
    fn into_args(self) -> Vec<ArgSource>;
}

impl IntoArgs<()> for () {
    fn into_args(self) -> Vec<ArgSource> {
        Vec::new()
    }
}

impl<T, A: IntoArg<T>> IntoArgs<(T,)> for A {
    fn into_args(self) -> Vec<ArgSource> {
        vec![self.into_arg()]
    }
}

macro_rules! tuple_args {
    ($($a:ident $t:ident),+) => {
        impl<$($t,)+ $($a: IntoArg<$t>,)+> IntoArgs<($($t,)+)> for ($($a,)+) {
            #[allow(non_snake_case)]
            fn into_args(self) -> Vec<ArgSource> {
                let ($($a,)+) = self;
                vec![$($a.into_arg()),+]
            }
        }
    };
}
tuple_args!(A1 T1, A2 T2);
tuple_args!(A1 T1, A2 T2, A3 T3);
tuple_args!(A1 T1, A2 T2, A3 T3, A4 T4);
tuple_args!(A1 T1, A2 T2, A3 T3, A4 T4, A5 T5);
tuple_args!(A1 T1, A2 T2, A3 T3, A4 T4, A5 T5, A6 T6);
tuple_args!(A1 T1, A2 T2, A3 T3, A4 T4, A5 T5, A6 T6, A7 T7);
tuple_args!(A1 T1, A2 T2, A3 T3, A4 T4, A5 T5, A6 T6, A7 T7, A8 T8);

//! Typed arguments: what `submit`, `map` and `delayed` accept in each argument slot.

use super::TaskFailure;
use crate::client::{Future, FutureHandle};
use crate::collections::delayed::{Delayed, Node};
use crate::value::{Data, Value};
use std::sync::Arc;

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

impl<T: Data> IntoArg<T> for Delayed<T> {
    fn into_arg(self) -> ArgSource {
        ArgSource::Node(self.node().clone())
    }
}

impl<T: Data> IntoArg<T> for &Delayed<T> {
    fn into_arg(self) -> ArgSource {
        ArgSource::Node(self.node().clone())
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

/// Takes the next argument of an op as a `T`, naming the op and the argument on failure.
pub fn next_arg<'a, T: Data + Clone>(
    args: &mut impl Iterator<Item = &'a Value>,
    op: &str,
    name: &str,
) -> Result<T, TaskFailure> {
    let value = args
        .next()
        .ok_or_else(|| TaskFailure::new(format!("op `{op}`: argument `{name}` is missing")))?;
    value
        .extract::<T>()
        .map_err(|e| TaskFailure::new(format!("op `{op}`: argument `{name}`: {e}")))
}

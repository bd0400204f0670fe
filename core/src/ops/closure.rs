//! Closures as ops, for in-process clusters.

use super::{ErasedFn, Op, OpRef, TaskFailure};
use crate::value::{Data, Value};
use std::marker::PhantomData;
use std::sync::Arc;

/// A closure made into an op with [`closure`]. It runs only on in-process clusters.
pub struct ClosureOp<Args, Out> {
    name: Arc<str>,
    body: Arc<ErasedFn>,
    types: PhantomData<fn(Args) -> Out>,
}

impl<Args, Out> Clone for ClosureOp<Args, Out> {
    fn clone(&self) -> Self {
        ClosureOp {
            name: self.name.clone(),
            body: self.body.clone(),
            types: PhantomData,
        }
    }
}

impl<Args, Out> ClosureOp<Args, Out> {
    /// Gives the closure a name for its keys and for error messages (default `closure`).
    pub fn named(mut self, name: &str) -> Self {
        self.name = Arc::from(name);
        self
    }
}

impl<Args: 'static, Out: Data> Op for ClosureOp<Args, Out> {
    type Args = Args;
    type Output = Out;
    fn op_ref(&self) -> OpRef {
        OpRef::Closure(self.name.clone(), self.body.clone())
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// A function of typed arguments that can be erased into an op body.
pub trait IntoClosure<Args, Out> {
    /// The type-erased body.
    fn erase(self, name: Arc<str>) -> Arc<ErasedFn>;
}

/// Makes an op from a closure, for in-process clusters:
///
/// ```
/// let double = rask::ops::closure(|x: i64| 2 * x).named("double");
/// # let _ = double;
/// ```
pub fn closure<Args, Out, F: IntoClosure<Args, Out>>(body: F) -> ClosureOp<Args, Out> {
    let name: Arc<str> = Arc::from("closure");
    ClosureOp {
        body: body.erase(name.clone()),
        name,
        types: PhantomData,
    }
}

macro_rules! closure_arity {
    ($($a:ident),*) => {
        impl<F, R, $($a,)*> IntoClosure<($($a,)*), R> for F
        where
            F: Fn($($a),*) -> R + Send + Sync + 'static,
            R: Data,
            $($a: Data + Clone,)*
        {
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn erase(self, name: Arc<str>) -> Arc<ErasedFn> {
                Arc::new(move |args: &[Value]| -> Result<Value, TaskFailure> {
                    const ARITY: usize = <[&str]>::len(&[$(stringify!($a)),*]);
                    if args.len() != ARITY {
                        return Err(TaskFailure::new(format!(
                            "closure `{name}` takes {ARITY} arguments, got {}", args.len())));
                    }
                    let mut it = args.iter();
                    $( let $a: $a = super::next_arg(&mut it, &name, stringify!($a))?; )*
                    Ok(Value::new(self($($a),*)))
                })
            }
        }
    };
}
closure_arity!();
closure_arity!(A1);
closure_arity!(A1, A2);
closure_arity!(A1, A2, A3);
closure_arity!(A1, A2, A3, A4);
closure_arity!(A1, A2, A3, A4, A5);
closure_arity!(A1, A2, A3, A4, A5, A6);

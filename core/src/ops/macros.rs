//! The `op!` macro: registers a function as a named op.

/// Registers a function as a named op that any worker built from this binary can run.
///
/// The function becomes a unit struct of the same name: `name::call(..)` runs it
/// directly, and the struct itself is what `Client::submit`, `Client::map` and
/// `rask::delayed` take. A body returning `Result<T, E>` (`E: Display`) fails the task
/// with `E`'s message; a panic fails it too, and the worker carries on.
///
/// ```
/// rask::op! {
///     /// Parses a number.
///     pub fn parse(text: String) -> Result<i64, std::num::ParseIntError> { text.trim().parse() }
/// }
/// assert_eq!(parse::call(" 7 ".into()).unwrap(), 7);
/// ```
#[macro_export]
macro_rules! op {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> Result<$ok:ty, $err:ty> $body:block
    ) => {
        $crate::op!(@define [$(#[$meta])*] $vis $name ($($arg : $ty),*) $ok, Result<$ok, $err>, $body,
            |result: Result<$ok, $err>| result.map_err(|e| $crate::ops::TaskFailure::new(e.to_string())));
    };
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty $body:block
    ) => {
        $crate::op!(@define [$(#[$meta])*] $vis $name ($($arg : $ty),*) $ret, $ret, $body,
            |result: $ret| Ok::<$ret, $crate::ops::TaskFailure>(result));
    };
    (@define [$($meta:tt)*] $vis:vis $name:ident ($($arg:ident : $ty:ty),*) $out:ty, $ret:ty, $body:block, $wrap:expr) => {
        $($meta)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        $vis struct $name;

        impl $name {
            /// The op's full registered name.
            pub const NAME: &'static str = concat!(module_path!(), "::", stringify!($name));

            /// The op's registration.
            const ENTRY: $crate::ops::OpEntry = $crate::ops::OpEntry { name: $name::NAME, run: $name::erased };

            /// Runs the op's body directly in this thread.
            #[allow(clippy::too_many_arguments, dead_code)]
            $vis fn call($($arg: $ty),*) -> $ret $body

            fn erased(args: &[$crate::value::Value]) -> Result<$crate::value::Value, $crate::ops::TaskFailure> {
                const ARITY: usize = <[&str]>::len(&[$(stringify!($arg)),*]);
                if args.len() != ARITY {
                    return Err($crate::ops::TaskFailure::new(format!(
                        "op `{}` takes {} arguments, got {}", Self::NAME, ARITY, args.len())));
                }
                #[allow(unused_mut, unused_variables)]
                let mut it = args.iter();
                $( let $arg: $ty = $crate::ops::next_arg(&mut it, Self::NAME, stringify!($arg))?; )*
                let wrap = $wrap;
                wrap($name::call($($arg),*)).map($crate::value::Value::new)
            }
        }

        $crate::inventory::submit! { $name::ENTRY }

        impl $crate::ops::Op for $name {
            type Args = ($($ty,)*);
            type Output = $out;
            fn op_ref(&self) -> $crate::ops::OpRef {
                // This definition itself, not a lookup by name: in a notebook, a
                // cell that defines the op again must run its new body.
                $crate::ops::OpRef::Registered(&Self::ENTRY)
            }
            fn name(&self) -> &str {
                Self::NAME
            }
        }
    };
}

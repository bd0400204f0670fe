//! Rust's operators on arrays: `&x + &y`, `&x * 2`, `1.5 - &x`, `-&x`, for
//! arrays and owned arrays alike, with any integer or float scalar (NumPy 2's
//! rules: `uint8 + 3` stays `uint8`, `int + 0.5` is `float64`).
//!
//! Operators panic where the named methods ([`Array::binary`],
//! [`Array::binary_scalar`], ...) return an error: on shapes that do not
//! broadcast, types that do not support the operation, and integers that do
//! not fit the array's type.

use super::elementwise::{BinaryOp, UnaryOp};
use super::scalar::Scalar;
use super::Array;

macro_rules! with_arrays {
    ($trait:ident, $method:ident, $op:ident) => {
        impl std::ops::$trait<&Array> for &Array {
            type Output = Array;
            fn $method(self, other: &Array) -> Array {
                self.binary(BinaryOp::$op, other)
                    .unwrap_or_else(|e| panic!("{}: {e}", stringify!($method)))
            }
        }
        impl std::ops::$trait<Array> for &Array {
            type Output = Array;
            fn $method(self, other: Array) -> Array {
                std::ops::$trait::$method(self, &other)
            }
        }
        impl std::ops::$trait<&Array> for Array {
            type Output = Array;
            fn $method(self, other: &Array) -> Array {
                std::ops::$trait::$method(&self, other)
            }
        }
        impl std::ops::$trait<Array> for Array {
            type Output = Array;
            fn $method(self, other: Array) -> Array {
                std::ops::$trait::$method(&self, &other)
            }
        }
    };
}

/// The scalars an array's operators take on their right: every Rust
/// integer and float type that converts to a [`Scalar`] without loss.
pub trait IntoScalar: Copy + Into<Scalar> {}
impl IntoScalar for i8 {}
impl IntoScalar for i16 {}
impl IntoScalar for i32 {}
impl IntoScalar for i64 {}
impl IntoScalar for u8 {}
impl IntoScalar for u16 {}
impl IntoScalar for u32 {}
impl IntoScalar for f32 {}
impl IntoScalar for f64 {}

macro_rules! with_scalars {
    ($trait:ident, $method:ident, $op:ident) => {
        impl<S: IntoScalar> std::ops::$trait<S> for &Array {
            type Output = Array;
            fn $method(self, scalar: S) -> Array {
                self.binary_scalar(BinaryOp::$op, scalar)
                    .unwrap_or_else(|e| panic!("{}: {e}", stringify!($method)))
            }
        }
        impl<S: IntoScalar> std::ops::$trait<S> for Array {
            type Output = Array;
            fn $method(self, scalar: S) -> Array {
                std::ops::$trait::$method(&self, scalar)
            }
        }
        // On the left, one integer and one float type, so that a literal
        // (`2 * &x`, `0.5 * &x`) has exactly one impl to pick.
        with_scalars!(@left $trait, $method, $op, i64);
        with_scalars!(@left $trait, $method, $op, f64);
    };
    (@left $trait:ident, $method:ident, $op:ident, $t:ty) => {
        impl std::ops::$trait<&Array> for $t {
            type Output = Array;
            fn $method(self, array: &Array) -> Array {
                array
                    .scalar_binary(self, BinaryOp::$op)
                    .unwrap_or_else(|e| panic!("{}: {e}", stringify!($method)))
            }
        }
        impl std::ops::$trait<Array> for $t {
            type Output = Array;
            fn $method(self, array: Array) -> Array {
                std::ops::$trait::$method(self, &array)
            }
        }
    };
}

macro_rules! operator {
    ($trait:ident, $method:ident, $op:ident) => {
        with_arrays!($trait, $method, $op);
        with_scalars!($trait, $method, $op);
    };
}
operator!(Add, add, Add);
operator!(Sub, sub, Sub);
operator!(Mul, mul, Mul);
operator!(Div, div, Div);
operator!(Rem, rem, Rem);

impl std::ops::Neg for &Array {
    type Output = Array;
    fn neg(self) -> Array {
        self.map(UnaryOp::Neg)
            .unwrap_or_else(|e| panic!("neg: {e}"))
    }
}

impl std::ops::Neg for Array {
    type Output = Array;
    fn neg(self) -> Array {
        -&self
    }
}

//! Element types: NumPy's names, promotion rules and casts.

use super::chunk::Chunk;
use ndarray::ArrayD;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The element type of an array (NumPy's dtype).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DType {
    /// `bool`.
    Bool,
    /// `uint8`.
    U8,
    /// `int32`.
    I32,
    /// `int64`.
    I64,
    /// `float32`.
    F32,
    /// `float64`.
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn itemsize(self) -> usize {
        match self {
            DType::Bool | DType::U8 => 1,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }

    /// NumPy's name: `float64`, `int32`, `bool`, ...
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// Whether the type is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// The type both operands of a binary operation become (NumPy's rules:
    /// `int32 + float32` is `float64`, `uint8 + int32` is `int32`).
    pub fn promote(self, other: DType) -> DType {
        use DType::*;
        match (self.max(other), self.min(other)) {
            (F32, I32 | I64) => F64,
            (high, _) => high,
        }
    }

    /// The result type of an arithmetic operation with a plain number, which
    /// does not widen the array's type (NumPy's weak scalars).
    pub fn with_scalar(self, scalar_is_float: bool) -> DType {
        match self {
            DType::Bool if scalar_is_float => DType::F64,
            DType::Bool => DType::I64,
            t if scalar_is_float && !t.is_float() => DType::F64,
            t => t,
        }
    }

    /// The type of a true division or a floating-point function of this type.
    pub fn float(self) -> DType {
        match self {
            DType::F32 => DType::F32,
            _ => DType::F64,
        }
    }

    /// The type `sum` and `prod` accumulate in (NumPy: small integers to int64).
    pub fn accumulator(self) -> DType {
        match self {
            DType::Bool | DType::U8 | DType::I32 | DType::I64 => DType::I64,
            t => t,
        }
    }

    /// The `.npy` type descriptor (`<f8`, `|b1`, ...).
    pub fn npy_descr(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
            DType::U8 => "|u1",
            DType::I32 => "<i4",
            DType::I64 => "<i8",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
        }
    }

    /// The type of a `.npy` descriptor; `None` if rask has no such type.
    pub fn from_npy_descr(descr: &str) -> Option<DType> {
        Some(match descr {
            "|b1" | "b1" | "?" | "|?" => DType::Bool,
            "|u1" | "u1" | "<u1" => DType::U8,
            "<i4" | "i4" => DType::I32,
            "<i8" | "i8" => DType::I64,
            "<f4" | "f4" => DType::F32,
            "<f8" | "f8" => DType::F64,
            _ => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type that can be an array element.
pub trait Element:
    Copy + Send + Sync + PartialOrd + Default + fmt::Debug + bytemuck::NoUninit + 'static
{
    /// Its dtype.
    const DTYPE: DType;
    /// The value as an `f64` (`as` semantics; `true` is 1).
    fn to_f64(self) -> f64;
    /// A value from an `f64` (`as` semantics: saturating, NaN is 0; nonzero is `true`).
    fn from_f64(value: f64) -> Self;
    /// The value as an `i64` (`as` semantics).
    fn to_i64(self) -> i64;
    /// A value from an `i64` (`as` semantics: wrapping for narrow integers).
    fn from_i64(value: i64) -> Self;
    /// Wraps an array of this type.
    fn wrap(array: ArrayD<Self>) -> Chunk;
    /// The chunk's array, if it holds this type.
    fn view(chunk: &Chunk) -> Option<&ArrayD<Self>>;
    /// The chunk's array, taken, if it holds this type; else the chunk back.
    fn take(chunk: Chunk) -> Result<ArrayD<Self>, Chunk>;
    /// The value cast from another element type.
    fn cast<S: Element>(value: S) -> Self {
        if Self::DTYPE.is_float() || S::DTYPE.is_float() {
            Self::from_f64(value.to_f64())
        } else {
            Self::from_i64(value.to_i64())
        }
    }
    /// Whether the value is NaN.
    fn is_nan(self) -> bool {
        #[allow(clippy::eq_op)]
        let nan = self != self;
        nan
    }
}

macro_rules! element {
    ($t:ty, $dtype:ident, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$dtype;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(value: f64) -> Self {
                value as $t
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn from_i64(value: i64) -> Self {
                value as $t
            }
            fn wrap(array: ArrayD<Self>) -> Chunk {
                Chunk::$variant(array)
            }
            fn view(chunk: &Chunk) -> Option<&ArrayD<Self>> {
                match chunk {
                    Chunk::$variant(array) => Some(array),
                    _ => None,
                }
            }
            fn take(chunk: Chunk) -> Result<ArrayD<Self>, Chunk> {
                match chunk {
                    Chunk::$variant(array) => Ok(array),
                    other => Err(other),
                }
            }
        }
    };
}
element!(f64, F64, F64);
element!(f32, F32, F32);
element!(i64, I64, I64);
element!(i32, I32, I32);
element!(u8, U8, U8);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn to_f64(self) -> f64 {
        f64::from(u8::from(self))
    }
    fn from_f64(value: f64) -> Self {
        value != 0.0
    }
    fn to_i64(self) -> i64 {
        i64::from(self)
    }
    fn from_i64(value: i64) -> Self {
        value != 0
    }
    fn wrap(array: ArrayD<Self>) -> Chunk {
        Chunk::Bool(array)
    }
    fn view(chunk: &Chunk) -> Option<&ArrayD<Self>> {
        match chunk {
            Chunk::Bool(array) => Some(array),
            _ => None,
        }
    }
    fn take(chunk: Chunk) -> Result<ArrayD<Self>, Chunk> {
        match chunk {
            Chunk::Bool(array) => Ok(array),
            other => Err(other),
        }
    }
}

/// A numeric element: arithmetic as NumPy does it (integers wrap).
pub trait Number: Element + std::iter::Sum + std::ops::Add<Output = Self> {
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// `a op b`.
    fn arith(op: super::elementwise::BinaryOp, a: Self, b: Self) -> Self;
    /// `a * b` for products (wrapping for integers).
    fn times(a: Self, b: Self) -> Self;
}

macro_rules! integer {
    ($t:ty) => {
        impl Number for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            fn arith(op: super::elementwise::BinaryOp, a: Self, b: Self) -> Self {
                use super::elementwise::BinaryOp::*;
                match op {
                    Add => a.wrapping_add(b),
                    Sub => a.wrapping_sub(b),
                    Mul => a.wrapping_mul(b),
                    // Integer division by zero is 0, as NumPy gives (with a warning).
                    Div | FloorDiv => {
                        if b == 0 {
                            0
                        } else {
                            let q = a.wrapping_div(b);
                            #[allow(unused_comparisons)]
                            let adjust = (a.wrapping_rem(b) != 0) && ((a < 0) != (b < 0));
                            if adjust {
                                q.wrapping_sub(1)
                            } else {
                                q
                            }
                        }
                    }
                    Rem => {
                        if b == 0 {
                            0
                        } else {
                            let r = a.wrapping_rem(b);
                            #[allow(unused_comparisons)]
                            let adjust = r != 0 && ((r < 0) != (b < 0));
                            if adjust {
                                r.wrapping_add(b)
                            } else {
                                r
                            }
                        }
                    }
                    Pow => {
                        #[allow(unused_comparisons)]
                        let negative = b < 0;
                        if negative {
                            0
                        } else {
                            a.wrapping_pow(b as u32)
                        }
                    }
                    Min => {
                        if a < b {
                            a
                        } else {
                            b
                        }
                    }
                    Max => {
                        if a > b {
                            a
                        } else {
                            b
                        }
                    }
                }
            }
            fn times(a: Self, b: Self) -> Self {
                a.wrapping_mul(b)
            }
        }
    };
}
integer!(i64);
integer!(i32);
integer!(u8);

/// Floor division and remainder from one division, as NumPy's `npy_divmod`
/// does, so that `a == (a // b) * b + a % b` as nearly as rounding allows
/// (`1.0 // 0.1` is 9, since `1.0 % 0.1` is 0.1 - ε).
fn divmod<F: num_traits::Float>(a: F, b: F) -> (F, F) {
    let zero = F::zero();
    let m = a % b;
    if b == zero {
        return (a / b, m);
    }
    let mut div = (a - m) / b;
    let m = if m != zero {
        if (b < zero) != (m < zero) {
            div = div - F::one();
            m + b
        } else {
            m
        }
    } else {
        zero.copysign(b)
    };
    let floordiv = if div != zero {
        let f = div.floor();
        if div - f > F::from(0.5).expect("0.5 is a float") {
            f + F::one()
        } else {
            f
        }
    } else {
        zero.copysign(a / b)
    };
    (floordiv, m)
}

macro_rules! float {
    ($t:ty) => {
        impl Number for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn arith(op: super::elementwise::BinaryOp, a: Self, b: Self) -> Self {
                use super::elementwise::BinaryOp::*;
                match op {
                    Add => a + b,
                    Sub => a - b,
                    Mul => a * b,
                    Div => a / b,
                    FloorDiv => divmod(a, b).0,
                    Rem => divmod(a, b).1,
                    Pow => a.powf(b),
                    // NaN wins, as in NumPy's minimum/maximum.
                    Min => {
                        if a.is_nan() || a < b {
                            a
                        } else if b.is_nan() {
                            b
                        } else {
                            b
                        }
                    }
                    Max => {
                        if a.is_nan() || a > b {
                            a
                        } else if b.is_nan() {
                            b
                        } else {
                            b
                        }
                    }
                }
            }
            fn times(a: Self, b: Self) -> Self {
                a * b
            }
        }
    };
}
float!(f64);
float!(f32);

#[cfg(test)]
mod tests {
    use super::DType::*;

    #[test]
    fn promotion_follows_numpy() {
        assert_eq!(I32.promote(F32), F64);
        assert_eq!(U8.promote(I32), I32);
        assert_eq!(Bool.promote(U8), U8);
        assert_eq!(F32.promote(F32), F32);
        assert_eq!(I64.promote(F64), F64);
        assert_eq!(F32.with_scalar(true), F32);
        assert_eq!(I32.with_scalar(true), F64);
        assert_eq!(I32.with_scalar(false), I32);
    }
}

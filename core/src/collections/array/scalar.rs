//! Plain numbers beside arrays, with NumPy 2's rules for Python scalars
//! (NEP 50): a scalar is "weak", so it takes the array's type instead of
//! widening it; an integer that does not fit an integer array's type is an
//! error in arithmetic and is compared by its value.

use super::dtype::{DType, Element};
use super::ArrayError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A plain number in an operation with an array. It takes the array's type
/// (`uint8 + 3` is `uint8`, `float32 * 0.5` is `float32`) unless it must not:
/// an integer array with a float gives `float64`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Scalar {
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
}

impl Scalar {
    /// Whether it is a floating-point number.
    pub fn is_float(self) -> bool {
        matches!(self, Scalar::Float(_))
    }

    /// The value as a `T` (`as` semantics; check [`Scalar::fits`] first where
    /// wrapping would be wrong).
    pub(crate) fn to<T: Element>(self) -> T {
        match self {
            Scalar::Int(i) => T::from_i64(i),
            Scalar::Float(f) => T::from_f64(f),
        }
    }

    /// Whether an integer scalar is in `dtype`'s range (floats and float
    /// arrays always fit: they round, as NumPy's do).
    pub fn fits(self, dtype: DType) -> bool {
        let Scalar::Int(i) = self else {
            return true;
        };
        match dtype {
            DType::U8 => u8::try_from(i).is_ok(),
            DType::I32 => i32::try_from(i).is_ok(),
            DType::Bool | DType::I64 | DType::F32 | DType::F64 => true,
        }
    }

    /// `Ok` when the scalar fits `dtype`; otherwise NumPy 2's OverflowError,
    /// as an [`ArrayError::ScalarOutOfRange`] naming `op`.
    pub(crate) fn check_fits(self, dtype: DType, op: &str) -> Result<(), ArrayError> {
        if self.fits(dtype) {
            Ok(())
        } else {
            Err(ArrayError::ScalarOutOfRange {
                op: op.to_string(),
                scalar: self,
                dtype,
            })
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x:?}"),
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Scalar {
            fn from(value: $t) -> Self {
                Scalar::Int(value.into())
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32, bool);

impl From<f64> for Scalar {
    fn from(value: f64) -> Self {
        Scalar::Float(value)
    }
}

impl From<f32> for Scalar {
    fn from(value: f32) -> Self {
        Scalar::Float(value.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_fit_by_value() {
        assert!(Scalar::from(255).fits(DType::U8));
        assert!(!Scalar::from(256).fits(DType::U8));
        assert!(!Scalar::from(-1).fits(DType::U8));
        assert!(!Scalar::Int(1 << 40).fits(DType::I32));
        assert!(Scalar::Int(1 << 40).fits(DType::I64));
        assert!(Scalar::Int(1 << 40).fits(DType::F32));
        assert!(Scalar::Float(1e300).fits(DType::U8));
    }
}

//! NumPy's named elementwise functions as methods that take an array or a
//! plain number alike: `x.greater(0)`, `x.less_equal(&y)`, `x.maximum(0.0)`,
//! `x.power(2)`, and `where_(&mask, &x, 0)`. Rust's `>` and `==` must return
//! a `bool`, so comparisons are these methods rather than operators.

use super::elementwise::{BinaryOp, CompareOp, Elementwise, Params};
use super::operators::IntoScalar;
use super::scalar::Scalar;
use super::{Array, ArrayError};

/// The other side of an elementwise function: an array or a plain number.
#[derive(Clone, Copy, Debug)]
pub enum Operand<'a> {
    /// An array (broadcast against `self`).
    Array(&'a Array),
    /// A plain number, with NumPy 2's rules for Python scalars.
    Scalar(Scalar),
}

impl<'a> From<&'a Array> for Operand<'a> {
    fn from(array: &'a Array) -> Self {
        Operand::Array(array)
    }
}

impl<S: IntoScalar> From<S> for Operand<'_> {
    fn from(scalar: S) -> Self {
        Operand::Scalar(scalar.into())
    }
}

impl From<Scalar> for Operand<'_> {
    fn from(scalar: Scalar) -> Self {
        Operand::Scalar(scalar)
    }
}

macro_rules! comparisons {
    ($($name:ident => $op:ident, $what:literal;)*) => {$(
        #[doc = concat!("`self ", $what, " other` elementwise (NumPy's `", stringify!($name), "`); the result is `bool`.")]
        pub fn $name<'a>(&self, other: impl Into<Operand<'a>>) -> Result<Array, ArrayError> {
            self.compare_with(CompareOp::$op, other.into())
        }
    )*};
}

macro_rules! arithmetic {
    ($($name:ident => $op:ident, $what:literal;)*) => {$(
        #[doc = concat!($what, " elementwise (NumPy's `", stringify!($name), "`), with an array or a number.")]
        pub fn $name<'a>(&self, other: impl Into<Operand<'a>>) -> Result<Array, ArrayError> {
            match other.into() {
                Operand::Array(other) => self.binary(BinaryOp::$op, other),
                Operand::Scalar(scalar) => self.binary_scalar(BinaryOp::$op, scalar),
            }
        }
    )*};
}

impl Array {
    fn compare_with(&self, op: CompareOp, other: Operand<'_>) -> Result<Array, ArrayError> {
        match other {
            Operand::Array(other) => self.compare(op, other),
            Operand::Scalar(scalar) => self.compare_scalar(op, scalar),
        }
    }

    comparisons! {
        equal => Eq, "==";
        not_equal => Ne, "!=";
        less => Lt, "<";
        less_equal => Le, "<=";
        greater => Gt, ">";
        greater_equal => Ge, ">=";
    }

    arithmetic! {
        maximum => Max, "The larger of `self` and `other` (NaN wins)";
        minimum => Min, "The smaller of `self` and `other` (NaN wins)";
        power => Pow, "`self ** other`";
        floor_divide => FloorDiv, "`self // other`";
    }
}

/// `if cond { a } else { b }` elementwise, with broadcasting (NumPy's
/// `where`); `a` and `b` are arrays or plain numbers, which take the other
/// side's type as in NumPy 2 (`where(m, int32_array, 0)` is `int32`).
pub fn where_<'a, 'b>(
    cond: &Array,
    a: impl Into<Operand<'a>>,
    b: impl Into<Operand<'b>>,
) -> Result<Array, ArrayError> {
    let (a, b) = (a.into(), b.into());
    let dtype = match (a, b) {
        (Operand::Array(x), Operand::Array(y)) => x.dtype().promote(y.dtype()),
        (Operand::Array(x), Operand::Scalar(s)) | (Operand::Scalar(s), Operand::Array(x)) => {
            let work = x.dtype().with_scalar(s.is_float());
            s.check_fits(work, "where")?;
            work
        }
        (Operand::Scalar(s), Operand::Scalar(t)) => {
            if s.is_float() || t.is_float() {
                super::DType::F64
            } else {
                super::DType::I64
            }
        }
    };
    let as_array = |side: Operand<'_>| -> Result<Array, ArrayError> {
        match side {
            Operand::Array(x) => Ok(x.clone()),
            Operand::Scalar(s) => super::full(&[], 1, dtype, s),
        }
    };
    let (a, b) = (as_array(a)?, as_array(b)?);
    let params = Params {
        op: Elementwise::Where,
        work: dtype,
        out: dtype,
    };
    Array::elementwise("where", &[cond, &a, &b], params)
}

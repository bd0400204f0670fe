//! Elementwise operations with NumPy broadcasting: arithmetic, comparisons,
//! logic, math functions, `where` and `astype`.

use super::chunk::{with_dtype, Chunk};
use super::dtype::{DType, Element, Number};
use super::grid;
use super::kernel::{self, chunks, fail, kernel, output};
use super::scalar::Scalar;
use super::{Array, ArrayError};
use crate::graph::Key;
use crate::ops::TaskFailure;
use ndarray::{CowArray, IxDyn, Zip};
use serde::{Deserialize, Serialize};

/// Arithmetic between two operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b` (true division: integers give `float64`).
    Div,
    /// `a // b` (floor division).
    FloorDiv,
    /// `a % b` (the sign of `b`, as NumPy).
    Rem,
    /// `a ** b`.
    Pow,
    /// `minimum(a, b)` (NaN wins).
    Min,
    /// `maximum(a, b)` (NaN wins).
    Max,
}

/// Comparisons; the result is `bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// Functions of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `|x|`.
    Abs,
    /// `x * x`.
    Square,
    /// `sqrt(x)`.
    Sqrt,
    /// `e^x`.
    Exp,
    /// Natural logarithm.
    Log,
    /// Base-10 logarithm.
    Log10,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Tangent.
    Tan,
    /// Hyperbolic tangent.
    Tanh,
    /// Round down.
    Floor,
    /// Round up.
    Ceil,
    /// Round half to even (NumPy's `round`).
    Round,
    /// Logical not (`bool` arrays).
    Not,
    /// Whether each element is NaN.
    IsNan,
    /// Whether each element is finite.
    IsFinite,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) enum Elementwise {
    Binary(BinaryOp),
    /// `array op scalar`, or `scalar op array` when `left`.
    WithScalar {
        op: BinaryOp,
        scalar: Scalar,
        left: bool,
    },
    Compare(CompareOp),
    CompareScalar(CompareOp, Scalar),
    And,
    Or,
    Xor,
    Unary(UnaryOp),
    Where,
    AsType,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Params {
    pub(super) op: Elementwise,
    /// The type the operands are brought to before the operation.
    pub(super) work: DType,
    /// The result type.
    pub(super) out: DType,
}

kernel! {
    /// One elementwise operation on the blocks at one position.
    Map(Params) => |p, inputs| {
        let inputs = chunks(inputs)?;
        output(apply(p, &inputs)?)
    }
}

/// `chunk` as an array of `T`, borrowed when it already is one.
fn as_type<T: Element>(chunk: &Chunk) -> CowArray<'_, T, IxDyn> {
    match T::view(chunk) {
        Some(array) => CowArray::from(array.view()),
        None => CowArray::from(chunk.cast::<T>()),
    }
}

fn broadcast_shape(shapes: &[&[usize]]) -> Result<Vec<usize>, String> {
    let ndim = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1; ndim];
    for shape in shapes {
        for (i, &d) in shape.iter().enumerate() {
            let at = ndim - shape.len() + i;
            if out[at] == 1 {
                out[at] = d;
            } else if d != 1 && d != out[at] {
                return Err(format!("shapes {shapes:?} do not broadcast"));
            }
        }
    }
    Ok(out)
}

/// NumPy refuses integers to negative integer powers (a ValueError), where
/// wrapping would give 0 or garbage.
fn check_exponents<T: Number>(
    op: BinaryOp,
    exponents: &CowArray<'_, T, IxDyn>,
) -> Result<(), TaskFailure> {
    if op == BinaryOp::Pow && !T::DTYPE.is_float() && exponents.iter().any(|&e| e < T::ZERO) {
        return Err(fail(
            "integers to negative integer powers are not allowed (as in NumPy); cast to float first",
        ));
    }
    Ok(())
}

fn binary<T: Number>(op: BinaryOp, a: &Chunk, b: &Chunk) -> Result<Chunk, TaskFailure> {
    let (a, b) = (as_type::<T>(a), as_type::<T>(b));
    check_exponents(op, &b)?;
    let shape = IxDyn(&broadcast_shape(&[a.shape(), b.shape()]).map_err(fail)?);
    let (a, b) = (a.broadcast(shape.clone()), b.broadcast(shape));
    let (Some(a), Some(b)) = (a, b) else {
        return Err(fail("blocks do not broadcast"));
    };
    Ok(T::wrap(
        Zip::from(&a)
            .and(&b)
            .map_collect(|&x, &y| T::arith(op, x, y)),
    ))
}

fn with_scalar<T: Number>(
    op: BinaryOp,
    a: &Chunk,
    scalar: Scalar,
    left: bool,
) -> Result<Chunk, TaskFailure> {
    let s: T = scalar.to();
    let a = as_type::<T>(a);
    if left {
        check_exponents(op, &a)?;
    }
    Ok(T::wrap(if left {
        a.mapv(|x| T::arith(op, s, x))
    } else {
        a.mapv(|x| T::arith(op, x, s))
    }))
}

fn compare<T: Element>(
    op: CompareOp,
    a: ndarray::ArrayViewD<'_, T>,
    b: ndarray::ArrayViewD<'_, T>,
) -> Result<Chunk, TaskFailure> {
    let shape = IxDyn(&broadcast_shape(&[a.shape(), b.shape()]).map_err(fail)?);
    let (Some(a), Some(b)) = (a.broadcast(shape.clone()), b.broadcast(shape)) else {
        return Err(fail("blocks do not broadcast"));
    };
    Ok(Chunk::Bool(
        Zip::from(&a).and(&b).map_collect(|x, y| test(op, x, y)),
    ))
}

fn test<T: PartialOrd>(op: CompareOp, x: &T, y: &T) -> bool {
    match op {
        CompareOp::Eq => x == y,
        CompareOp::Ne => x != y,
        CompareOp::Lt => x < y,
        CompareOp::Le => x <= y,
        CompareOp::Gt => x > y,
        CompareOp::Ge => x >= y,
    }
}

fn logical(a: &Chunk, b: &Chunk, f: fn(bool, bool) -> bool) -> Result<Chunk, TaskFailure> {
    let (a, b) = (as_type::<bool>(a), as_type::<bool>(b));
    let shape = IxDyn(&broadcast_shape(&[a.shape(), b.shape()]).map_err(fail)?);
    let (Some(a), Some(b)) = (a.broadcast(shape.clone()), b.broadcast(shape)) else {
        return Err(fail("blocks do not broadcast"));
    };
    Ok(Chunk::Bool(
        Zip::from(&a).and(&b).map_collect(|&x, &y| f(x, y)),
    ))
}

fn float_fn<F: num_float::Float>(op: UnaryOp, a: &Chunk) -> Chunk {
    F::wrap(as_type::<F>(a).mapv(|x| x.apply(op)))
}

mod num_float {
    use super::super::dtype::Number;
    use super::UnaryOp;

    /// `f32` and `f64` functions.
    pub trait Float: Number {
        fn apply(self, op: UnaryOp) -> Self;
    }

    macro_rules! float {
        ($t:ty) => {
            impl Float for $t {
                fn apply(self, op: UnaryOp) -> Self {
                    match op {
                        UnaryOp::Sqrt => self.sqrt(),
                        UnaryOp::Exp => self.exp(),
                        UnaryOp::Log => self.ln(),
                        UnaryOp::Log10 => self.log10(),
                        UnaryOp::Sin => self.sin(),
                        UnaryOp::Cos => self.cos(),
                        UnaryOp::Tan => self.tan(),
                        UnaryOp::Tanh => self.tanh(),
                        UnaryOp::Floor => self.floor(),
                        UnaryOp::Ceil => self.ceil(),
                        UnaryOp::Round => self.round_ties_even(),
                        _ => self,
                    }
                }
            }
        };
    }
    float!(f64);
    float!(f32);
}

fn unary(op: UnaryOp, work: DType, a: &Chunk) -> Result<Chunk, TaskFailure> {
    macro_rules! numeric {
        ($f:expr) => {
            match work {
                DType::F64 => Ok(F64::wrap(as_type::<f64>(a).mapv($f))),
                DType::F32 => Ok(F32::wrap(as_type::<f32>(a).mapv($f))),
                DType::I64 => Ok(I64::wrap(as_type::<i64>(a).mapv($f))),
                DType::I32 => Ok(I32::wrap(as_type::<i32>(a).mapv($f))),
                DType::U8 => Ok(U8::wrap(as_type::<u8>(a).mapv($f))),
                DType::Bool => Err(fail(format!("{op:?} of a bool array"))),
            }
        };
    }
    type F64 = f64;
    type F32 = f32;
    type I64 = i64;
    type I32 = i32;
    type U8 = u8;
    #[allow(clippy::absurd_extreme_comparisons)]
    match op {
        UnaryOp::Neg => numeric!(|x| Number::arith(BinaryOp::Sub, Number::ZERO, x)),
        UnaryOp::Abs => numeric!(|x| if x < Number::ZERO {
            Number::arith(BinaryOp::Sub, Number::ZERO, x)
        } else {
            x
        }),
        UnaryOp::Square => numeric!(|x| Number::times(x, x)),
        UnaryOp::Not => Ok(Chunk::Bool(as_type::<bool>(a).mapv(|x| !x))),
        UnaryOp::IsNan => Ok(Chunk::Bool(as_type::<f64>(a).mapv(f64::is_nan))),
        UnaryOp::IsFinite => Ok(Chunk::Bool(as_type::<f64>(a).mapv(f64::is_finite))),
        _ => match work {
            DType::F32 => Ok(float_fn::<f32>(op, a)),
            _ => Ok(float_fn::<f64>(op, a)),
        },
    }
}

fn apply(p: &Params, inputs: &[std::sync::Arc<Chunk>]) -> Result<Chunk, TaskFailure> {
    let arg = |n: usize| {
        inputs
            .get(n)
            .map(|c| &**c)
            .ok_or_else(|| fail(format!("elementwise: input {n} is missing")))
    };
    let numeric_only = |what: &str| fail(format!("{what} of bool arrays; use astype first"));
    let result = match &p.op {
        Elementwise::Binary(op) => with_number(p.work, numeric_only("arithmetic"), |t| match t {
            DType::F64 => binary::<f64>(*op, arg(0)?, arg(1)?),
            DType::F32 => binary::<f32>(*op, arg(0)?, arg(1)?),
            DType::I64 => binary::<i64>(*op, arg(0)?, arg(1)?),
            DType::I32 => binary::<i32>(*op, arg(0)?, arg(1)?),
            _ => binary::<u8>(*op, arg(0)?, arg(1)?),
        })?,
        Elementwise::WithScalar { op, scalar, left } => {
            with_number(p.work, numeric_only("arithmetic"), |t| match t {
                DType::F64 => with_scalar::<f64>(*op, arg(0)?, *scalar, *left),
                DType::F32 => with_scalar::<f32>(*op, arg(0)?, *scalar, *left),
                DType::I64 => with_scalar::<i64>(*op, arg(0)?, *scalar, *left),
                DType::I32 => with_scalar::<i32>(*op, arg(0)?, *scalar, *left),
                _ => with_scalar::<u8>(*op, arg(0)?, *scalar, *left),
            })?
        }
        Elementwise::Compare(op) => with_dtype!(p.work, T => {
            let (a, b) = (as_type::<T>(arg(0)?), as_type::<T>(arg(1)?));
            compare::<T>(*op, a.view(), b.view())?
        }),
        Elementwise::CompareScalar(op, scalar) => match scalar {
            // An integer is compared by its value, whether or not the
            // array's type can hold it (`uint8 > -1` is true everywhere).
            Scalar::Int(s) if !p.work.is_float() => with_dtype!(p.work, T => {
                Chunk::Bool(as_type::<T>(arg(0)?).mapv(|x| test(*op, &x.to_i64(), s)))
            }),
            _ => with_dtype!(p.work, T => {
                let s: T = scalar.to();
                Chunk::Bool(as_type::<T>(arg(0)?).mapv(|x| test(*op, &x, &s)))
            }),
        },
        Elementwise::And => logical(arg(0)?, arg(1)?, |x, y| x && y)?,
        Elementwise::Or => logical(arg(0)?, arg(1)?, |x, y| x || y)?,
        Elementwise::Xor => logical(arg(0)?, arg(1)?, |x, y| x != y)?,
        Elementwise::Unary(op) => unary(*op, p.work, arg(0)?)?,
        Elementwise::Where => with_dtype!(p.work, T => {
            let cond = as_type::<bool>(arg(0)?);
            let (a, b) = (as_type::<T>(arg(1)?), as_type::<T>(arg(2)?));
            let shape = IxDyn(&broadcast_shape(&[cond.shape(), a.shape(), b.shape()]).map_err(fail)?);
            let (Some(c), Some(a), Some(b)) = (
                cond.broadcast(shape.clone()),
                a.broadcast(shape.clone()),
                b.broadcast(shape),
            ) else {
                return Err(fail("blocks do not broadcast"));
            };
            T::wrap(Zip::from(&c).and(&a).and(&b).map_collect(|&c, &x, &y| if c { x } else { y }))
        }),
        Elementwise::AsType => arg(0)?.astype(p.out),
    };
    Ok(result.into_dtype(p.out))
}

/// Inputs brought to one broadcast shape and one chunk grid.
pub(crate) struct Aligned {
    /// The broadcast shape.
    pub shape: Vec<usize>,
    /// The common chunks.
    pub chunks: Vec<Vec<usize>>,
    /// The inputs, rechunked where they were cut differently.
    pub arrays: Vec<Array>,
}

impl Aligned {
    /// Broadcasts `inputs` and aligns their chunks (the common refinement of
    /// every input that is not broadcast along an axis).
    pub(crate) fn new(inputs: &[&Array]) -> Result<Aligned, ArrayError> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|a| a.shape()).collect();
        let shape = broadcast_shape(&shapes).map_err(ArrayError::Shape)?;
        let ndim = shape.len();
        let mut chunks: Vec<Option<Vec<usize>>> = vec![None; ndim];
        for a in inputs {
            for (i, sizes) in a.chunks().iter().enumerate() {
                let at = ndim - a.ndim() + i;
                if a.shape()[i] == 1 && shape[at] != 1 {
                    continue;
                }
                chunks[at] = Some(match &chunks[at] {
                    None => sizes.clone(),
                    Some(have) => grid::refine(have, sizes),
                });
            }
        }
        let chunks: Vec<Vec<usize>> = chunks
            .into_iter()
            .zip(&shape)
            .map(|(c, &d)| c.unwrap_or_else(|| vec![d]))
            .collect();
        let arrays = inputs
            .iter()
            .map(|a| {
                let want: Vec<Vec<usize>> = (0..a.ndim())
                    .map(|i| {
                        if a.shape()[i] == 1 {
                            vec![1]
                        } else {
                            chunks[ndim - a.ndim() + i].clone()
                        }
                    })
                    .collect();
                if want == a.chunks() {
                    Ok((*a).clone())
                } else {
                    a.rechunk(grid::ChunkSpec::Explicit(want))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Aligned {
            shape,
            chunks,
            arrays,
        })
    }

    /// Each input's block at output block `index` (broadcast axes use block 0).
    pub(crate) fn blocks(&self, index: &[usize]) -> Vec<std::sync::Arc<crate::client::lazy::Node>> {
        let ndim = self.shape.len();
        self.arrays
            .iter()
            .map(|a| {
                let at: Vec<usize> = (0..a.ndim())
                    .map(|i| {
                        if a.shape()[i] == 1 {
                            0
                        } else {
                            index[ndim - a.ndim() + i]
                        }
                    })
                    .collect();
                a.block(&at).clone()
            })
            .collect()
    }
}

fn with_number(
    dtype: DType,
    bool_error: TaskFailure,
    body: impl FnOnce(DType) -> Result<Chunk, TaskFailure>,
) -> Result<Chunk, TaskFailure> {
    if dtype == DType::Bool {
        return Err(bool_error);
    }
    body(dtype)
}

impl Array {
    /// Applies `params` to the blocks of `inputs` at each position, after
    /// broadcasting their shapes and aligning their chunks.
    pub(super) fn elementwise(
        prefix: &str,
        inputs: &[&Array],
        params: Params,
    ) -> Result<Array, ArrayError> {
        let aligned = Aligned::new(inputs)?;
        let out = params.out;
        let params = kernel::params(params);
        Ok(Array::build(
            prefix,
            aligned.shape.clone(),
            aligned.chunks.clone(),
            out,
            |name, index| {
                Map::node(
                    Key::new(name).indexed(index),
                    &params,
                    aligned.blocks(index),
                )
            },
        ))
    }

    /// `self op other` with broadcasting (NumPy's type promotion).
    pub fn binary(&self, op: BinaryOp, other: &Array) -> Result<Array, ArrayError> {
        let mut work = self.dtype.promote(other.dtype);
        if work == DType::Bool {
            return Err(ArrayError::DType {
                op: format!("{op:?}"),
                dtype: work,
            });
        }
        if op == BinaryOp::Div {
            work = work.float();
        }
        let params = Params {
            op: Elementwise::Binary(op),
            work,
            out: work,
        };
        let result = Array::elementwise(op_name(op), &[self, other], params)?;
        let linear = matches!(op, BinaryOp::Add | BinaryOp::Sub)
            && self.dtype == DType::F64
            && other.dtype == DType::F64
            && self.shape == other.shape
            && self.chunks == other.chunks;
        Ok(if linear {
            result.with_origin(super::Origin::AddSub {
                lhs: self.clone(),
                rhs: other.clone(),
                subtract: op == BinaryOp::Sub,
            })
        } else {
            result
        })
    }

    /// `self op scalar`.
    pub fn binary_scalar(
        &self,
        op: BinaryOp,
        scalar: impl Into<Scalar>,
    ) -> Result<Array, ArrayError> {
        self.scalar_op(op, scalar.into(), false)
    }

    /// `scalar op self`.
    pub fn scalar_binary(
        &self,
        scalar: impl Into<Scalar>,
        op: BinaryOp,
    ) -> Result<Array, ArrayError> {
        self.scalar_op(op, scalar.into(), true)
    }

    fn scalar_op(&self, op: BinaryOp, scalar: Scalar, left: bool) -> Result<Array, ArrayError> {
        let mut work = self.dtype.with_scalar(scalar.is_float());
        if op == BinaryOp::Div {
            work = work.float();
        } else {
            // NumPy 2 (NEP 50): `uint8_array + 300` is an OverflowError.
            scalar.check_fits(work, op_name(op))?;
        }
        let negative_exponent = !left && matches!(scalar, Scalar::Int(i) if i < 0);
        if op == BinaryOp::Pow && !work.is_float() && negative_exponent {
            return Err(ArrayError::DType {
                op: "a negative integer power".into(),
                dtype: work,
            });
        }
        let params = Params {
            op: Elementwise::WithScalar { op, scalar, left },
            work,
            out: work,
        };
        Array::elementwise(op_name(op), &[self], params)
    }

    /// A comparison with broadcasting; the result is `bool`.
    pub fn compare(&self, op: CompareOp, other: &Array) -> Result<Array, ArrayError> {
        let params = Params {
            op: Elementwise::Compare(op),
            work: self.dtype.promote(other.dtype),
            out: DType::Bool,
        };
        Array::elementwise("compare", &[self, other], params)
    }

    /// A comparison with a number; the result is `bool`.
    pub fn compare_scalar(
        &self,
        op: CompareOp,
        scalar: impl Into<Scalar>,
    ) -> Result<Array, ArrayError> {
        let scalar = scalar.into();
        let params = Params {
            op: Elementwise::CompareScalar(op, scalar),
            work: self.dtype.with_scalar(scalar.is_float()),
            out: DType::Bool,
        };
        Array::elementwise("compare", &[self], params)
    }

    fn logical(&self, op: Elementwise, other: &Array) -> Result<Array, ArrayError> {
        let params = Params {
            op,
            work: DType::Bool,
            out: DType::Bool,
        };
        Array::elementwise("logical", &[self, other], params)
    }

    /// Elementwise `and` (inputs taken as `bool`).
    pub fn and(&self, other: &Array) -> Result<Array, ArrayError> {
        self.logical(Elementwise::And, other)
    }

    /// Elementwise `or`.
    pub fn or(&self, other: &Array) -> Result<Array, ArrayError> {
        self.logical(Elementwise::Or, other)
    }

    /// Elementwise `xor`.
    pub fn xor(&self, other: &Array) -> Result<Array, ArrayError> {
        self.logical(Elementwise::Xor, other)
    }

    /// A function of each element (`sqrt`, `exp`, ...); integer inputs give
    /// `float64` for the floating-point functions.
    pub fn map(&self, op: UnaryOp) -> Result<Array, ArrayError> {
        let (work, out) = match op {
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Square => {
                if self.dtype == DType::Bool {
                    return Err(ArrayError::DType {
                        op: format!("{op:?}"),
                        dtype: DType::Bool,
                    });
                }
                (self.dtype, self.dtype)
            }
            UnaryOp::Not => {
                if self.dtype != DType::Bool {
                    return Err(ArrayError::DType {
                        op: "Not".into(),
                        dtype: self.dtype,
                    });
                }
                (DType::Bool, DType::Bool)
            }
            UnaryOp::IsNan | UnaryOp::IsFinite => (DType::F64, DType::Bool),
            _ => (self.dtype.float(), self.dtype.float()),
        };
        let params = Params {
            op: Elementwise::Unary(op),
            work,
            out,
        };
        Array::elementwise(&format!("{op:?}").to_lowercase(), &[self], params)
    }

    /// The array with every element cast to `dtype` (`as` semantics).
    pub fn astype(&self, dtype: DType) -> Array {
        if dtype == self.dtype {
            return self.clone();
        }
        let params = Params {
            op: Elementwise::AsType,
            work: dtype,
            out: dtype,
        };
        Array::elementwise("astype", &[self], params).expect("one input always broadcasts")
    }

    /// `sqrt` of each element.
    pub fn sqrt(&self) -> Result<Array, ArrayError> {
        self.map(UnaryOp::Sqrt)
    }

    /// `e^x` of each element.
    pub fn exp(&self) -> Result<Array, ArrayError> {
        self.map(UnaryOp::Exp)
    }

    /// `|x|` of each element.
    pub fn abs(&self) -> Result<Array, ArrayError> {
        self.map(UnaryOp::Abs)
    }
}

pub(super) fn op_name(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::Div => "truediv",
        BinaryOp::FloorDiv => "floordiv",
        BinaryOp::Rem => "mod",
        BinaryOp::Pow => "pow",
        BinaryOp::Min => "minimum",
        BinaryOp::Max => "maximum",
    }
}

//! Reductions over any axes as a tree (Dask's `split_every`): each block is
//! reduced to a partial result, partials are combined a few at a time, and the
//! last one is finished (a mean divides, a standard deviation takes a root).
//! Variances combine with Chan's parallel formula, so they stay accurate.
//!
//! This file holds what users call (the [`Reduction`]s and the `Array`
//! methods); [`tree`] plans the graph, [`partial`] holds the block kernels and
//! their arithmetic, and [`linear`] pushes sums through `a ± b` and
//! transposes without materialising them.

mod linear;
mod partial;
mod tree;

use super::dtype::DType;
use super::{Array, ArrayError};
use serde::{Deserialize, Serialize};

/// What a reduction computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reduction {
    /// Sum (integers accumulate in `int64`).
    Sum,
    /// Product.
    Prod,
    /// Smallest element (NaN wins).
    Min,
    /// Largest element (NaN wins).
    Max,
    /// Whether any element is true (nonzero).
    Any,
    /// Whether every element is true (nonzero).
    All,
    /// Arithmetic mean.
    Mean,
    /// Variance with `ddof` delta degrees of freedom.
    Var {
        /// Delta degrees of freedom (0: population variance).
        ddof: u32,
    },
    /// Standard deviation with `ddof` delta degrees of freedom.
    Std {
        /// Delta degrees of freedom.
        ddof: u32,
    },
    /// Index of the smallest element (flat, or along one axis).
    ArgMin,
    /// Index of the largest element (flat, or along one axis).
    ArgMax,
}

impl Reduction {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Reduction::Sum => "sum",
            Reduction::Prod => "prod",
            Reduction::Min => "min",
            Reduction::Max => "max",
            Reduction::Any => "any",
            Reduction::All => "all",
            Reduction::Mean => "mean",
            Reduction::Var { .. } => "var",
            Reduction::Std { .. } => "std",
            Reduction::ArgMin => "argmin",
            Reduction::ArgMax => "argmax",
        }
    }

    pub(crate) fn is_arg(self) -> bool {
        matches!(self, Reduction::ArgMin | Reduction::ArgMax)
    }

    /// The type partial values are kept in.
    pub(super) fn work(self, dtype: DType) -> DType {
        match self {
            Reduction::Sum | Reduction::Prod => dtype.accumulator(),
            Reduction::Any | Reduction::All => DType::Bool,
            Reduction::Mean | Reduction::Var { .. } | Reduction::Std { .. } => DType::F64,
            _ => dtype,
        }
    }

    /// The result's type.
    pub(super) fn out(self, dtype: DType) -> DType {
        match self {
            Reduction::Mean | Reduction::Var { .. } | Reduction::Std { .. } => dtype.float(),
            Reduction::ArgMin | Reduction::ArgMax => DType::I64,
            r => r.work(dtype),
        }
    }
}

/// How a reduction is shaped.
#[derive(Clone, Copy, Debug)]
pub struct ReduceOptions {
    /// Keep reduced axes with length 1 (NumPy's `keepdims`).
    pub keepdims: bool,
    /// How many partials one task combines (Dask's `split_every`).
    pub split_every: usize,
}

impl Default for ReduceOptions {
    fn default() -> Self {
        ReduceOptions {
            keepdims: false,
            split_every: 16,
        }
    }
}

impl Array {
    /// Reduces over `axes` (all of them for `None`) as a tree.
    pub fn reduce(
        &self,
        reduction: Reduction,
        axes: Option<&[isize]>,
        options: ReduceOptions,
    ) -> Result<Array, ArrayError> {
        let mut axes: Vec<usize> = match axes {
            None => (0..self.ndim()).collect(),
            Some(list) => list
                .iter()
                .map(|&a| self.axis(a))
                .collect::<Result<_, _>>()?,
        };
        axes.sort_unstable();
        axes.dedup();
        if reduction.is_arg() && axes.len() != 1 && axes.len() != self.ndim() {
            return Err(ArrayError::Shape(format!(
                "{} over several axes {axes:?}",
                reduction.name()
            )));
        }
        if matches!(
            reduction,
            Reduction::Min | Reduction::Max | Reduction::ArgMin | Reduction::ArgMax
        ) && axes.iter().any(|&a| self.shape[a] == 0)
        {
            return Err(ArrayError::Shape(format!(
                "{} of an empty axis",
                reduction.name()
            )));
        }
        Ok(tree::reduce(self, reduction, axes, options))
    }

    fn reduce_all(&self, reduction: Reduction) -> Result<Array, ArrayError> {
        self.reduce(reduction, None, ReduceOptions::default())
    }

    fn reduce_axis(&self, reduction: Reduction, axis: isize) -> Result<Array, ArrayError> {
        self.reduce(reduction, Some(&[axis]), ReduceOptions::default())
    }

    /// Variance of all elements with `ddof` delta degrees of freedom
    /// (NumPy's `x.var(ddof=...)`; 0 is the population variance).
    pub fn var(&self, ddof: u32) -> Result<Array, ArrayError> {
        self.reduce_all(Reduction::Var { ddof })
    }
    /// Variance along one axis with `ddof` delta degrees of freedom.
    pub fn var_axis(&self, axis: isize, ddof: u32) -> Result<Array, ArrayError> {
        self.reduce_axis(Reduction::Var { ddof }, axis)
    }
    /// Standard deviation of all elements with `ddof` delta degrees of
    /// freedom (NumPy's `x.std(ddof=...)`).
    pub fn std(&self, ddof: u32) -> Result<Array, ArrayError> {
        self.reduce_all(Reduction::Std { ddof })
    }
    /// Standard deviation along one axis with `ddof` delta degrees of freedom.
    pub fn std_axis(&self, axis: isize, ddof: u32) -> Result<Array, ArrayError> {
        self.reduce_axis(Reduction::Std { ddof }, axis)
    }
}

/// `name()` over all elements and `name_axis(axis)` along one axis (negative
/// axes count from the end), for the reductions that take no parameter.
macro_rules! shortcuts {
    ($($all:ident, $axis:ident, $reduction:ident, $what:literal;)*) => {
        impl Array {$(
            #[doc = concat!($what, " of all elements.")]
            pub fn $all(&self) -> Result<Array, ArrayError> {
                self.reduce_all(Reduction::$reduction)
            }
            #[doc = concat!($what, " along one axis.")]
            pub fn $axis(&self, axis: isize) -> Result<Array, ArrayError> {
                self.reduce_axis(Reduction::$reduction, axis)
            }
        )*}
    };
}
shortcuts! {
    sum, sum_axis, Sum, "Sum (integers accumulate in `int64`)";
    prod, prod_axis, Prod, "Product";
    mean, mean_axis, Mean, "Mean";
    min, min_axis, Min, "Smallest element (NaN wins)";
    max, max_axis, Max, "Largest element (NaN wins)";
    any, any_axis, Any, "Whether any element is nonzero";
    all, all_axis, All, "Whether every element is nonzero";
    argmin, argmin_axis, ArgMin, "Index of the smallest element (flat over all elements)";
    argmax, argmax_axis, ArgMax, "Index of the largest element (flat over all elements)";
}

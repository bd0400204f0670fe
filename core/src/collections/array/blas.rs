//! Block GEMM through a BLAS library loaded at run time, when the machine has
//! one: OpenBLAS, BLIS or MKL, as NumPy (and so Dask) uses. Nothing is linked
//! at build time, so rask builds and runs without any BLAS installed and falls
//! back to `matrixmultiply` (pure Rust) wherever none is found.
//!
//! `RASK_BLAS` chooses: unset tries the usual library names and, when one
//! loads, times a product on each side once and keeps the faster; a path or
//! file name loads exactly that library; `none` keeps to `matrixmultiply`.
//! rask runs one block product per worker thread, so the library is asked to
//! use one thread per call.

use libloading::Library;
use ndarray::{Array2, ArrayView2};
use std::any::TypeId;
use std::ffi::{c_char, c_int, CStr};
use std::sync::OnceLock;

/// The environment variable that chooses the BLAS library.
pub const BLAS_ENV: &str = "RASK_BLAS";

/// Library names tried in order when `RASK_BLAS` is unset.
const CANDIDATES: &[&str] = &[
    "libopenblas.so.0",
    "libopenblas.so",
    "libblis.so.4",
    "libmkl_rt.so.2",
    "libmkl_rt.so",
    "libopenblas.dylib",
];

/// `CBLAS_ORDER::CblasRowMajor`.
const ROW_MAJOR: c_int = 101;
/// `CBLAS_TRANSPOSE::CblasNoTrans`.
const NO_TRANS: c_int = 111;
/// `CBLAS_TRANSPOSE::CblasTrans`.
const TRANS: c_int = 112;

type Gemm<F> = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    F,
    *const F,
    c_int,
    *const F,
    c_int,
    F,
    *mut F,
    c_int,
);

/// A loaded BLAS: its CBLAS GEMMs.
struct Blas {
    dgemm: Gemm<f64>,
    sgemm: Gemm<f32>,
    /// Name, version and kernels.
    name: String,
    /// OpenBLAS's choice of kernels, when it says.
    core: Option<String>,
    /// Keeps the library mapped for as long as the pointers above live.
    _library: Library,
}

/// What block products run on in this process, chosen once.
struct Backend {
    blas: Option<Blas>,
    description: String,
}

static BACKEND: OnceLock<Backend> = OnceLock::new();

fn blas() -> Option<&'static Blas> {
    BACKEND.get_or_init(choose).blas.as_ref()
}

/// What block matrix products run on in this process (the BLAS library and
/// its kernels, or `matrixmultiply`) and why.
pub fn gemm_backend() -> String {
    BACKEND.get_or_init(choose).description.clone()
}

const MATRIXMULTIPLY: &str = "matrixmultiply (pure Rust)";

fn choose() -> Backend {
    let choice = std::env::var(BLAS_ENV).ok().filter(|v| !v.is_empty());
    let fallback = |description: String| Backend {
        blas: None,
        description,
    };
    match choice.as_deref() {
        Some("none") => fallback(format!("{MATRIXMULTIPLY}: {BLAS_ENV}=none")),
        Some(name) => match open(name) {
            Ok(blas) => {
                warn_if_narrow_kernels(&blas);
                Backend {
                    description: format!("{}: {BLAS_ENV}={name}", blas.name),
                    blas: Some(blas),
                }
            }
            Err(e) => {
                let mut reason = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    reason = format!("{reason}: {cause}");
                    source = cause.source();
                }
                tracing::warn!(
                    "{BLAS_ENV}={name}: cannot use it ({reason}); matrix products use matrixmultiply"
                );
                fallback(format!(
                    "{MATRIXMULTIPLY}: {BLAS_ENV}={name} failed to load"
                ))
            }
        },
        None => {
            let Some(blas) = CANDIDATES.iter().find_map(|name| open(name).ok()) else {
                return fallback(format!("{MATRIXMULTIPLY}: no BLAS library found"));
            };
            // Whichever is faster here: a BLAS on the wrong kernels, or one
            // older than the CPU, can be slower than matrixmultiply's.
            let (library, ours) = calibrate(&blas);
            tracing::debug!(
                "block GEMM: {} {library:.0} GFLOP/s per thread, matrixmultiply {ours:.0}",
                blas.name
            );
            if library > ours {
                warn_if_narrow_kernels(&blas);
                Backend {
                    description: format!(
                        "{}, {library:.0} GFLOP/s per thread here against {ours:.0} for {MATRIXMULTIPLY}",
                        blas.name
                    ),
                    blas: Some(blas),
                }
            } else {
                fallback(format!(
                    "{MATRIXMULTIPLY}, {ours:.0} GFLOP/s per thread here against {library:.0} for {}",
                    blas.name
                ))
            }
        }
    }
}

/// GFLOP/s of one thread's `N`×`N` product through `blas` and through
/// matrixmultiply, the best of rounds taken in turns (so a slow moment of the
/// machine costs both alike): tens of milliseconds, once per process.
fn calibrate(blas: &Blas) -> (f64, f64) {
    const N: usize = 1000;
    const ROUNDS: usize = 3;
    let a = Array2::from_shape_fn((N, N), |(i, j)| ((i * 7 + j * 3) % 11) as f64 * 0.1);
    let b = Array2::from_shape_fn((N, N), |(i, j)| ((i * 5 + j) % 13) as f64 * 0.1);
    let mut c = Array2::<f64>::zeros((N, N));
    let mut best = [f64::INFINITY; 2];
    for round in 0..2 * ROUNDS {
        let start = std::time::Instant::now();
        if round % 2 == 0 {
            product(blas, &a.view(), &b.view(), &mut c);
        } else {
            ndarray::linalg::general_mat_mul(1.0, &a, &b, 1.0, &mut c);
        }
        let side = &mut best[round % 2];
        *side = side.min(start.elapsed().as_secs_f64());
    }
    std::hint::black_box(&c);
    best.map(|t| 2.0 * (N * N * N) as f64 / t.max(1e-9) / 1e9)
        .into()
}

fn open(name: &str) -> Result<Blas, libloading::Error> {
    // SAFETY: loading a BLAS runs its initialisers, which do not depend on
    // anything in this process; the symbols are CBLAS's, whose C signatures
    // `Gemm` spells out, and `_library` keeps them mapped.
    unsafe {
        let library = Library::new(name)?;
        let dgemm = *library.get::<Gemm<f64>>(b"cblas_dgemm\0")?;
        let sgemm = *library.get::<Gemm<f32>>(b"cblas_sgemm\0")?;
        for setter in [&b"openblas_set_num_threads\0"[..], b"MKL_Set_Num_Threads\0"] {
            if let Ok(set) = library.get::<unsafe extern "C" fn(c_int)>(setter) {
                set(1);
            }
        }
        // BLIS takes a `dim_t`, 64 bits wide in its usual builds.
        if let Ok(set) = library.get::<unsafe extern "C" fn(i64)>(b"bli_thread_set_num_threads\0") {
            set(1);
        }
        let text = |symbol: &[u8]| -> Option<String> {
            let get = library
                .get::<unsafe extern "C" fn() -> *const c_char>(symbol)
                .ok()?;
            let p = get();
            (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().trim().to_string())
        };
        let core = text(b"openblas_get_corename\0");
        // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ...": its first two words.
        let version = text(b"openblas_get_config\0").map(|config| {
            config
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        });
        let name = match (version, &core) {
            (Some(version), Some(core)) => format!("{version} ({name}, {core} kernels)"),
            (Some(version), None) => format!("{version} ({name})"),
            _ => name.to_string(),
        };
        Ok(Blas {
            dgemm,
            sgemm,
            name,
            core,
            _library: library,
        })
    }
}

/// OpenBLAS does not know every AVX-512 CPU (AMD's, or any behind a VM's
/// CPU model) and then runs its AVX2 kernels; say how to choose the wide ones.
fn warn_if_narrow_kernels(blas: &Blas) {
    let Some(core) = blas.core.as_deref() else {
        return;
    };
    #[cfg(target_arch = "x86_64")]
    {
        let wide = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl");
        let narrow = ["haswell", "zen", "sandybridge", "prescott", "nehalem"]
            .contains(&core.to_ascii_lowercase().as_str());
        if wide && narrow && std::env::var_os("OPENBLAS_CORETYPE").is_none() {
            tracing::warn!(
                "OpenBLAS chose its {core} kernels on a CPU with AVX-512; \
                 OPENBLAS_CORETYPE=SkylakeX in the workers' environment chooses its AVX-512 ones"
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = core;
}

/// A matrix as CBLAS reads it: its data, leading dimension and whether it is
/// stored transposed; `None` when its strides are neither row- nor column-major.
fn layout<F>(m: &ArrayView2<'_, F>) -> Option<Operand<F>> {
    let (rows, cols) = m.dim();
    let [rs, cs] = [m.strides()[0], m.strides()[1]];
    let fits = |v: usize| c_int::try_from(v).ok();
    if cs == 1 || cols <= 1 {
        let ld = if rows <= 1 {
            cols.max(1)
        } else {
            usize::try_from(rs).ok()?
        };
        (ld >= cols.max(1)).then_some(())?;
        Some((m.as_ptr(), fits(ld)?, NO_TRANS))
    } else if rs == 1 || rows <= 1 {
        let ld = usize::try_from(cs).ok()?;
        (ld >= rows.max(1)).then_some(())?;
        Some((m.as_ptr(), fits(ld)?, TRANS))
    } else {
        None
    }
}

/// `c += a @ b` through the loaded BLAS; `false` (and `c` untouched) when
/// there is none, the element type is not `f32`/`f64`, a layout is neither
/// row- nor column-major, or a size does not fit CBLAS's `int`.
pub(super) fn gemm_accumulate<F: 'static>(
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    c: &mut Array2<F>,
) -> bool {
    blas().is_some_and(|blas| product(blas, a, b, c))
}

/// A matrix for CBLAS: its data, leading dimension and `NO_TRANS`/`TRANS`.
type Operand<T> = (*const T, c_int, c_int);

/// One row-major CBLAS call, `c += a @ b` for `[m, n, k]`; `c`'s leading
/// dimension is `n`.
///
/// # Safety
/// The operands must describe readable `m`×`k` and `k`×`n` matrices and `c`
/// a writable, contiguous `m`×`n` one.
unsafe fn call<T: num_traits::One>(
    gemm: Gemm<T>,
    [m, n, k]: [c_int; 3],
    (pa, lda, ta): Operand<T>,
    (pb, ldb, tb): Operand<T>,
    c: *mut T,
) {
    // SAFETY: as this function's contract says.
    unsafe {
        gemm(
            ROW_MAJOR,
            ta,
            tb,
            m,
            n,
            k,
            T::one(),
            pa,
            lda,
            pb,
            ldb,
            T::one(),
            c,
            n,
        )
    }
}

/// `c += a @ b` through `blas`, as [`gemm_accumulate`] describes.
fn product<F: 'static>(
    blas: &Blas,
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    c: &mut Array2<F>,
) -> bool {
    let (rows, inner) = a.dim();
    let cols = b.ncols();
    if rows == 0 || cols == 0 || inner == 0 || b.nrows() != inner {
        return false;
    }
    if !c.is_standard_layout() || c.dim() != (rows, cols) {
        return false;
    }
    let int = |v: usize| c_int::try_from(v).ok();
    let (Some(m), Some(n), Some(k)) = (int(rows), int(cols), int(inner)) else {
        return false;
    };
    let (Some((pa, lda, ta)), Some((pb, ldb, tb))) = (layout(a), layout(b)) else {
        return false;
    };
    let pc = c.as_mut_ptr();
    // SAFETY: the pointers, dimensions and leading dimensions describe the
    // views' memory exactly (checked by `layout` and `c`'s standard layout,
    // whose leading dimension is `n`), and `F` is the routine's element type
    // (checked by its `TypeId`).
    unsafe {
        let shape = [m, n, k];
        if TypeId::of::<F>() == TypeId::of::<f64>() {
            call(
                blas.dgemm,
                shape,
                (pa.cast(), lda, ta),
                (pb.cast(), ldb, tb),
                pc.cast(),
            );
        } else if TypeId::of::<F>() == TypeId::of::<f32>() {
            call(
                blas.sgemm,
                shape,
                (pa.cast(), lda, ta),
                (pb.cast(), ldb, tb),
                pc.cast(),
            );
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2, ArrayView2};
    use proptest::prelude::*;

    /// The machine's OpenBLAS, which `scripts/test.sh` installs.
    fn openblas() -> Blas {
        open("libopenblas.so.0")
            .expect("libopenblas.so.0 (Debian's libopenblas0, which scripts/test.sh installs)")
    }

    /// An `m`×`n` matrix laid out as `how` says: 0 row-major, 1 column-major,
    /// 2 a slice of a wider row-major matrix, 3 a slice of a taller
    /// column-major one.
    fn matrix(m: usize, n: usize, how: u8, seed: u64) -> Array2<f64> {
        let value = |i: usize, j: usize| ((i * 31 + j * 17 + seed as usize) % 23) as f64 - 11.0;
        match how {
            0 => Array2::from_shape_fn((m, n), |(i, j)| value(i, j)),
            1 => Array2::from_shape_fn((n, m), |(j, i)| value(i, j)).reversed_axes(),
            2 => Array2::from_shape_fn((m, n + 3), |(i, j)| value(i, j)),
            _ => Array2::from_shape_fn((n, m + 2), |(j, i)| value(i, j)).reversed_axes(),
        }
    }

    fn view(x: &Array2<f64>, m: usize, n: usize) -> ArrayView2<'_, f64> {
        x.slice(s![..m, ..n])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Every layout CBLAS takes gives matrixmultiply's product (exactly:
        /// small integers); others are declined and leave `c` alone.
        #[test]
        fn blas_products_match_matrixmultiply(
            m in 1usize..24, n in 1usize..24, k in 1usize..24,
            how_a in 0u8..4, how_b in 0u8..4, seed in 0u64..100,
        ) {
            let blas = openblas();
            let (a, b) = (matrix(m, k, how_a, seed), matrix(k, n, how_b, seed + 1));
            let (a, b) = (view(&a, m, k), view(&b, k, n));
            let start = Array2::from_shape_fn((m, n), |(i, j)| (i + j) as f64);
            let mut expected = start.clone();
            ndarray::linalg::general_mat_mul(1.0, &a, &b, 1.0, &mut expected);
            let mut c = start.clone();
            prop_assert!(product(&blas, &a, &b, &mut c));
            prop_assert_eq!(&c, &expected);
            let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
            let mut c32 = start.mapv(|v| v as f32);
            prop_assert!(product(&blas, &a32.t().t(), &b32.view(), &mut c32));
            prop_assert_eq!(c32, expected.mapv(|v| v as f32));
            // Reversed rows are neither layout: declined, `c` untouched.
            let mut untouched = start.clone();
            prop_assert_eq!(product(&blas, &a.slice(s![..;-1, ..]), &b, &mut untouched), m == 1);
            if m > 1 {
                prop_assert_eq!(untouched, start);
            }
        }
    }

    #[test]
    fn a_missing_library_is_an_error_not_a_crash() {
        assert!(open("/nonexistent/libopenblas.so.0").is_err());
        assert!(open("libc.so.6").is_err(), "libc has no cblas_dgemm");
    }

    #[test]
    fn the_backend_says_what_it_is() {
        let backend = gemm_backend();
        assert!(
            backend.contains("GFLOP/s") || backend.contains(BLAS_ENV),
            "{backend}"
        );
    }
}

//! The fastest read loop this machine has for summing `float64`s: many
//! independent accumulators (so the loop waits on memory, not on the latency
//! of one add chain), compiled for the widest vectors the CPU offers (AVX-512,
//! AVX2, else the baseline), chosen once at run time.

/// Accumulators: four AVX-512 registers' worth, so two loads and adds per
/// cycle never wait on each other.
const LANES: usize = 32;

#[inline(always)]
fn lanes_sum(values: &[f64]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let mut pieces = values.chunks_exact(LANES);
    for piece in &mut pieces {
        for (lane, &v) in lanes.iter_mut().zip(piece) {
            *lane += v;
        }
    }
    // Pairwise, so the lanes' rounding stays as small as a tree's.
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
    }
    lanes[0] + pieces.remainder().iter().sum::<f64>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn sum_avx512(values: &[f64]) -> f64 {
    lanes_sum(values)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sum_avx2(values: &[f64]) -> f64 {
    lanes_sum(values)
}

/// The sum of `values` (the order of additions differs from a plain loop's,
/// as NumPy's pairwise sum does).
pub fn sum_f64(values: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { sum_avx512(values) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { sum_avx2(values) };
        }
    }
    lanes_sum(values)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_match_a_plain_loop_at_every_length() {
        for n in [0, 1, 7, 31, 32, 33, 64, 1000, 4099] {
            let values: Vec<f64> = (0..n).map(|i| (i % 17) as f64 - 3.5).collect();
            let plain: f64 = values.iter().sum();
            assert_eq!(super::sum_f64(&values), plain, "n = {n}");
        }
    }
}

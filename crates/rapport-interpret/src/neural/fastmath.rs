//! Element-wise kernels of the encoder written so that the compiler turns each loop into
//! SIMD code: exact-form GELU (through a polynomial `erf`, not the tanh shortcut), `exp` for
//! the softmax, layer normalisation.
//!
//! Every loop body is branch-free and avoids library calls (`floor`, `erff`, `expf`), which
//! would stop vectorisation. Each public kernel is compiled twice: once for the baseline
//! x86-64 (SSE2, 4 lanes) and once with AVX2 + FMA (8 lanes), picked at run time.

/// `exp(x)` for `f32`, accurate to a few units in the last place over the range where the
/// result is a normal float. Inputs below about -87 give a tiny positive number rather than
/// 0, inputs above about 88 are clamped (the softmax only ever passes `x <= 0`).
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    // exp(x) = 2^n * exp(r), n = round(x / ln 2), |r| <= ln 2 / 2.
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in a part exact in f32 and a small correction (Cody and Waite).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to an integer, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n_int = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Minimax polynomial for exp on [-ln2/2, ln2/2] (the Cephes `expf` coefficients).
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    let scale = f32::from_bits((n_int.wrapping_add(127) << 23) as u32);
    e * scale
}

/// `erf(x)` for `f32` (Abramowitz and Stegun 7.1.26: a rational term in `t = 1/(1+p|x|)`
/// times `exp(-x^2)`, absolute error below 1.5e-7 in exact arithmetic, about 3e-7 in f32).
#[inline(always)]
fn erf_f32(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_8;
    const A4: f32 = -1.453_152;
    const A5: f32 = 1.061_405_4;
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
    let y = 1.0 - poly * exp_f32(-a * a);
    y.copysign(x)
}

/// Exact-form GELU: `x/2 * (1 + erf(x / sqrt 2))`.
#[inline(always)]
fn gelu_f32(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline(always)]
fn gelu_slice(xs: &mut [f32]) {
    for x in xs {
        *x = gelu_f32(*x);
    }
}

/// Lanes of the partial sums in the reductions below (so that they vectorise).
const LANES: usize = 8;

#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] = acc[i].max(c[i]);
        }
    }
    acc.iter()
        .chain(rest)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

#[inline(always)]
fn softmax_slice(row: &mut [f32]) {
    let m = max(row);
    for x in row.iter_mut() {
        *x = exp_f32(*x - m);
    }
    let inv = 1.0 / sum(row);
    for x in row.iter_mut() {
        *x *= inv;
    }
}

#[inline(always)]
fn layer_norm_rows(xs: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let dim = gamma.len();
    for row in xs.chunks_exact_mut(dim) {
        let mean = sum(row) / dim as f32;
        for x in row.iter_mut() {
            *x -= mean;
        }
        let mut acc = [0f32; LANES];
        let chunks = row.chunks_exact(LANES);
        let rest: f32 = chunks.remainder().iter().map(|x| x * x).sum();
        for c in chunks {
            for i in 0..LANES {
                acc[i] += c[i] * c[i];
            }
        }
        let var = (acc.iter().sum::<f32>() + rest) / dim as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *x = *x * inv * g + b;
        }
    }
}

/// Defines a public kernel as a baseline copy and an AVX2 + FMA copy of the same body,
/// choosing at run time (the CPU check is cached by the standard library).
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) => $body:ident) => {
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn wide($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has just been checked for AVX2 and FMA.
                    unsafe { wide($($arg),*) };
                    return;
                }
            }
            $body($($arg),*)
        }
    };
}

dispatch!(
    /// Applies exact-form GELU to every element, in place.
    gelu(xs: &mut [f32]) => gelu_slice
);
dispatch!(
    /// Softmax of one row, in place (an empty row is left alone).
    softmax(row: &mut [f32]) => softmax_slice
);
dispatch!(
    /// Layer normalisation of each `gamma.len()`-wide row of `xs`, in place (biased
    /// variance, as in BERT).
    layer_norm(xs: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) => layer_norm_rows
);

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(from: f32, to: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| from + (to - from) * i as f32 / n as f32)
    }

    #[test]
    fn erf_matches_the_library_erf() {
        let worst = grid(-6.0, 6.0, 200_000)
            .map(|x| (erf_f32(x) as f64 - candle_core::cpu::erf::erf_f64(x as f64)).abs())
            .fold(0f64, f64::max);
        assert!(worst < 5e-7, "max |erf error| {worst:e}");
        assert_eq!(erf_f32(0.0), 0.0);
        assert_eq!(erf_f32(10.0), 1.0);
        assert_eq!(erf_f32(-10.0), -1.0);
    }

    #[test]
    fn exp_matches_the_library_exp() {
        let worst = grid(-87.0, 88.0, 200_000)
            .map(|x| {
                let want = (x as f64).exp();
                ((exp_f32(x) as f64 - want) / want).abs()
            })
            .fold(0f64, f64::max);
        assert!(worst < 5e-7, "max relative exp error {worst:e}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(-1e4) >= 0.0 && exp_f32(-1e4) < 1e-37);
    }

    #[test]
    fn gelu_kernel_matches_the_exact_formula() {
        let xs: Vec<f32> = grid(-10.0, 10.0, 100_003).collect();
        let mut fast = xs.clone();
        gelu(&mut fast);
        let worst = xs
            .iter()
            .zip(&fast)
            .map(|(&x, &y)| {
                let x = x as f64;
                let want = 0.5 * x * (1.0 + candle_core::cpu::erf::erf_f64(x / 2f64.sqrt()));
                (y as f64 - want).abs()
            })
            .fold(0f64, f64::max);
        assert!(worst < 2e-6, "max |gelu error| {worst:e}");
    }

    #[test]
    fn softmax_and_layer_norm_match_naive_versions() {
        for len in [1usize, 3, 8, 13, 40] {
            let row: Vec<f32> = (0..len)
                .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.7)
                .collect();
            let mut fast = row.clone();
            softmax(&mut fast);
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let z: f64 = row.iter().map(|&x| (x as f64 - m).exp()).sum();
            for (&x, &y) in row.iter().zip(&fast) {
                assert!((y as f64 - (x as f64 - m).exp() / z).abs() < 1e-6);
            }
        }
        let dim = 19;
        let gamma: Vec<f32> = (0..dim).map(|i| 1.0 + i as f32 * 0.1).collect();
        let beta: Vec<f32> = (0..dim).map(|i| i as f32 * -0.05).collect();
        let xs: Vec<f32> = (0..dim * 3).map(|i| ((i * 29 % 17) as f32) * 0.3).collect();
        let mut fast = xs.clone();
        layer_norm(&mut fast, &gamma, &beta, 1e-12);
        for (row, out) in xs.chunks(dim).zip(fast.chunks(dim)) {
            let mean = row.iter().map(|&x| x as f64).sum::<f64>() / dim as f64;
            let var = row.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / dim as f64;
            for i in 0..dim {
                let want = (row[i] as f64 - mean) / (var + 1e-12).sqrt() * gamma[i] as f64
                    + beta[i] as f64;
                assert!((out[i] as f64 - want).abs() < 1e-5, "{} vs {want}", out[i]);
            }
        }
    }
}

//! Derivative-free minimisation (Nelder-Mead), restarted from its own best point until a
//! restart no longer improves: enough for the few-parameter likelihoods of this crate.

/// Minimises `f` from `x0`. Returns the best point and its value.
pub fn minimize(f: impl Fn(&[f64]) -> f64, x0: &[f64], step: f64) -> (Vec<f64>, f64) {
    let mut best = x0.to_vec();
    let mut best_f = f(&best);
    for _ in 0..20 {
        let (x, fx) = nelder_mead(&f, &best, step, 20_000);
        let gain = best_f - fx;
        if fx < best_f {
            best = x;
            best_f = fx;
        }
        // A NaN gain also stops.
        if gain.is_nan() || gain <= 1e-12 * (1.0 + best_f.abs()) {
            break;
        }
    }
    (best, best_f)
}

fn nelder_mead(
    f: &impl Fn(&[f64]) -> f64,
    x0: &[f64],
    step: f64,
    max_iter: usize,
) -> (Vec<f64>, f64) {
    let n = x0.len();
    let value = |x: &[f64]| {
        let v = f(x);
        if v.is_nan() {
            f64::INFINITY
        } else {
            v
        }
    };
    let mut simplex: Vec<Vec<f64>> = vec![x0.to_vec()];
    for i in 0..n {
        let mut p = x0.to_vec();
        p[i] += step;
        simplex.push(p);
    }
    let mut fs: Vec<f64> = simplex.iter().map(|p| value(p)).collect();
    for _ in 0..max_iter {
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&a, &b| fs[a].total_cmp(&fs[b]));
        simplex = order.iter().map(|&i| simplex[i].clone()).collect();
        fs = order.iter().map(|&i| fs[i]).collect();
        let spread = (fs[n] - fs[0]).abs();
        let size = simplex[1..]
            .iter()
            .flat_map(|p| p.iter().zip(&simplex[0]).map(|(a, b)| (a - b).abs()))
            .fold(0.0, f64::max);
        if spread <= 1e-14 * (1.0 + fs[0].abs()) && size < 1e-10 {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|p| p[j]).sum::<f64>() / n as f64)
            .collect();
        let towards = |t: f64| -> Vec<f64> {
            (0..n)
                .map(|j| centroid[j] + t * (simplex[n][j] - centroid[j]))
                .collect()
        };
        let reflected = towards(-1.0);
        let fr = value(&reflected);
        if fr < fs[0] {
            let expanded = towards(-2.0);
            let fe = value(&expanded);
            if fe < fr {
                simplex[n] = expanded;
                fs[n] = fe;
            } else {
                simplex[n] = reflected;
                fs[n] = fr;
            }
        } else if fr < fs[n - 1] {
            simplex[n] = reflected;
            fs[n] = fr;
        } else {
            let contracted = if fr < fs[n] {
                towards(-0.5)
            } else {
                towards(0.5)
            };
            let fc = value(&contracted);
            if fc < fs[n].min(fr) {
                simplex[n] = contracted;
                fs[n] = fc;
            } else {
                for i in 1..=n {
                    let p: Vec<f64> = (0..n)
                        .map(|j| simplex[0][j] + 0.5 * (simplex[i][j] - simplex[0][j]))
                        .collect();
                    fs[i] = value(&p);
                    simplex[i] = p;
                }
            }
        }
    }
    let i = (0..=n)
        .min_by(|&a, &b| fs[a].total_cmp(&fs[b]))
        .unwrap_or(0);
    (simplex[i].clone(), fs[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_rosenbrock() {
        let f = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let (x, fx) = minimize(f, &[-1.2, 1.0], 0.5);
        assert!(fx < 1e-12, "{fx}");
        assert!(
            (x[0] - 1.0).abs() < 1e-5 && (x[1] - 1.0).abs() < 1e-5,
            "{x:?}"
        );
    }
}

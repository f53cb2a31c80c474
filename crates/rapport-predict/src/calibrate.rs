//! Platt scaling: a logistic map `p = 1 / (1 + exp(-(a * margin + b)))` fitted on rows the
//! trees did not train on. It is chosen over isotonic regression because it is affine in
//! log-odds: the trees' exact contributions, multiplied by `a`, stay exact contributions to
//! the calibrated log-odds, and the ranking (hence ROC-AUC) is unchanged.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

impl Platt {
    pub const IDENTITY: Platt = Platt { a: 1.0, b: 0.0 };

    pub fn log_odds(&self, margin: f64) -> f64 {
        self.a * margin + self.b
    }

    pub fn probability(&self, margin: f64) -> f64 {
        sigmoid(self.log_odds(margin))
    }
}

pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Fits `a` and `b` by Newton's method on the log-likelihood, with Platt's smoothed targets
/// (`(N+ + 1) / (N+ + 2)` for positives, `1 / (N- + 2)` for negatives) so a separable set does
/// not send the slope to infinity. Returns `None` when the fit is not increasing in the margin
/// (the trees rank the held-out rows worse than chance): no calibration is better then.
pub fn fit_platt(margins: &[f64], y: &[bool]) -> Option<Platt> {
    assert_eq!(margins.len(), y.len());
    let n_pos = y.iter().filter(|&&v| v).count() as f64;
    let n_neg = y.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    let hi = (n_pos + 1.0) / (n_pos + 2.0);
    let lo = 1.0 / (n_neg + 2.0);
    let targets: Vec<f64> = y.iter().map(|&v| if v { hi } else { lo }).collect();
    let objective = |a: f64, b: f64| -> f64 {
        margins
            .iter()
            .zip(&targets)
            .map(|(&m, &t)| {
                let z = a * m + b;
                // -[t log s(z) + (1-t) log(1-s(z))] = log(1+e^z) - t z, computed stably.
                let softplus = if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                };
                softplus - t * z
            })
            .sum()
    };
    let (mut a, mut b) = (1.0, 0.0);
    let mut f = objective(a, b);
    for _ in 0..200 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&m, &t) in margins.iter().zip(&targets) {
            let p = sigmoid(a * m + b);
            let d = p - t;
            let w = (p * (1.0 - p)).max(1e-12);
            ga += d * m;
            gb += d;
            haa += w * m * m;
            hab += w * m;
            hbb += w;
        }
        haa += 1e-12;
        hbb += 1e-12;
        let det = haa * hbb - hab * hab;
        if det <= 0.0 || (ga.abs() + gb.abs()) < 1e-11 * y.len() as f64 {
            break;
        }
        let da = -(hbb * ga - hab * gb) / det;
        let db = -(haa * gb - hab * ga) / det;
        let mut step = 1.0;
        let mut improved = false;
        while step > 1e-10 {
            let (na, nb) = (a + step * da, b + step * db);
            let nf = objective(na, nb);
            if nf < f + 1e-4 * step * (ga * da + gb * db) {
                a = na;
                b = nb;
                f = nf;
                improved = true;
                break;
            }
            step /= 2.0;
        }
        if !improved {
            break;
        }
    }
    (a.is_finite() && b.is_finite() && a > 0.0).then_some(Platt { a, b })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_logistic_map() {
        // Outcomes drawn deterministically from p = sigmoid(0.5 m - 1) on a fine grid.
        let mut margins = Vec::new();
        let mut y = Vec::new();
        for i in 0..4000 {
            let m = -6.0 + 12.0 * (i as f64 / 4000.0);
            let p = sigmoid(0.5 * m - 1.0);
            // 20 rows per margin, round(20 p) of them positive.
            let k = (20.0 * p).round() as usize;
            for j in 0..20 {
                margins.push(m);
                y.push(j < k);
            }
        }
        let fit = fit_platt(&margins, &y).unwrap();
        assert!((fit.a - 0.5).abs() < 0.01, "{fit:?}");
        assert!((fit.b + 1.0).abs() < 0.01, "{fit:?}");
    }

    #[test]
    fn refuses_a_decreasing_map() {
        let margins = [1.0, 2.0, 3.0, -1.0, -2.0, -3.0];
        let y = [false, false, false, true, true, true];
        assert_eq!(fit_platt(&margins, &y), None);
    }
}

//! Propensity learned online: each action's chance of being accepted is a Beta distribution
//! over its outcomes so far (Beta-Bernoulli), and each decision draws from it (Thompson
//! sampling), so an action with few outcomes is sometimes ranked high and gets explored,
//! while one with many outcomes is ranked by what it has shown.
//!
//! The Gamma sampler is written here (Marsaglia and Tsang's method, a few lines) because the
//! maintained `rand_distr` release that matches the workspace's `rand` 0.8 is not in the
//! lock file and the newer one needs `rand` 0.9.

use rand::Rng;
use serde::Serialize;

/// What an outcome teaches: accepted and converted count as successes; rejected and ignored
/// as failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Rejected,
    Ignored,
    Converted,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Accepted,
        Outcome::Rejected,
        Outcome::Ignored,
        Outcome::Converted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::Ignored => "ignored",
            Outcome::Converted => "converted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == raw)
    }

    pub fn success(self) -> bool {
        matches!(self, Outcome::Accepted | Outcome::Converted)
    }
}

/// Outcomes counted for one action in one workspace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub successes: u64,
    pub failures: u64,
}

/// The Beta posterior of one action's propensity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Posterior {
    pub alpha: f64,
    pub beta: f64,
}

impl Posterior {
    pub fn new(prior: (f64, f64), counts: Counts) -> Self {
        Self {
            alpha: prior.0 + counts.successes as f64,
            beta: prior.1 + counts.failures as f64,
        }
    }

    pub fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    /// One draw from the posterior.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let x = gamma(self.alpha, rng);
        let y = gamma(self.beta, rng);
        if x + y > 0.0 {
            x / (x + y)
        } else {
            self.mean()
        }
    }
}

fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    // Box-Muller; 1 - u keeps the logarithm finite.
    let u: f64 = rng.gen();
    let v: f64 = rng.gen();
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// A draw from Gamma(shape, 1) (Marsaglia and Tsang 2000; shapes below 1 by boosting).
fn gamma<R: Rng + ?Sized>(shape: f64, rng: &mut R) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.gen();
        return gamma(shape + 1.0, rng) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.gen();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn samples_center_on_the_posterior_mean() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for (a, b) in [(1.0, 1.0), (2.0, 18.0), (30.0, 10.0), (0.5, 0.5)] {
            let p = Posterior { alpha: a, beta: b };
            let n = 20_000;
            let draws: Vec<f64> = (0..n).map(|_| p.sample(&mut rng)).collect();
            assert!(draws.iter().all(|x| (0.0..=1.0).contains(x)));
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            let want_var = a * b / ((a + b).powi(2) * (a + b + 1.0));
            assert!((mean - p.mean()).abs() < 0.01, "Beta({a},{b}) mean {mean}");
            assert!(
                (var - want_var).abs() < 0.1 * want_var + 0.001,
                "Beta({a},{b}) var {var} vs {want_var}"
            );
        }
    }

    #[test]
    fn outcomes_count_as_they_should() {
        let p = Posterior::new(
            (1.0, 1.0),
            Counts {
                successes: 3,
                failures: 5,
            },
        );
        assert_eq!((p.alpha, p.beta), (4.0, 6.0));
        assert!(Outcome::Converted.success() && !Outcome::Ignored.success());
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
    }
}

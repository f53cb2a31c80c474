//! Small linear models over sparse features, trained with plain SGD: binary logistic
//! regression (sentiment) and multinomial logistic regression (intent). Deterministic: the
//! shuffling uses a seeded xorshift generator, so the same data gives the same weights.

use serde::{Deserialize, Serialize};

/// A sparse feature vector: (index, value) pairs. Indices may repeat (values add up).
pub type SparseVec = Vec<(u32, f32)>;

/// Numerically safe logistic function.
pub fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Deterministic xorshift64* generator for shuffling.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator; seed 0 is replaced by a fixed non-zero constant.
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// SGD settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Initial learning rate, decayed as `lr / (1 + epoch * decay)`.
    pub learning_rate: f32,
    /// Learning-rate decay per epoch.
    pub decay: f32,
    /// L2 penalty, applied lazily to the features an example touches.
    pub l2: f32,
    /// Shuffle seed.
    pub seed: u64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            epochs: 20,
            learning_rate: 0.5,
            decay: 0.3,
            l2: 1e-4,
            seed: 42,
        }
    }
}

/// Binary logistic regression with dense weights over `dim` features.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryLogistic {
    /// One weight per feature.
    pub weights: Vec<f32>,
    /// Intercept.
    pub bias: f32,
}

impl BinaryLogistic {
    /// Trains on `(features, label)` pairs.
    pub fn train(data: &[(SparseVec, bool)], dim: usize, cfg: &SgdConfig) -> Self {
        let mut m = BinaryLogistic {
            weights: vec![0.0; dim],
            bias: 0.0,
        };
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut rng = Rng::new(cfg.seed);
        for epoch in 0..cfg.epochs {
            rng.shuffle(&mut order);
            let lr = cfg.learning_rate / (1.0 + epoch as f32 * cfg.decay);
            for &k in &order {
                let (x, y) = &data[k];
                let p = m.probability(x);
                let g = p - if *y { 1.0 } else { 0.0 };
                for &(i, v) in x {
                    if let Some(w) = m.weights.get_mut(i as usize) {
                        *w -= lr * (g * v + cfg.l2 * *w);
                    }
                }
                m.bias -= lr * g;
            }
        }
        m
    }

    /// The raw score `w.x + b`.
    pub fn margin(&self, x: &[(u32, f32)]) -> f32 {
        self.bias
            + x.iter()
                .map(|&(i, v)| self.weights.get(i as usize).map_or(0.0, |w| w * v))
                .sum::<f32>()
    }

    /// P(label = true | x).
    pub fn probability(&self, x: &[(u32, f32)]) -> f32 {
        sigmoid(self.margin(x))
    }
}

/// Multinomial logistic regression; weights stored feature-major (`w[f * classes + c]`) so a
/// sparse example touches contiguous memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Softmax {
    classes: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl Softmax {
    /// Trains on `(features, class)` pairs; every class index must be `< classes`.
    pub fn train(data: &[(SparseVec, usize)], dim: usize, classes: usize, cfg: &SgdConfig) -> Self {
        let mut m = Softmax {
            classes,
            weights: vec![0.0; dim * classes],
            bias: vec![0.0; classes],
        };
        if classes == 0 {
            return m;
        }
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut rng = Rng::new(cfg.seed);
        let mut probs = vec![0.0f32; classes];
        for epoch in 0..cfg.epochs {
            rng.shuffle(&mut order);
            let lr = cfg.learning_rate / (1.0 + epoch as f32 * cfg.decay);
            for &k in &order {
                let (x, y) = &data[k];
                m.probabilities_into(x, &mut probs);
                if let Some(p) = probs.get_mut(*y) {
                    *p -= 1.0;
                }
                for &(i, v) in x {
                    let row = i as usize * classes;
                    if let Some(ws) = m.weights.get_mut(row..row + classes) {
                        for (w, g) in ws.iter_mut().zip(&probs) {
                            *w -= lr * (g * v + cfg.l2 * *w);
                        }
                    }
                }
                for (b, g) in m.bias.iter_mut().zip(&probs) {
                    *b -= lr * g;
                }
            }
        }
        m
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The weights (feature-major) and biases, for saving a model.
    pub fn parts(&self) -> (&[f32], &[f32]) {
        (&self.weights, &self.bias)
    }

    /// Rebuilds a model from saved parts; `None` when the lengths do not fit `classes`.
    pub fn from_parts(classes: usize, weights: Vec<f32>, bias: Vec<f32>) -> Option<Self> {
        (classes > 0 && bias.len() == classes && weights.len() % classes == 0).then_some(Softmax {
            classes,
            weights,
            bias,
        })
    }

    /// Class probabilities for `x`, written into `out` (length = classes).
    pub fn probabilities_into(&self, x: &[(u32, f32)], out: &mut [f32]) {
        out.copy_from_slice(&self.bias);
        for &(i, v) in x {
            let row = i as usize * self.classes;
            if let Some(ws) = self.weights.get(row..row + self.classes) {
                for (o, w) in out.iter_mut().zip(ws) {
                    *o += w * v;
                }
            }
        }
        let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for o in out.iter_mut() {
            *o = (*o - max).exp();
            sum += *o;
        }
        if sum > 0.0 {
            for o in out.iter_mut() {
                *o /= sum;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_learns_separable_data() {
        let data: Vec<(SparseVec, bool)> = (0..40)
            .map(|i| (vec![(i % 2, 1.0), (2, 1.0)], i % 2 == 0))
            .collect();
        let m = BinaryLogistic::train(&data, 3, &SgdConfig::default());
        assert!(m.probability(&[(0, 1.0), (2, 1.0)]) > 0.8);
        assert!(m.probability(&[(1, 1.0), (2, 1.0)]) < 0.2);
    }

    #[test]
    fn softmax_learns_three_classes() {
        let data: Vec<(SparseVec, usize)> = (0..60)
            .map(|i| (vec![((i % 3) as u32, 1.0)], (i % 3) as usize))
            .collect();
        let m = Softmax::train(&data, 3, 3, &SgdConfig::default());
        let mut p = vec![0.0; 3];
        m.probabilities_into(&[(2, 1.0)], &mut p);
        assert!(p[2] > 0.7, "{p:?}");
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn shuffle_is_deterministic() {
        let mut a: Vec<u32> = (0..20).collect();
        let mut b = a.clone();
        Rng::new(7).shuffle(&mut a);
        Rng::new(7).shuffle(&mut b);
        assert_eq!(a, b);
    }
}

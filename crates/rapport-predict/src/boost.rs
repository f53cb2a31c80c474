//! Gradient boosting for log loss, grown in this crate so that boosting can start from a
//! margin per row (the linear part's) rather than one constant: the trees then fit only what
//! the linear part leaves. Histogram splits on binned values, a learned direction for missing
//! values at every split, Newton leaf values with an L2 penalty, depth-wise growth.
//!
//! The trees come out as this crate's [`Tree`]s (thresholds on the raw values), so scoring and
//! TreeSHAP explanations are the same as for any other tree.

use crate::calibrate::sigmoid;
use crate::tree::{Node, Tree};

/// Feature values cut into bins. `codes` is row-major over all rows of the table (a row's
/// codes side by side, as histograms read them); a feature's missing values get the code
/// after its last value bin.
pub struct Binned {
    rows: usize,
    nf: usize,
    cuts: Vec<Vec<f64>>,
    codes: Vec<u16>,
    /// Where each feature's bins start in a flat histogram (one slot per value bin and one
    /// for missing), and the histogram's length last.
    offsets: Vec<usize>,
}

impl Binned {
    /// Bins every row of the row-major `values` (`nf` per row), with cut points taken from
    /// the values of `from` rows only: at most `max_bins` value bins per feature, cut at
    /// midpoints between distinct values, at quantiles when there are more distinct values.
    pub fn new(values: &[f64], nf: usize, from: &[usize], max_bins: usize) -> Binned {
        let rows = values.len().checked_div(nf).unwrap_or(0);
        let max_bins = max_bins.clamp(2, u16::MAX as usize - 1);
        let mut cuts = Vec::with_capacity(nf);
        let mut codes = vec![0u16; rows * nf];
        for f in 0..nf {
            let mut v: Vec<f64> = from
                .iter()
                .map(|&r| values[r * nf + f])
                .filter(|x| !x.is_nan())
                .collect();
            v.sort_by(f64::total_cmp);
            let mut distinct = v.clone();
            distinct.dedup();
            let between = |a: f64, b: f64| {
                let m = a + (b - a) / 2.0;
                if m > a {
                    m
                } else {
                    b
                }
            };
            let mut c: Vec<f64> = Vec::new();
            if distinct.len() <= max_bins {
                for w in distinct.windows(2) {
                    c.push(between(w[0], w[1]));
                }
            } else {
                for q in 1..max_bins {
                    let pos = q * v.len() / max_bins;
                    if pos == 0 || pos >= v.len() {
                        continue;
                    }
                    // The first value change at or after the quantile.
                    let lo = v[pos - 1];
                    if let Some(&hi) = v[pos..].iter().find(|&&x| x > lo) {
                        let cut = between(lo, hi);
                        if c.last().is_none_or(|&last| cut > last) {
                            c.push(cut);
                        }
                    }
                }
            }
            let missing = (c.len() + 1) as u16;
            for r in 0..rows {
                let x = values[r * nf + f];
                codes[r * nf + f] = if x.is_nan() {
                    missing
                } else {
                    c.partition_point(|&cut| cut <= x) as u16
                };
            }
            cuts.push(c);
        }
        let mut offsets = vec![0];
        for c in &cuts {
            offsets.push(offsets.last().unwrap() + c.len() + 2);
        }
        Binned {
            rows,
            nf,
            cuts,
            codes,
            offsets,
        }
    }

    fn code(&self, f: usize, r: usize) -> usize {
        self.codes[r * self.nf + f] as usize
    }

    /// Value bins of feature `f` (its missing code is this number).
    fn value_bins(&self, f: usize) -> usize {
        self.cuts[f].len() + 1
    }
}

/// Settings of one boosting run.
#[derive(Debug, Clone, Copy)]
pub struct GrowParams {
    pub max_depth: usize,
    pub learning_rate: f64,
    pub l2: f64,
    pub min_leaf_weight: f64,
}

/// A grown tree with, per split node, the last value bin that goes left (for scoring binned
/// rows without comparing values).
pub struct BinTree {
    pub tree: Tree,
    split_bins: Vec<usize>,
}

impl BinTree {
    pub(crate) fn predict_binned(&self, data: &Binned, r: usize) -> f64 {
        let nodes = self.tree.nodes();
        let mut i = 0;
        loop {
            match &nodes[i] {
                Node::Leaf { value, .. } => return *value,
                Node::Split {
                    feature,
                    left,
                    right,
                    missing,
                    ..
                } => {
                    let c = data.code(*feature, r);
                    i = if c == data.value_bins(*feature) {
                        *missing
                    } else if c <= self.split_bins[i] {
                        *left
                    } else {
                        *right
                    };
                }
            }
        }
    }
}

/// The result of [`boost`]: the trees, and the summed log loss and the ROC-AUC of the
/// evaluation rows before any tree (index 0) and after each tree.
pub struct Boosted {
    pub trees: Vec<BinTree>,
    pub eval_loss: Vec<f64>,
    pub eval_auc: Vec<f64>,
}

/// Boosts up to `rounds` trees on `fit` rows starting from `margin` (indexed by row, for every
/// row of `data`; updated in place for the fit and eval rows). With `stop_after`, stops once
/// the eval loss has not improved for that many trees (all trees grown are returned).
#[allow(clippy::too_many_arguments)]
pub fn boost(
    data: &Binned,
    y: &[f64],
    fit: &[usize],
    eval: &[usize],
    margin: &mut [f64],
    params: &GrowParams,
    rounds: usize,
    stop_after: Option<usize>,
) -> Boosted {
    let loss = |margin: &[f64]| -> f64 {
        eval.iter()
            .map(|&r| {
                let z = margin[r];
                let sp = if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                };
                sp - y[r] * z
            })
            .sum()
    };
    let mut ranking = Ranking::new(eval.iter().map(|&r| y[r] == 1.0).collect());
    let mut auc = |margin: &[f64]| -> f64 {
        let m: Vec<f64> = eval.iter().map(|&r| margin[r]).collect();
        ranking.auc(&m)
    };
    let mut eval_loss = vec![loss(margin)];
    let mut eval_auc = vec![auc(margin)];
    let mut best = (eval_loss[0], 0usize);
    let mut trees = Vec::new();
    let mut g = vec![0.0; data.rows];
    let mut h = vec![0.0; data.rows];
    let mut rows = fit.to_vec();
    let mut grower = Grower::new(data, params);
    for round in 1..=rounds {
        for &r in fit {
            let p = sigmoid(margin[r]);
            g[r] = p - y[r];
            h[r] = (p * (1.0 - p)).max(1e-16);
        }
        let tree = grower.grow(&mut rows, &g, &h, margin);
        for &r in eval {
            margin[r] += tree.predict_binned(data, r);
        }
        trees.push(tree);
        if !eval.is_empty() {
            let l = loss(margin);
            eval_loss.push(l);
            eval_auc.push(auc(margin));
            if l < best.0 {
                best = (l, round);
            }
            if stop_after.is_some_and(|s| round - best.1 >= s) {
                break;
            }
        }
    }
    Boosted {
        trees,
        eval_loss,
        eval_auc,
    }
}

/// ROC-AUC of scores that change a little at a time: the order of the previous call is
/// re-sorted by insertion, which costs little when it is nearly sorted already.
struct Ranking {
    truth: Vec<bool>,
    order: Vec<usize>,
}

impl Ranking {
    fn new(truth: Vec<bool>) -> Self {
        let order = (0..truth.len()).collect();
        Ranking { truth, order }
    }

    /// The ROC-AUC of `score` (ties count one half); 0.5 when a class is absent.
    fn auc(&mut self, score: &[f64]) -> f64 {
        let order = &mut self.order;
        for i in 1..order.len() {
            let mut j = i;
            while j > 0 && score[order[j - 1]] > score[order[j]] {
                order.swap(j - 1, j);
                j -= 1;
            }
        }
        crate::metrics::roc_auc_in_order(&self.truth, score, order).unwrap_or(0.5)
    }
}

struct Grower<'a> {
    data: &'a Binned,
    params: GrowParams,
}

/// A flat histogram: (gradient, hessian) sums per bin of every feature (see `Binned::offsets`).
type Hist = Vec<(f64, f64)>;

struct SplitChoice {
    feature: usize,
    bin: usize,
    missing_left: bool,
    gain: f64,
    /// (gradient, hessian) sums of the left and the right child.
    left: (f64, f64),
    right: (f64, f64),
}

impl<'a> Grower<'a> {
    fn new(data: &'a Binned, params: &GrowParams) -> Self {
        Grower {
            data,
            params: *params,
        }
    }

    /// Grows one tree on `rows` (reordered in place) and adds its leaf values to `margin` of
    /// those rows.
    fn grow(&mut self, rows: &mut [usize], g: &[f64], h: &[f64], margin: &mut [f64]) -> BinTree {
        let mut nodes = Vec::new();
        let mut split_bins = Vec::new();
        let mut out = Out {
            nodes: &mut nodes,
            split_bins: &mut split_bins,
            margin,
        };
        let sums = rows
            .iter()
            .fold((0.0, 0.0), |(a, b), &r| (a + g[r], b + h[r]));
        self.node(rows, None, sums, g, h, self.params.max_depth, &mut out);
        BinTree {
            tree: Tree::new(nodes, self.data.nf).expect("a grown tree is valid"),
            split_bins,
        }
    }

    fn histogram(&self, rows: &[usize], g: &[f64], h: &[f64]) -> Hist {
        let data = self.data;
        let nf = data.nf;
        let mut hist = vec![(0.0, 0.0); *data.offsets.last().unwrap_or(&0)];
        for &r in rows {
            let (gr, hr) = (g[r], h[r]);
            let codes = &data.codes[r * nf..(r + 1) * nf];
            for (f, &c) in codes.iter().enumerate() {
                let e = &mut hist[data.offsets[f] + c as usize];
                e.0 += gr;
                e.1 += hr;
            }
        }
        hist
    }

    /// Grows the node holding `rows` (its histogram, when already known, in `hist`; its
    /// gradient and hessian sums in `sums`) and returns its index.
    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        rows: &mut [usize],
        hist: Option<Hist>,
        sums: (f64, f64),
        g: &[f64],
        h: &[f64],
        depth_left: usize,
        out: &mut Out<'_>,
    ) -> usize {
        let (gs, hs) = sums;
        let idx = out.nodes.len();
        out.nodes.push(Node::Leaf {
            value: 0.0,
            cover: hs,
        });
        out.split_bins.push(0);
        let mut choice = None;
        let mut hist = hist;
        if depth_left > 0 && rows.len() >= 2 {
            let hh = hist.take().unwrap_or_else(|| self.histogram(rows, g, h));
            choice = self.best_split(&hh, gs, hs).map(|s| (s, hh));
        }
        let Some((s, parent_hist)) = choice else {
            let value = -self.params.learning_rate * gs / (hs + self.params.l2);
            out.nodes[idx] = Node::Leaf { value, cover: hs };
            for &r in rows.iter() {
                out.margin[r] += value;
            }
            return idx;
        };
        let data = self.data;
        let missing_code = data.value_bins(s.feature);
        let goes_left = |r: usize| {
            let c = data.code(s.feature, r);
            if c == missing_code {
                s.missing_left
            } else {
                c <= s.bin
            }
        };
        // Partition: left rows first.
        let mut k = 0;
        for i in 0..rows.len() {
            if goes_left(rows[i]) {
                rows.swap(i, k);
                k += 1;
            }
        }
        let (lrows, rrows) = rows.split_at_mut(k);
        // Children that may split get their histograms: the smaller child's counted, the
        // larger one's by difference from the parent's.
        let (lh, rh) = if depth_left > 1 {
            let small_left = lrows.len() <= rrows.len();
            let small = self.histogram(if small_left { lrows } else { rrows }, g, h);
            let mut large = parent_hist;
            for (a, b) in large.iter_mut().zip(&small) {
                a.0 -= b.0;
                a.1 -= b.1;
            }
            if small_left {
                (Some(small), Some(large))
            } else {
                (Some(large), Some(small))
            }
        } else {
            (None, None)
        };
        let left = self.node(lrows, lh, s.left, g, h, depth_left - 1, out);
        let right = self.node(rrows, rh, s.right, g, h, depth_left - 1, out);
        out.nodes[idx] = Node::Split {
            feature: s.feature,
            threshold: data.cuts[s.feature][s.bin],
            left,
            right,
            missing: if s.missing_left { left } else { right },
            cover: hs,
        };
        out.split_bins[idx] = s.bin;
        idx
    }

    fn best_split(&self, hist: &[(f64, f64)], gs: f64, hs: f64) -> Option<SplitChoice> {
        let l2 = self.params.l2;
        let min_w = self.params.min_leaf_weight;
        let score = |g: f64, h: f64| g * g / (h + l2);
        let parent = score(gs, hs);
        let mut best: Option<SplitChoice> = None;
        let data = self.data;
        for f in 0..data.nf {
            let nb = data.value_bins(f);
            if nb < 2 {
                continue;
            }
            let hist = &hist[data.offsets[f]..data.offsets[f + 1]];
            let (gm, hm) = hist[nb];
            let (mut gl, mut hl) = (0.0, 0.0);
            for (bin, &(gb, hb)) in hist[..nb - 1].iter().enumerate() {
                gl += gb;
                hl += hb;
                let (gr, hr) = (gs - gm - gl, hs - hm - hl);
                if hl <= 0.0 || hr <= 0.0 {
                    continue;
                }
                // Where missing values go: both ways when there are any, else with the
                // larger side.
                let options: &[bool] = if hm > 0.0 {
                    &[true, false]
                } else if hl >= hr {
                    &[true]
                } else {
                    &[false]
                };
                for &missing_left in options {
                    let (a, b, c, d) = if missing_left {
                        (gl + gm, hl + hm, gr, hr)
                    } else {
                        (gl, hl, gr + gm, hr + hm)
                    };
                    if b < min_w || d < min_w {
                        continue;
                    }
                    let gain = score(a, b) + score(c, d) - parent;
                    if gain > 1e-12 && best.as_ref().is_none_or(|s| gain > s.gain) {
                        best = Some(SplitChoice {
                            feature: f,
                            bin,
                            missing_left,
                            gain,
                            left: (a, b),
                            right: (c, d),
                        });
                    }
                }
            }
        }
        best
    }
}

/// Where a tree being grown goes: its nodes, their split bins, and the margins its leaves add
/// to.
struct Out<'m> {
    nodes: &'m mut Vec<Node>,
    split_bins: &'m mut Vec<usize>,
    margin: &'m mut [f64],
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn running_auc_equals_the_metric() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let truth: Vec<bool> = (0..300).map(|_| rng.gen::<f64>() < 0.3).collect();
        let mut score: Vec<f64> = (0..300).map(|_| rng.gen_range(0..20) as f64).collect();
        let mut ranking = Ranking::new(truth.clone());
        for _ in 0..20 {
            let want = crate::metrics::roc_auc(&truth, &score).unwrap();
            assert!((ranking.auc(&score) - want).abs() < 1e-12);
            for s in score.iter_mut() {
                *s += rng.gen_range(-1.0..1.0);
            }
        }
    }

    #[test]
    fn bins_agree_with_the_thresholds_trees_store() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let n = 2000;
        let values: Vec<f64> = (0..n * 2)
            .map(|i| {
                if i % 2 == 0 {
                    rng.gen_range(0..7) as f64
                } else if rng.gen::<f64>() < 0.1 {
                    f64::NAN
                } else {
                    rng.gen_range(-5.0..5.0)
                }
            })
            .collect();
        let all: Vec<usize> = (0..n).collect();
        let b = Binned::new(&values, 2, &all, 16);
        assert_eq!(b.cuts[0].len(), 6, "seven distinct values, six cuts");
        assert!(b.cuts[1].len() <= 15);
        for f in 0..2 {
            for r in 0..n {
                let x = values[r * 2 + f];
                let c = b.code(f, r);
                if x.is_nan() {
                    assert_eq!(c, b.value_bins(f));
                    continue;
                }
                for (k, &cut) in b.cuts[f].iter().enumerate() {
                    assert_eq!(c <= k, x < cut, "feature {f} row {r}");
                }
            }
        }
    }

    /// Boosting from a per-row margin: the trees' raw-value predictions equal the binned
    /// ones, and the evaluation loss goes down on a learnable signal.
    #[test]
    fn boosting_from_an_offset_learns_the_rest() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let n = 3000;
        let mut values = Vec::new();
        let mut y = Vec::new();
        let mut offset = Vec::new();
        for _ in 0..n {
            let a: f64 = rng.gen_range(-2.0..2.0);
            let b: f64 = rng.gen_range(-2.0..2.0);
            let z = a + if b > 0.5 { 1.5 } else { -1.0 };
            y.push((rng.gen::<f64>() < sigmoid(z)) as u8 as f64);
            values.push(a);
            values.push(if rng.gen::<f64>() < 0.2 { f64::NAN } else { b });
            offset.push(a); // the "linear part" knows a, not b
        }
        let fit: Vec<usize> = (0..2000).collect();
        let eval: Vec<usize> = (2000..n).collect();
        let data = Binned::new(&values, 2, &fit, 64);
        let mut margin = offset.clone();
        let params = GrowParams {
            max_depth: 2,
            learning_rate: 0.1,
            l2: 1.0,
            min_leaf_weight: 1.0,
        };
        let out = boost(&data, &y, &fit, &eval, &mut margin, &params, 100, Some(20));
        assert!(out.eval_loss.last().unwrap() < &(out.eval_loss[0] * 0.95));
        for r in 0..n {
            let raw = offset[r]
                + out
                    .trees
                    .iter()
                    .map(|t| t.tree.predict(&values[r * 2..r * 2 + 2]))
                    .sum::<f64>();
            assert!((raw - margin[r]).abs() < 1e-9, "row {r}");
        }
    }
}

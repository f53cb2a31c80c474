//! Exact per-feature contributions of a tree's prediction (path-dependent TreeSHAP).
//!
//! The game explained is the usual one for trees: the value of a set of features `S` is the
//! tree's prediction when the features in `S` take the row's values and the others are
//! unknown, an unknown split being resolved by averaging its branches weighted by the training
//! cover they received. The Shapley values of that game sum, with the tree's expected value,
//! to the tree's prediction for the row.
//!
//! How it is computed here: the game is a sum over leaves. For one leaf, each distinct feature
//! `j` on its path contributes a factor `o_j` (1 when the row follows every edge of the path
//! that splits on `j`, else 0) if `j` is known and `z_j` (the product of the cover shares of
//! those edges) if it is not, so the leaf's game is `w * prod_{j in S} o_j * prod_{j not in S} z_j`.
//! The Shapley value of such a product game for feature `i` is
//! `w * (o_i - z_i) * sum_k c_k * k! (d-1-k)! / d!`, where `c_k` is the coefficient of `t^k` in
//! `prod_{j != i} (z_j + o_j t)` and `d` the number of distinct features on the path. The
//! product over all path features is built once per leaf and the factor of `i` divided out,
//! which costs `O(d^2)` per leaf. Everything is `f64`.

use crate::tree::{Node, Tree};

#[derive(Clone, Copy)]
struct PathFeature {
    feature: usize,
    /// Product of the cover shares of the path's edges on this feature.
    zero: f64,
    /// 1 when the row follows all of them, else 0.
    one: f64,
}

/// The tree's expected value: its prediction when every feature is unknown.
pub fn expected_value(tree: &Tree) -> f64 {
    fn walk(tree: &Tree, i: usize) -> f64 {
        match &tree.nodes()[i] {
            Node::Leaf { value, .. } => *value,
            Node::Split { .. } => tree
                .children_shares(i)
                .into_iter()
                .map(|(c, share)| share * walk(tree, c))
                .sum(),
        }
    }
    walk(tree, 0)
}

/// Adds the tree's exact contributions for `row` into `phi` (one slot per feature).
pub fn add_contributions(tree: &Tree, row: &[f64], phi: &mut [f64]) {
    let mut path = Vec::new();
    walk(tree, 0, row, &mut path, phi);
}

fn walk(tree: &Tree, i: usize, row: &[f64], path: &mut Vec<PathFeature>, phi: &mut [f64]) {
    match &tree.nodes()[i] {
        Node::Leaf { value, .. } => leaf(*value, path, phi),
        Node::Split { feature, .. } => {
            let taken = tree.child_for(i, row);
            for (child, share) in tree.children_shares(i) {
                let one = if child == taken { 1.0 } else { 0.0 };
                let saved = path.len();
                match path.iter().position(|p| p.feature == *feature) {
                    Some(k) => {
                        let before = path[k];
                        path[k].zero *= share;
                        path[k].one *= one;
                        walk(tree, child, row, path, phi);
                        path[k] = before;
                    }
                    None => {
                        path.push(PathFeature {
                            feature: *feature,
                            zero: share,
                            one,
                        });
                        walk(tree, child, row, path, phi);
                        path.truncate(saved);
                    }
                }
            }
        }
    }
}

fn leaf(value: f64, path: &[PathFeature], phi: &mut [f64]) {
    let d = path.len();
    if d == 0 || value == 0.0 {
        return;
    }
    // Coefficients of prod_j (zero_j + one_j t).
    let mut p = vec![0.0; d + 1];
    p[0] = 1.0;
    for (n, f) in path.iter().enumerate() {
        for k in (0..=n + 1).rev() {
            let lower = if k > 0 { p[k - 1] } else { 0.0 };
            p[k] = f.zero * p[k] + f.one * lower;
        }
    }
    // Shapley weights k! (d-1-k)! / d! = 1 / (d * C(d-1, k)).
    let mut weights = vec![0.0; d];
    let mut binom = 1.0;
    for (k, w) in weights.iter_mut().enumerate() {
        *w = 1.0 / (d as f64 * binom);
        binom = binom * (d - 1 - k) as f64 / (k + 1) as f64;
    }
    let mut q = vec![0.0; d];
    for f in path {
        let gap = f.one - f.zero;
        if gap == 0.0 {
            continue;
        }
        if f.one == 1.0 {
            // p(t) = (zero + t) q(t): peel coefficients from the top.
            q[d - 1] = p[d];
            for k in (1..d).rev() {
                q[k - 1] = p[k] - f.zero * q[k];
            }
        } else {
            // p(t) = zero * q(t); zero > 0 here because gap != 0.
            for k in 0..d {
                q[k] = p[k] / f.zero;
            }
        }
        let s: f64 = q.iter().zip(&weights).map(|(c, w)| c * w).sum();
        phi[f.feature] += value * gap * s;
    }
}

/// The same contributions by enumerating every subset of the features the tree uses: the
/// definition itself, exponential in the number of features. For tests on small trees.
pub fn brute_force_contributions(tree: &Tree, row: &[f64], n_features: usize) -> Vec<f64> {
    fn value(tree: &Tree, i: usize, row: &[f64], known: &[bool]) -> f64 {
        match &tree.nodes()[i] {
            Node::Leaf { value, .. } => *value,
            Node::Split { feature, .. } => {
                if known[*feature] {
                    value(tree, tree.child_for(i, row), row, known)
                } else {
                    tree.children_shares(i)
                        .into_iter()
                        .map(|(c, share)| share * value(tree, c, row, known))
                        .sum()
                }
            }
        }
    }
    let used = tree.features_used();
    let m = used.len();
    assert!(m <= 20, "brute force over {m} features is too slow");
    let factorial = |n: usize| (1..=n).map(|k| k as f64).product::<f64>();
    let mut phi = vec![0.0; n_features];
    for &i in &used {
        let others: Vec<usize> = used.iter().copied().filter(|&f| f != i).collect();
        for mask in 0u32..(1 << others.len()) {
            let mut known = vec![false; n_features];
            let mut size = 0;
            for (b, &f) in others.iter().enumerate() {
                if mask & (1 << b) != 0 {
                    known[f] = true;
                    size += 1;
                }
            }
            let without = value(tree, 0, row, &known);
            known[i] = true;
            let with = value(tree, 0, row, &known);
            let w = factorial(size) * factorial(m - size - 1) / factorial(m);
            phi[i] += w * (with - without);
        }
    }
    phi
}

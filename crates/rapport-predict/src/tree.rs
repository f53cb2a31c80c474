//! Decision trees as this crate stores and evaluates them, independent of the library that
//! grew them. A tree is a vector of nodes, root first; every child comes after its parent, so
//! a tree built through [`Tree::new`] has no cycles and every walk ends at a leaf.

use serde::{Deserialize, Serialize};

/// One node. A split sends a row to `left` when its value is below `threshold`, to `right`
/// otherwise, and to `missing` when the value is missing (NaN). `cover` is the training weight
/// (hessian sum) that reached the node; explanations weigh unknown branches by it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum Node {
    Leaf {
        value: f64,
        cover: f64,
    },
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
        missing: usize,
        cover: f64,
    },
}

impl Node {
    pub fn cover(&self) -> f64 {
        match self {
            Node::Leaf { cover, .. } | Node::Split { cover, .. } => *cover,
        }
    }
}

/// A checked tree (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Tree {
    nodes: Vec<Node>,
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let nodes = Vec::<Node>::deserialize(d)?;
        Tree::new(nodes, usize::MAX).map_err(serde::de::Error::custom)
    }
}

impl Tree {
    /// Checks that the nodes form a tree: a root, children after parents and in range, each
    /// node reached once, the missing branch one of the children (or a third child), features
    /// below `n_features`, finite values and non-negative covers.
    pub fn new(nodes: Vec<Node>, n_features: usize) -> Result<Self, String> {
        if nodes.is_empty() {
            return Err("a tree needs at least one node".into());
        }
        let mut parents = vec![0usize; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            if !(n.cover().is_finite() && n.cover() >= 0.0) {
                return Err(format!("node {i} has cover {}", n.cover()));
            }
            match n {
                Node::Leaf { value, .. } => {
                    if !value.is_finite() {
                        return Err(format!("leaf {i} has value {value}"));
                    }
                }
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                    missing,
                    ..
                } => {
                    if *feature >= n_features {
                        return Err(format!(
                            "node {i} splits on feature {feature}, out of range"
                        ));
                    }
                    if threshold.is_nan() {
                        return Err(format!("node {i} has a NaN threshold"));
                    }
                    if left == right {
                        return Err(format!("node {i} has the same left and right child"));
                    }
                    let mut children = vec![*left, *right];
                    if missing != left && missing != right {
                        children.push(*missing);
                    }
                    for c in children {
                        if c <= i || c >= nodes.len() {
                            return Err(format!("node {i} has child {c}, out of order"));
                        }
                        parents[c] += 1;
                    }
                }
            }
        }
        if let Some(i) = (1..nodes.len()).find(|&i| parents[i] != 1) {
            return Err(format!("node {i} is reached {} times", parents[i]));
        }
        Ok(Tree { nodes })
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The leaf value a row reaches.
    pub fn predict(&self, row: &[f64]) -> f64 {
        let mut i = 0;
        loop {
            match &self.nodes[i] {
                Node::Leaf { value, .. } => return *value,
                Node::Split { .. } => i = self.child_for(i, row),
            }
        }
    }

    /// The child of split `i` that `row` goes to.
    pub(crate) fn child_for(&self, i: usize, row: &[f64]) -> usize {
        match &self.nodes[i] {
            Node::Split {
                feature,
                threshold,
                left,
                right,
                missing,
                ..
            } => {
                let v = row[*feature];
                if v.is_nan() {
                    *missing
                } else if v < *threshold {
                    *left
                } else {
                    *right
                }
            }
            Node::Leaf { .. } => i,
        }
    }

    /// The distinct children of split `i` with the share of its cover each received. Shares
    /// are normalised over the children so they always sum to one.
    pub(crate) fn children_shares(&self, i: usize) -> Vec<(usize, f64)> {
        let Node::Split {
            left,
            right,
            missing,
            ..
        } = &self.nodes[i]
        else {
            return Vec::new();
        };
        let mut children = vec![*left, *right];
        if missing != left && missing != right {
            children.push(*missing);
        }
        let total: f64 = children.iter().map(|&c| self.nodes[c].cover()).sum();
        children
            .into_iter()
            .map(|c| {
                let share = if total > 0.0 {
                    self.nodes[c].cover() / total
                } else {
                    // No cover recorded (a hand-built tree): weigh the branches equally.
                    1.0 / if missing != left && missing != right {
                        3.0
                    } else {
                        2.0
                    }
                };
                (c, share)
            })
            .collect()
    }

    /// Features the tree splits on, sorted, each once.
    pub fn features_used(&self) -> Vec<usize> {
        let mut f: Vec<usize> = self
            .nodes
            .iter()
            .filter_map(|n| match n {
                Node::Split { feature, .. } => Some(*feature),
                Node::Leaf { .. } => None,
            })
            .collect();
        f.sort_unstable();
        f.dedup();
        f
    }
}

//! Clusters as connected components of the pairs at or above a probability threshold.

/// Union-find with path halving and union by size.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    pub fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    pub fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    pub fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let (big, small) = if self.size[ra] >= self.size[rb] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small] = big;
        self.size[big] += self.size[small];
    }

    /// A dense cluster number per element, numbered in order of each cluster's first element.
    pub fn labels(&mut self) -> Vec<usize> {
        let n = self.parent.len();
        let mut label_of_root = vec![usize::MAX; n];
        let mut next = 0;
        (0..n)
            .map(|i| {
                let r = self.find(i);
                if label_of_root[r] == usize::MAX {
                    label_of_root[r] = next;
                    next += 1;
                }
                label_of_root[r]
            })
            .collect()
    }
}

/// Cluster labels for `n` records from the pairs that are linked.
pub fn connected_components(
    n: usize,
    links: impl IntoIterator<Item = (usize, usize)>,
) -> Vec<usize> {
    let mut uf = UnionFind::new(n);
    for (a, b) in links {
        uf.union(a, b);
    }
    uf.labels()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_transitive() {
        let labels = connected_components(6, [(0, 2), (2, 4), (3, 5)]);
        assert_eq!(labels[0], labels[4]);
        assert_ne!(labels[0], labels[1]);
        assert_eq!(labels[3], labels[5]);
        assert_eq!(labels, vec![0, 1, 0, 2, 0, 2]);
    }
}

//! Counting: every row falls in one cell of the full intersection of the group columns;
//! counts and sums are kept per cell and rolled up to each grouping (each column alone, and
//! the intersection). The bootstrap reuses the same counting over resampled rows.

use super::data::Dataset;
use super::error::FairnessError;
use super::task::Encoded;

/// Intersections with at most this many combinations are listed when some are empty.
const LIST_EMPTY_UP_TO: u64 = 10_000;
/// Intersections with at most this many combinations are indexed with a table.
const DENSE_UP_TO: u64 = 1 << 20;

/// The non-empty cells of the full intersection of all group columns.
#[derive(Debug, Clone)]
pub(crate) struct Cells {
    /// Per column, its values in display order (numeric when all are numbers).
    pub levels: Vec<Vec<String>>,
    /// Each row's cell.
    pub row_cell: Vec<u32>,
    /// Each cell's value index per column, cells in order of those indices.
    pub cell_codes: Vec<Vec<u32>>,
    /// Combinations of values that no row has, when few enough to list.
    pub empty: Vec<Vec<u32>>,
    /// How many combinations no row has.
    pub empty_count: u64,
}

impl Cells {
    pub fn build(d: &Dataset) -> Result<Cells, FairnessError> {
        let k = d.group_levels.len();
        let mut levels = Vec::with_capacity(k);
        let mut remaps = Vec::with_capacity(k);
        for lv in &d.group_levels {
            let (sorted, remap) = sort_levels(lv);
            levels.push(sorted);
            remaps.push(remap);
        }
        let code = |j: usize, row: usize| remaps[j][d.group_codes[j][row] as usize];
        let n = d.len();
        let sizes: Vec<u64> = levels.iter().map(|l| l.len() as u64).collect();
        let product = sizes.iter().try_fold(1u64, |acc, &s| acc.checked_mul(s));
        let Some(product) = product else {
            return Err(FairnessError::TooManyIntersections(
                sizes
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" × "),
            ));
        };
        // Mixed-radix key, first column most significant, so key order is value order.
        let key = |row: usize| -> u64 {
            (0..k).fold(0u64, |acc, j| acc * sizes[j] + u64::from(code(j, row)))
        };
        let decode = |mut key: u64| -> Vec<u32> {
            let mut out = vec![0u32; k];
            for j in (0..k).rev() {
                out[j] = (key % sizes[j]) as u32;
                key /= sizes[j];
            }
            out
        };

        let mut row_cell = vec![0u32; n];
        let mut cell_keys: Vec<u64> = Vec::new();
        if product <= DENSE_UP_TO {
            let mut slot = vec![u32::MAX; product as usize];
            for row in 0..n {
                slot[key(row) as usize] = 0;
            }
            for (kk, s) in slot.iter_mut().enumerate() {
                if *s == 0 {
                    *s = cell_keys.len() as u32;
                    cell_keys.push(kk as u64);
                }
            }
            for (row, rc) in row_cell.iter_mut().enumerate() {
                *rc = slot[key(row) as usize];
            }
        } else {
            let keys: Vec<u64> = (0..n).map(key).collect();
            cell_keys = keys.clone();
            cell_keys.sort_unstable();
            cell_keys.dedup();
            for (rc, kk) in row_cell.iter_mut().zip(&keys) {
                *rc = cell_keys.binary_search(kk).expect("every key is a cell") as u32;
            }
        }
        let empty_count = product - cell_keys.len() as u64;
        let mut empty = Vec::new();
        if empty_count > 0 && product <= LIST_EMPTY_UP_TO {
            let mut present = cell_keys.iter().peekable();
            for kk in 0..product {
                if present.peek() == Some(&&kk) {
                    present.next();
                } else {
                    empty.push(decode(kk));
                }
            }
        }
        let cell_codes = cell_keys.iter().map(|&kk| decode(kk)).collect();
        Ok(Cells {
            levels,
            row_cell,
            cell_codes,
            empty,
            empty_count,
        })
    }

    pub fn len(&self) -> usize {
        self.cell_codes.len()
    }

    /// Each column alone, then (with two or more columns) their full intersection.
    pub fn groupings(&self) -> Vec<Grouping> {
        let k = self.levels.len();
        let mut out: Vec<Grouping> = (0..k)
            .map(|j| Grouping {
                columns: vec![j],
                of_cell: self.cell_codes.iter().map(|c| c[j]).collect(),
                keys: self.levels[j].iter().map(|v| vec![v.clone()]).collect(),
            })
            .collect();
        if k > 1 {
            out.push(Grouping {
                columns: (0..k).collect(),
                of_cell: (0..self.len() as u32).collect(),
                keys: self.cell_codes.iter().map(|c| self.names(c)).collect(),
            });
        }
        out
    }

    /// The values of a combination of value indices.
    pub fn names(&self, codes: &[u32]) -> Vec<String> {
        codes
            .iter()
            .enumerate()
            .map(|(j, &c)| self.levels[j][c as usize].clone())
            .collect()
    }
}

/// Sorts group values for display: by number when all are numbers, else by text. Returns the
/// sorted values and, for each original index, its sorted index.
fn sort_levels(levels: &[String]) -> (Vec<String>, Vec<u32>) {
    let numbers: Option<Vec<f64>> = levels.iter().map(|l| l.parse::<f64>().ok()).collect();
    let mut order: Vec<usize> = (0..levels.len()).collect();
    match &numbers {
        Some(x) => order.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(levels[a].cmp(&levels[b]))),
        None => order.sort_by(|&a, &b| levels[a].cmp(&levels[b])),
    }
    let mut remap = vec![0u32; levels.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old] = new as u32;
    }
    (order.iter().map(|&i| levels[i].clone()).collect(), remap)
}

/// One way of grouping rows: a set of columns, its groups, and which group each cell is in.
#[derive(Debug, Clone)]
pub(crate) struct Grouping {
    /// Indices of the group columns.
    pub columns: Vec<usize>,
    /// Each intersection cell's group.
    pub of_cell: Vec<u32>,
    /// Each group's values, one per column in `columns`.
    pub keys: Vec<Vec<String>>,
}

impl Grouping {
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Sums of a regression group.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sums {
    pub n: u64,
    pub pred: f64,
    pub label: f64,
    pub abs_err: f64,
    pub sq_err: f64,
    pub err: f64,
}

impl Sums {
    fn add(&mut self, o: &Sums) {
        self.n += o.n;
        self.pred += o.pred;
        self.label += o.label;
        self.abs_err += o.abs_err;
        self.sq_err += o.sq_err;
        self.err += o.err;
    }
}

/// Counts (classification) or sums (regression) per cell or group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Counts {
    /// `n[(cell * classes + predicted) * width + true]`, `width` = classes with labels, else 1.
    Classes {
        classes: usize,
        width: usize,
        n: Vec<u64>,
    },
    Sums(Vec<Sums>),
}

impl Counts {
    pub fn new(enc: &Encoded, cells: usize) -> Counts {
        match enc {
            Encoded::Classes { names, label, .. } => {
                let classes = names.len();
                let width = if label.is_some() { classes } else { 1 };
                Counts::Classes {
                    classes,
                    width,
                    n: vec![0; cells * classes * width],
                }
            }
            Encoded::Numbers { .. } => Counts::Sums(vec![Sums::default(); cells]),
        }
    }

    pub fn clear(&mut self) {
        match self {
            Counts::Classes { n, .. } => n.iter_mut().for_each(|x| *x = 0),
            Counts::Sums(s) => s.iter_mut().for_each(|x| *x = Sums::default()),
        }
    }

    /// Adds the given rows (repeats allowed, as in a bootstrap resample).
    pub fn add_rows(&mut self, enc: &Encoded, row_cell: &[u32], rows: impl Iterator<Item = usize>) {
        match (self, enc) {
            (
                Counts::Classes {
                    classes, width, n, ..
                },
                Encoded::Classes { pred, label, .. },
            ) => {
                let (c, w) = (*classes, *width);
                match label {
                    Some(label) => {
                        for r in rows {
                            let at = (row_cell[r] as usize * c + pred[r] as usize) * w
                                + label[r] as usize;
                            n[at] += 1;
                        }
                    }
                    None => {
                        for r in rows {
                            n[row_cell[r] as usize * c + pred[r] as usize] += 1;
                        }
                    }
                }
            }
            (Counts::Sums(sums), Encoded::Numbers { pred, label }) => {
                for r in rows {
                    let s = &mut sums[row_cell[r] as usize];
                    s.n += 1;
                    s.pred += pred[r];
                    if let Some(label) = label {
                        let e = pred[r] - label[r];
                        s.label += label[r];
                        s.abs_err += e.abs();
                        s.sq_err += e * e;
                        s.err += e;
                    }
                }
            }
            _ => unreachable!("counts are made for their encoding"),
        }
    }

    /// For classification, each row's counter index, so a resample adds a row with one
    /// lookup; `None` for regression or when the counters outgrow `u32` indices.
    pub fn slots(&self, enc: &Encoded, row_cell: &[u32]) -> Option<Vec<u32>> {
        let (Counts::Classes { classes, width, n }, Encoded::Classes { pred, label, .. }) =
            (self, enc)
        else {
            return None;
        };
        if n.len() > u32::MAX as usize {
            return None;
        }
        let (c, w) = (*classes, *width);
        Some(
            (0..row_cell.len())
                .map(|r| {
                    let l = label.as_ref().map_or(0, |l| l[r] as usize);
                    ((row_cell[r] as usize * c + pred[r] as usize) * w + l) as u32
                })
                .collect(),
        )
    }

    /// Adds rows by their counter index (see [`Counts::slots`]).
    pub fn add_slots(&mut self, slots: &[u32], rows: impl Iterator<Item = usize>) {
        let Counts::Classes { n, .. } = self else {
            unreachable!("slots are for class counts")
        };
        for r in rows {
            n[slots[r] as usize] += 1;
        }
    }

    /// Sums cells into the groups of a grouping.
    pub fn roll_up(&self, g: &Grouping) -> Counts {
        match self {
            Counts::Classes { classes, width, n } => {
                let block = classes * width;
                let mut out = vec![0u64; g.len() * block];
                for (cell, &grp) in g.of_cell.iter().enumerate() {
                    let (src, dst) = (cell * block, grp as usize * block);
                    for i in 0..block {
                        out[dst + i] += n[src + i];
                    }
                }
                Counts::Classes {
                    classes: *classes,
                    width: *width,
                    n: out,
                }
            }
            Counts::Sums(s) => {
                let mut out = vec![Sums::default(); g.len()];
                for (cell, &grp) in g.of_cell.iter().enumerate() {
                    out[grp as usize].add(&s[cell]);
                }
                Counts::Sums(out)
            }
        }
    }

    /// Everything in one group.
    pub fn total(&self) -> Counts {
        let all = Grouping {
            columns: Vec::new(),
            of_cell: vec![0; self.len()],
            keys: vec![Vec::new()],
        };
        self.roll_up(&all)
    }

    pub fn len(&self) -> usize {
        match self {
            Counts::Classes { classes, width, n } => n.len() / (classes * width),
            Counts::Sums(s) => s.len(),
        }
    }
}

/// Per-cell score sums and counts, for mean scores.
pub(crate) fn score_sums(cells: &Cells, scores: &[f64]) -> Vec<(u64, f64)> {
    let mut out = vec![(0u64, 0.0f64); cells.len()];
    for (&c, &s) in cells.row_cell.iter().zip(scores) {
        let o = &mut out[c as usize];
        o.0 += 1;
        o.1 += s;
    }
    out
}

/// Rolls per-cell score sums up to a grouping.
pub(crate) fn roll_up_scores(per_cell: &[(u64, f64)], g: &Grouping) -> Vec<(u64, f64)> {
    let mut out = vec![(0u64, 0.0f64); g.len()];
    for (cell, &grp) in g.of_cell.iter().enumerate() {
        out[grp as usize].0 += per_cell[cell].0;
        out[grp as usize].1 += per_cell[cell].1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fairness::data::{Columns, DatasetBuilder};

    fn dataset(rows: &[(&str, &str)]) -> Dataset {
        let c = Columns::new(vec!["a".into(), "b".into()], "p");
        let mut b = DatasetBuilder::new(c).unwrap();
        for (x, y) in rows {
            b.push_text(&[x, y], "1", None, None).unwrap();
        }
        b.finish().unwrap()
    }

    #[test]
    fn cells_are_the_non_empty_intersections_in_value_order() {
        let d = dataset(&[("y", "10"), ("x", "2"), ("y", "2"), ("x", "2")]);
        let c = Cells::build(&d).unwrap();
        assert_eq!(c.levels, vec![vec!["x", "y"], vec!["2", "10"]]);
        assert_eq!(c.cell_codes, vec![vec![0, 0], vec![1, 0], vec![1, 1]]);
        assert_eq!(c.row_cell, vec![2, 0, 1, 0]);
        assert_eq!(c.empty, vec![vec![0, 1]]);
        assert_eq!(c.empty_count, 1);
        let g = c.groupings();
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].of_cell, vec![0, 1, 1]);
        assert_eq!(g[1].of_cell, vec![0, 0, 1]);
        assert_eq!(g[2].keys[1], vec!["y", "2"]);
    }
}

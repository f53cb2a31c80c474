//! The Fellegi-Sunter model: comparison levels per pair, u-probabilities from random pairs,
//! m-probabilities and the match prior by expectation-maximisation without labels, term-
//! frequency adjustments, and scores that keep every field's contribution.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use rayon::prelude::*;

use super::blocking::{MatchMode, Universe};
use super::data::{Column, NULL};
use super::settings::{Comparison, Level, MatchSettings, Preprocess};
use super::similarity::{
    damerau_levenshtein, edit_lower_bound_ascii, jaro_winkler, levenshtein, token_jaccard,
};
use super::text::{clean, lower};
use crate::standardize::text::digits;
use crate::standardize::{DateOrder, IsoDate};

/// One comparison's values, prepared: a code per record into the distinct prepared texts,
/// with dates and numbers parsed once per distinct text where a level needs them. The texts
/// are stored end to end in one string (text `i` is `arena[starts[i]..starts[i + 1]]`), and
/// texts of up to [`SHORT`] bytes also in a cache-line-aligned slot of their own, so reading
/// a random pair's values (sampling for u, comparing candidates) costs one cache miss per
/// value rather than one for its offset and one for its bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct PreparedColumn {
    pub codes: Vec<u32>,
    pub starts: Vec<u32>,
    pub arena: String,
    slots: Vec<Slot>,
    pub days: Vec<Option<i64>>,
    pub nums: Vec<Option<f64>>,
}

/// Longest text kept in a [`Slot`].
const SHORT: usize = 31;

/// A text's length and bytes, or a length byte of `u8::MAX` when it is longer than [`SHORT`].
#[derive(Debug, Clone, Copy)]
#[repr(align(32))]
struct Slot([u8; SHORT + 1]);

impl PreparedColumn {
    /// Number of distinct prepared texts.
    pub fn n_texts(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// The prepared text of a code.
    pub fn text(&self, code: u32) -> &str {
        let c = code as usize;
        let slot = &self.slots[c].0;
        let len = usize::from(slot[0]);
        if len <= SHORT {
            // The slot holds a whole prepared text, which is valid UTF-8.
            if let Ok(t) = std::str::from_utf8(&slot[1..=len]) {
                return t;
            }
        }
        &self.arena[self.starts[c] as usize..self.starts[c + 1] as usize]
    }

    /// Appends a new distinct text.
    fn push_text(&mut self, text: &str) {
        self.arena.push_str(text);
        self.starts.push(self.arena.len() as u32);
        let mut slot = Slot([0; SHORT + 1]);
        if text.len() <= SHORT {
            slot.0[0] = text.len() as u8;
            slot.0[1..=text.len()].copy_from_slice(text.as_bytes());
        } else {
            slot.0[0] = u8::MAX;
        }
        self.slots.push(slot);
    }
}

/// Values of all records, by comparison.
pub(crate) struct PreparedTable {
    pub columns: Vec<PreparedColumn>,
}

/// A run of records whose values come from one stored column (or are all null when the
/// table lacks it).
#[derive(Clone, Copy)]
pub(crate) struct Segment<'a> {
    pub column: Option<&'a Column>,
    pub len: usize,
}

fn prepare_text(raw: &str, p: Preprocess) -> String {
    match p {
        Preprocess::Raw => raw.trim().to_owned(),
        Preprocess::Lower => lower(raw),
        Preprocess::Clean => clean(raw),
        Preprocess::Digits => digits(raw),
    }
}

fn prepare_column(c: &Comparison, segments: &[Segment<'_>], order: DateOrder) -> PreparedColumn {
    let wants_days = c.levels.iter().any(|l| matches!(l, Level::DateDays { .. }));
    let wants_nums = c
        .levels
        .iter()
        .any(|l| matches!(l, Level::NumericAbs { .. } | Level::NumericRel { .. }));
    let total: usize = segments.iter().map(|s| s.len).sum();
    let mut out = PreparedColumn {
        codes: Vec::with_capacity(total),
        starts: vec![0],
        ..PreparedColumn::default()
    };
    let mut interned: HashMap<&str, u32, RandomState> = HashMap::default();
    // Every segment's prepared texts are kept until the end so the map can borrow them.
    let mut prepared_segments: Vec<Vec<String>> = Vec::with_capacity(segments.len());
    let mut segment_codes: Vec<Vec<u32>> = Vec::with_capacity(segments.len());
    for seg in segments {
        let Some(col) = seg.column else {
            prepared_segments.push(Vec::new());
            segment_codes.push(Vec::new());
            continue;
        };
        // Prepare each distinct raw value once, in parallel.
        prepared_segments.push(
            col.values
                .par_iter()
                .map(|raw| prepare_text(raw, c.preprocess))
                .collect(),
        );
        segment_codes.push(Vec::new());
    }
    // Intern the prepared texts in order (codes do not depend on threads).
    for ((seg, prepared), to_code) in segments
        .iter()
        .zip(&prepared_segments)
        .zip(&mut segment_codes)
    {
        let Some(col) = seg.column else {
            continue;
        };
        to_code.reserve(prepared.len());
        for (text, raw) in prepared.iter().zip(&col.values) {
            if text.is_empty() {
                to_code.push(NULL);
                continue;
            }
            let next = out.n_texts() as u32;
            let code = *interned.entry(text.as_str()).or_insert(next);
            if code == next {
                if wants_days {
                    out.days.push(
                        IsoDate::parse(raw, order)
                            .ok()
                            .map(|d| d.days_since_epoch()),
                    );
                }
                if wants_nums {
                    out.nums
                        .push(raw.trim().parse::<f64>().ok().filter(|x| x.is_finite()));
                }
                out.push_text(text);
            }
            to_code.push(code);
        }
    }
    for (seg, to_code) in segments.iter().zip(&segment_codes) {
        match seg.column {
            None => out.codes.extend(std::iter::repeat_n(NULL, seg.len)),
            Some(col) => out.codes.extend(col.codes.iter().map(|&r| match r {
                NULL => NULL,
                r => to_code[r as usize],
            })),
        }
    }
    out
}

impl PreparedTable {
    /// Prepares every comparison's column over the records of `segments(column)`, which lists
    /// where each run of records takes that column's values from.
    pub fn new<'a>(
        settings: &MatchSettings,
        segments: &(dyn Fn(&str) -> Vec<Segment<'a>> + Sync),
    ) -> Self {
        let order = settings.training.date_order;
        let columns = settings
            .comparisons
            .par_iter()
            .map(|c| prepare_column(c, &segments(&c.column), order))
            .collect();
        Self { columns }
    }
}

/// Similarities of one pair, computed at most once each however many levels use them.
struct PairMeasures<'a> {
    a: &'a str,
    b: &'a str,
    jw: Option<f64>,
    lev: Option<usize>,
    dl: Option<usize>,
    jaccard: Option<f64>,
}

impl PairMeasures<'_> {
    fn jw(&mut self) -> f64 {
        *self.jw.get_or_insert_with(|| jaro_winkler(self.a, self.b))
    }
    fn lev(&mut self) -> usize {
        *self.lev.get_or_insert_with(|| levenshtein(self.a, self.b))
    }
    fn dl(&mut self) -> usize {
        *self
            .dl
            .get_or_insert_with(|| damerau_levenshtein(self.a, self.b))
    }
    fn jaccard(&mut self) -> f64 {
        *self
            .jaccard
            .get_or_insert_with(|| token_jaccard(self.a, self.b))
    }
}

fn satisfies(
    level: &Level,
    col: &PreparedColumn,
    a: u32,
    b: u32,
    pm: &mut PairMeasures<'_>,
) -> bool {
    let same = a == b;
    match level {
        Level::Exact => same,
        Level::JaroWinkler { min } => same || pm.jw() >= *min,
        Level::Levenshtein { max } => {
            // Lengths alone can rule a pair out (ASCII: one byte per character).
            same || (!(pm.a.is_ascii()
                && pm.b.is_ascii()
                && pm.a.len().abs_diff(pm.b.len()) > *max)
                && pm.lev() <= *max)
        }
        Level::DamerauLevenshtein { max } => {
            // A cheap lower bound rules most unrelated pairs out before the full table.
            same || (!(pm.a.is_ascii()
                && pm.b.is_ascii()
                && edit_lower_bound_ascii(pm.a.as_bytes(), pm.b.as_bytes()) > *max)
                && pm.dl() <= *max)
        }
        Level::TokenJaccard { min } => same || pm.jaccard() >= *min,
        Level::DateDays { max } => match (col.days[a as usize], col.days[b as usize]) {
            (Some(x), Some(y)) => (x - y).abs() <= *max,
            _ => false,
        },
        Level::NumericAbs { max } => match (col.nums[a as usize], col.nums[b as usize]) {
            (Some(x), Some(y)) => (x - y).abs() <= *max,
            _ => false,
        },
        Level::NumericRel { max } => match (col.nums[a as usize], col.nums[b as usize]) {
            (Some(x), Some(y)) => (x - y).abs() <= *max * x.abs().max(y.abs()),
            _ => false,
        },
    }
}

/// The level index of a pair for one comparison: 0 is null, `1..=k` the listed levels in
/// order, `k + 1` is `else`.
pub(crate) fn level_of(c: &Comparison, col: &PreparedColumn, a: usize, b: usize) -> u8 {
    let (ca, cb) = (col.codes[a], col.codes[b]);
    if ca == NULL || cb == NULL {
        return 0;
    }
    level_of_codes(c, col, ca, cb)
}

/// [`level_of`] for two non-null value codes.
fn level_of_codes(c: &Comparison, col: &PreparedColumn, ca: u32, cb: u32) -> u8 {
    // Equal values meet any text level without reading the text (most candidate pairs agree
    // on most columns); dates and numbers still need their parsed value.
    if ca == cb
        && c.levels.first().is_some_and(|l| {
            matches!(
                l,
                Level::Exact
                    | Level::JaroWinkler { .. }
                    | Level::Levenshtein { .. }
                    | Level::DamerauLevenshtein { .. }
                    | Level::TokenJaccard { .. }
            )
        })
    {
        return 1;
    }
    let mut pm = PairMeasures {
        a: col.text(ca),
        b: col.text(cb),
        jw: None,
        lev: None,
        dl: None,
        jaccard: None,
    };
    for (i, level) in c.levels.iter().enumerate() {
        if satisfies(level, col, ca, cb, &mut pm) {
            return (i + 1) as u8;
        }
    }
    (c.levels.len() + 1) as u8
}

/// Levels of one pair for every comparison, written into `out` (one per comparison).
pub(crate) fn pair_levels(
    settings: &MatchSettings,
    table: &PreparedTable,
    a: usize,
    b: usize,
    out: &mut [u8],
) {
    for ((c, col), slot) in settings.comparisons.iter().zip(&table.columns).zip(out) {
        *slot = level_of(c, col, a, b);
    }
}

/// Levels of many pairs for every comparison, `n_comp` bytes per pair in pair order. Works
/// column by column so that one column's codes and texts stay in cache while every pair is
/// compared on it.
pub(crate) fn levels_of_pairs(
    settings: &MatchSettings,
    table: &PreparedTable,
    pairs: &[(u32, u32)],
) -> Vec<u8> {
    let n_comp = settings.comparisons.len();
    let by_column: Vec<Vec<u8>> = settings
        .comparisons
        .iter()
        .zip(&table.columns)
        .map(|(c, col)| {
            pairs
                .par_iter()
                .map(|&(a, b)| level_of(c, col, a as usize, b as usize))
                .collect()
        })
        .collect();
    let mut levels = vec![0u8; pairs.len() * n_comp];
    levels
        .par_chunks_mut(n_comp)
        .enumerate()
        .for_each(|(i, out)| {
            for (slot, col) in out.iter_mut().zip(&by_column) {
                *slot = col[i];
            }
        });
    levels
}

/// Parameters of one level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelParams {
    pub label: String,
    /// P(level | match).
    pub m: f64,
    /// P(level | non-match).
    pub u: f64,
    /// log2(m / u): the evidence this level gives (0 for null).
    pub log2_bayes_factor: f64,
}

/// Parameters of one comparison; `levels[0]` is null, the last is `else`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonParams {
    pub column: String,
    pub levels: Vec<LevelParams>,
    pub term_frequency: bool,
}

/// A trained model.
#[derive(Debug, Clone, Serialize)]
pub struct TrainedModel {
    /// Prior probability that two random eligible records match.
    pub lambda: f64,
    /// Share of matches among candidate pairs, as estimated by EM.
    pub lambda_candidates: f64,
    pub comparisons: Vec<ComparisonParams>,
    pub em_iterations: usize,
    pub em_converged: bool,
    pub u_pairs_sampled: usize,
    /// The household class, when training asked for one (`household_columns`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub household: Option<HouseholdParams>,
}

/// The household class of a trained model: how different people who share a household
/// compare, against random pairs. A pair's match weight is lowered by how much better this
/// class explains its pattern than random non-matches do (see
/// [`HouseholdParams::adjustment`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HouseholdParams {
    /// The columns the class started from as shared.
    pub columns: Vec<String>,
    /// Prior probability that two random eligible records are different people of one
    /// household.
    pub share: f64,
    /// Share of household pairs among the candidate pairs, as estimated by EM.
    pub share_candidates: f64,
    /// P(level | household pair) per comparison (index 0, null, is 1).
    pub h: Vec<Vec<f64>>,
    /// log2(h / u) per comparison and level (0 for null).
    pub log2_ratio: Vec<Vec<f64>>,
}

impl HouseholdParams {
    /// log2 of the prior odds of a household pair against a random non-match.
    pub fn prior_weight(&self, lambda: f64) -> f64 {
        (self.share / (1.0 - lambda - self.share).max(1e-15)).log2()
    }

    /// The household class's evidence for one comparison at `level`, against random pairs;
    /// for an exact match on a column weighed by term frequency, against the value's
    /// frequency `freq` (as the match evidence is).
    pub fn evidence(&self, c: usize, level: u8, freq: Option<f64>) -> f64 {
        match freq {
            Some(f) if level == 1 => (self.h[c][1] / f.max(1e-6)).log2(),
            _ => self.log2_ratio[c][level as usize],
        }
    }

    /// What a pair's match weight loses to the household class, given the class's total
    /// weight for the pair (`prior_weight` plus the evidence of every comparison): the match
    /// weight is log2(P(match) / (P(household) + P(other))), and this is the part beyond the
    /// two-class weight, -log2(1 + 2^household_weight). Never positive.
    pub fn adjustment(household_weight: f64) -> f64 {
        let x = household_weight;
        // log2(1 + 2^x) without overflow for large x.
        let softplus = if x > 40.0 {
            x + (-x).exp2().ln_1p() / std::f64::consts::LN_2
        } else {
            x.exp2().ln_1p() / std::f64::consts::LN_2
        };
        -softplus
    }
}

/// m, u and the prior for EM: `m[c][l]` over levels 1..=k+1 of comparison c (index 0 unused).
#[derive(Debug, Clone, PartialEq)]
pub struct EmParams {
    pub lambda: f64,
    pub m: Vec<Vec<f64>>,
    pub u: Vec<Vec<f64>>,
}

/// Outcome of [`expectation_maximisation`].
#[derive(Debug, Clone)]
pub struct EmResult {
    pub params: EmParams,
    pub iterations: usize,
    pub converged: bool,
}

const FLOOR: f64 = 1e-9;

/// Expectation-maximisation over comparison patterns (level vectors with counts). Level 0
/// (null) carries no evidence and is skipped. With `fix_u`, u stays as given (estimated from
/// random pairs) and only m and the prior move.
pub fn expectation_maximisation(
    patterns: &[(Vec<u8>, f64)],
    init: EmParams,
    fix_u: bool,
    max_iterations: usize,
    tolerance: f64,
) -> EmResult {
    let n = init.m.len();
    let mut classes = [
        Class {
            share: init.lambda,
            dist: init.m,
            free: vec![true; n],
        },
        Class {
            share: 0.0,
            dist: init.u,
            free: vec![!fix_u; n],
        },
    ];
    let (iterations, converged) = run_em(patterns, &mut classes, max_iterations, tolerance);
    let [m, u] = classes;
    EmResult {
        params: EmParams {
            lambda: m.share,
            m: m.dist,
            u: u.dist,
        },
        iterations,
        converged,
    }
}

/// The third latent class of [`em_with_household`]: different people who share a household
/// (or a desk, a family email, a device). Such pairs agree on the address, phone, surname and
/// often the email together, which the two-class model, assuming comparisons independent
/// given the class, reads as overwhelming evidence of a match. Giving them a class of their
/// own models that dependence: evidence is then weighed against both kinds of non-match.
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdEm {
    /// Share of the candidate pairs in the household class.
    pub share: f64,
    /// P(level | household pair) per comparison, indexed like [`EmParams::m`].
    pub h: Vec<Vec<f64>>,
    /// Per comparison, whether EM may move h; where not (the columns that tell people apart,
    /// such as a first name or a birth date), household members compare as random pairs do
    /// and h stays at its starting value, the random pairs' u. Left free, those columns let
    /// the class drift into matches with a nickname or a typo.
    pub free: Vec<bool>,
}

/// Expectation-maximisation with three latent classes over comparison patterns: match (m,
/// share `lambda`), household (h, `household.share`) and other non-match (u, the rest). As in
/// [`expectation_maximisation`], level 0 (null) carries no evidence and `fix_u` keeps u as
/// given. Which class is which comes from the starting values: m puts its mass on agreement
/// everywhere, h on agreement in the shared columns only, u is the random pairs' u.
pub fn em_with_household(
    patterns: &[(Vec<u8>, f64)],
    init: EmParams,
    household: HouseholdEm,
    fix_u: bool,
    max_iterations: usize,
    tolerance: f64,
) -> (EmResult, HouseholdEm) {
    let n = init.m.len();
    let mut classes = [
        Class {
            share: init.lambda,
            dist: init.m,
            free: vec![true; n],
        },
        Class {
            share: household.share,
            dist: household.h,
            free: household.free,
        },
        Class {
            share: 0.0,
            dist: init.u,
            free: vec![!fix_u; n],
        },
    ];
    let (iterations, converged) = run_em(patterns, &mut classes, max_iterations, tolerance);
    let [m, h, u] = classes;
    (
        EmResult {
            params: EmParams {
                lambda: m.share,
                m: m.dist,
                u: u.dist,
            },
            iterations,
            converged,
        },
        HouseholdEm {
            share: h.share,
            h: h.dist,
            free: h.free,
        },
    )
}

/// One latent class of EM: its share of the pairs, P(level | class) per comparison (index 0,
/// null, unused) and which comparisons EM may move.
struct Class {
    share: f64,
    dist: Vec<Vec<f64>>,
    free: Vec<bool>,
}

/// EM over latent classes; the last class takes the share the others leave (its own `share`
/// is ignored and set on return). Returns the iterations run and whether no parameter moved
/// more than `tolerance` in the last one.
fn run_em(
    patterns: &[(Vec<u8>, f64)],
    classes: &mut [Class],
    max_iterations: usize,
    tolerance: f64,
) -> (usize, bool) {
    let k = classes.len();
    let rest_share = |classes: &[Class]| {
        (1.0 - classes[..k - 1].iter().map(|c| c.share).sum::<f64>()).max(FLOOR)
    };
    let mut iterations = 0;
    let mut converged = false;
    let mut ln_class = vec![0.0; k];
    let mut post = vec![0.0; k];
    while iterations < max_iterations {
        iterations += 1;
        // Logarithms once per level and iteration rather than once per pattern.
        let logs: Vec<Vec<Vec<f64>>> = classes
            .iter()
            .map(|c| {
                c.dist
                    .iter()
                    .map(|x| x.iter().map(|p| p.max(FLOOR).ln()).collect())
                    .collect()
            })
            .collect();
        let rest = rest_share(classes);
        let ln_share: Vec<f64> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| if i + 1 == k { rest.ln() } else { c.share.ln() })
            .collect();
        let mut acc: Vec<Vec<Vec<f64>>> = classes
            .iter()
            .map(|c| c.dist.iter().map(|v| vec![0.0; v.len()]).collect())
            .collect();
        let mut totals = vec![0.0; k];
        let mut total = 0.0;
        for (levels, count) in patterns {
            for (i, ln) in ln_class.iter_mut().enumerate() {
                *ln = ln_share[i];
                for (c, &l) in levels.iter().enumerate() {
                    if l > 0 {
                        *ln += logs[i][c][l as usize];
                    }
                }
            }
            let top = ln_class.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = ln_class.iter().map(|l| (l - top).exp()).sum();
            for (p, l) in post.iter_mut().zip(&ln_class) {
                *p = (l - top).exp() / sum;
            }
            total += count;
            for i in 0..k {
                totals[i] += post[i] * count;
                for (c, &l) in levels.iter().enumerate() {
                    if l > 0 {
                        acc[i][c][l as usize] += post[i] * count;
                    }
                }
            }
        }
        let mut change: f64 = 0.0;
        for (i, class) in classes.iter_mut().enumerate().take(k - 1) {
            let share = (totals[i] / total.max(FLOOR)).clamp(FLOOR, 1.0 - FLOOR);
            change = change.max((share - class.share).abs());
            class.share = share;
        }
        for (class, acc) in classes.iter_mut().zip(&acc) {
            for (c, acc) in acc.iter().enumerate() {
                if class.free[c] {
                    normalise_levels(acc, &mut class.dist[c], &mut change);
                }
            }
        }
        if change < tolerance {
            converged = true;
            break;
        }
    }
    classes[k - 1].share = rest_share(classes);
    (iterations, converged)
}

/// Replaces `old[1..]` with `acc[1..]` normalised to sum to one (floored), recording the
/// largest move in `change`; leaves `old` alone when nothing was counted.
fn normalise_levels(acc: &[f64], old: &mut [f64], change: &mut f64) {
    let sum: f64 = acc.iter().skip(1).sum();
    if sum <= 0.0 {
        return;
    }
    for l in 1..acc.len() {
        let v = (acc[l] / sum).max(FLOOR);
        *change = change.max((v - old[l]).abs());
        old[l] = v;
    }
}

/// Starting m-probabilities: most mass on the strictest level, decreasing geometrically, 5%
/// on `else`. Index 0 (null) is unused.
pub fn prior_m(n_listed: usize) -> Vec<f64> {
    let raw: Vec<f64> = (0..n_listed).map(|i| 0.5f64.powi(i as i32)).collect();
    let sum: f64 = raw.iter().sum();
    let mut m = vec![0.0];
    m.extend(raw.iter().map(|x| 0.95 * x / sum));
    m.push(0.05);
    m
}

/// Estimates u-probabilities from random eligible pairs (all pairs when there are fewer than
/// `sample`), with a half-count added to every level so none is zero. The pairs are drawn
/// from the seed first, then compared in parallel, so the result does not depend on threads.
pub(crate) fn estimate_u(
    settings: &MatchSettings,
    table: &PreparedTable,
    universe: Universe,
) -> (Vec<Vec<f64>>, usize) {
    let sample = settings.training.u_sample_pairs;
    let total = universe.total_pairs();
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    if total <= sample as u64 {
        for a in 0..universe.n {
            for b in a + 1..universe.n {
                if universe.eligible(a, b) {
                    pairs.push((a as u32, b as u32));
                }
            }
        }
    } else {
        pairs.reserve(sample);
        let mut rng = ChaCha8Rng::seed_from_u64(settings.training.seed);
        while pairs.len() < sample {
            let (a, b) = match universe.mode {
                MatchMode::Link => (
                    rng.gen_range(0..universe.n_left),
                    rng.gen_range(universe.n_left..universe.n),
                ),
                MatchMode::Dedupe => {
                    let a = rng.gen_range(0..universe.n);
                    let b = rng.gen_range(0..universe.n);
                    if a == b {
                        continue;
                    }
                    (a.min(b), a.max(b))
                }
            };
            pairs.push((a as u32, b as u32));
        }
    }
    // Counts do not depend on the order of the pairs; in record order, the first record's
    // codes are read in sequence.
    pairs.par_sort_unstable();
    // Column by column, so one column's codes and texts stay in cache while its pairs are
    // compared. Pairs with a null fall in level 0; the rest are sorted by their pair of codes
    // and each distinct pair of values is compared once, however often the sample drew it
    // (frequent names and dates repeat, and equal values are one pair per value).
    let counts: Vec<Vec<u64>> = settings
        .comparisons
        .par_iter()
        .zip(&table.columns)
        .map(|(c, col)| {
            let mut counts = vec![0u64; c.levels.len() + 2];
            let mut coded: Vec<u64> = Vec::with_capacity(pairs.len());
            for &(a, b) in &pairs {
                let (ca, cb) = (col.codes[a as usize], col.codes[b as usize]);
                if ca == NULL || cb == NULL {
                    counts[0] += 1;
                } else {
                    coded.push((u64::from(ca) << 32) | u64::from(cb));
                }
            }
            coded.par_sort_unstable();
            let runs: Vec<&[u64]> = coded.chunk_by(|x, y| x == y).collect();
            let by_level = runs
                .par_chunks(1024)
                .map(|chunk| {
                    let mut counts = vec![0u64; c.levels.len() + 2];
                    for run in chunk {
                        let key = run[0];
                        let level = level_of_codes(c, col, (key >> 32) as u32, key as u32);
                        counts[level as usize] += run.len() as u64;
                    }
                    counts
                })
                .reduce(
                    || vec![0u64; c.levels.len() + 2],
                    |mut x, y| {
                        for (a, b) in x.iter_mut().zip(y) {
                            *a += b;
                        }
                        x
                    },
                );
            for (a, b) in counts.iter_mut().zip(by_level) {
                *a += b;
            }
            counts
        })
        .collect();
    let u = counts
        .iter()
        .map(|c| {
            let non_null: f64 = c.iter().skip(1).map(|&x| x as f64).sum();
            let k = (c.len() - 1) as f64;
            let mut u = vec![0.0];
            u.extend(
                c.iter()
                    .skip(1)
                    .map(|&x| (x as f64 + 0.5) / (non_null + 0.5 * k)),
            );
            u
        })
        .collect();
    (u, pairs.len())
}

/// Relative frequency of every prepared value (by code), for the comparisons that weigh
/// exact agreement by term frequency.
pub(crate) fn term_frequencies(
    settings: &MatchSettings,
    table: &PreparedTable,
) -> Vec<Option<Vec<f64>>> {
    settings
        .comparisons
        .iter()
        .zip(&table.columns)
        .map(|(c, col)| {
            if !c.term_frequency || c.levels.first() != Some(&Level::Exact) {
                return None;
            }
            let mut counts = vec![0.0f64; col.n_texts()];
            let mut total = 0.0;
            for &code in &col.codes {
                if code != NULL {
                    counts[code as usize] += 1.0;
                    total += 1.0;
                }
            }
            for v in &mut counts {
                *v /= total;
            }
            Some(counts)
        })
        .collect()
}

impl TrainedModel {
    /// Builds the model from estimated parameters, making level evidence non-increasing from
    /// the strictest level to `else` so that agreeing more never counts against a pair.
    pub(crate) fn from_params(
        settings: &MatchSettings,
        p: &EmParams,
        lambda: f64,
        em: (usize, bool),
        u_pairs_sampled: usize,
        term_frequency: &[bool],
    ) -> Self {
        let comparisons = settings
            .comparisons
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                let mut levels = vec![LevelParams {
                    label: "null".into(),
                    m: 1.0,
                    u: 1.0,
                    log2_bayes_factor: 0.0,
                }];
                let mut previous = f64::INFINITY;
                for l in 1..=c.levels.len() + 1 {
                    let (m, u) = (p.m[ci][l].max(FLOOR), p.u[ci][l].max(FLOOR));
                    let bf = (m / u).log2().min(previous);
                    previous = bf;
                    let label = c.levels.get(l - 1).map_or("else".into(), Level::label);
                    levels.push(LevelParams {
                        label,
                        m,
                        u,
                        log2_bayes_factor: bf,
                    });
                }
                ComparisonParams {
                    column: c.column.clone(),
                    levels,
                    term_frequency: term_frequency.get(ci).copied().unwrap_or(false),
                }
            })
            .collect();
        Self {
            lambda: lambda.clamp(1e-15, 1.0 - 1e-15),
            lambda_candidates: p.lambda,
            comparisons,
            em_iterations: em.0,
            em_converged: em.1,
            u_pairs_sampled,
            household: None,
        }
    }

    /// log2 of the prior odds of a match.
    pub fn prior_weight(&self) -> f64 {
        (self.lambda / (1.0 - self.lambda)).log2()
    }

    /// The evidence of comparison `c` at `level`, with the term-frequency adjustment of an
    /// exact match on a value of relative frequency `freq` where enabled: log2(m / freq),
    /// never below the next level. `None` gives the unadjusted evidence.
    pub(crate) fn contribution_with_frequency(
        &self,
        c: usize,
        level: u8,
        freq: Option<f64>,
    ) -> f64 {
        let params = &self.comparisons[c];
        let base = params.levels[level as usize].log2_bayes_factor;
        if level != 1 || !params.term_frequency {
            return base;
        }
        match freq {
            Some(f) => {
                let tf = f.max(1e-6);
                let m = params.levels[1].m;
                let next = params.levels[2].log2_bayes_factor;
                (m / tf).log2().max(next)
            }
            None => base,
        }
    }
}

/// Converts a match weight (log2 odds) to a probability.
pub fn probability_from_weight(weight: f64) -> f64 {
    1.0 / (1.0 + (-weight).exp2())
}

#[cfg(test)]
mod tests;

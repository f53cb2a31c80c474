//! The pairs and clusters files of a run, formatted on all threads. The bytes are exactly
//! those of [`crate::csv_io::write_pairs_to`] and [`crate::csv_io::write_clusters_to`] (a test
//! holds them to it); rows are formatted in parallel batches and written in order, so only
//! one batch of text is held at a time.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;

use foldhash::fast::RandomState;
use rayon::prelude::*;

use super::blocking::MatchMode;
use super::model::probability_from_weight;
use super::pipeline::{household_level, MatchRun, HOUSEHOLD_COLUMN};
use crate::error::IdentityError;

/// Rows formatted by one task (a few in tests, so small runs span many chunks and batches).
#[cfg(not(test))]
const CHUNK: usize = 8192;
#[cfg(test)]
const CHUNK: usize = 7;
/// Chunks formatted before they are written.
#[cfg(not(test))]
const BATCH: usize = 16;
#[cfg(test)]
const BATCH: usize = 3;

fn csv_err(name: &str, e: &csv::Error) -> IdentityError {
    IdentityError::Csv {
        path: name.to_owned(),
        message: e.to_string(),
    }
}

fn io_err(name: &str, e: std::io::Error) -> IdentityError {
    IdentityError::Io {
        path: name.to_owned(),
        source: e,
    }
}

/// Text of numbers already formatted by one task, by precision and bits: most weights in a
/// pairs file are the same few level weights, and exact decimal formatting is slow.
#[derive(Default)]
struct Numbers {
    known: HashMap<(u8, u64), Box<str>, RandomState>,
    digits: String,
}

impl Numbers {
    /// `x` with `decimals` digits after the point, as `format!("{x:.decimals$}")`.
    fn get(&mut self, x: f64, decimals: u8) -> &str {
        self.known
            .entry((decimals, x.to_bits()))
            .or_insert_with(|| format!("{x:.*}", usize::from(decimals)).into())
    }
}

impl Numbers {
    /// A whole number's decimal digits (in a buffer reused from call to call).
    fn count(&mut self, n: usize) -> &str {
        self.digits.clear();
        let _ = write!(self.digits, "{n}");
        &self.digits
    }
}

/// Formats the rows `0..n` in parallel chunks with `row` and writes them in order.
fn write_rows<F>(name: &str, out: &mut impl Write, n: usize, row: F) -> Result<(), IdentityError>
where
    F: Fn(usize, &mut csv::Writer<Vec<u8>>, &mut Numbers) -> csv::Result<()> + Sync,
{
    let starts: Vec<usize> = (0..n).step_by(CHUNK).collect();
    for batch in starts.chunks(BATCH) {
        let texts: Vec<Vec<u8>> = batch
            .par_iter()
            .map(|&start| {
                let mut w = csv::Writer::from_writer(Vec::new());
                let mut numbers = Numbers::default();
                for i in start..(start + CHUNK).min(n) {
                    row(i, &mut w, &mut numbers).map_err(|e| csv_err(name, &e))?;
                }
                w.into_inner()
                    .map_err(|e| io_err(name, std::io::Error::other(e.to_string())))
            })
            .collect::<Result<_, _>>()?;
        for t in texts {
            out.write_all(&t).map_err(|e| io_err(name, e))?;
        }
    }
    out.flush().map_err(|e| io_err(name, e))
}

/// Writes the pairs at or above `min_probability`, strongest first, with each comparison's
/// level and evidence; returns how many.
pub(crate) fn write_pairs(
    name: &str,
    mut out: impl Write,
    run: &MatchRun,
    min_probability: f64,
) -> Result<usize, IdentityError> {
    let mut header = csv::Writer::from_writer(Vec::new());
    let mut fields = vec![
        "left_id".to_owned(),
        "right_id".to_owned(),
        "match_probability".to_owned(),
        "match_weight".to_owned(),
    ];
    for c in &run.model.comparisons {
        fields.push(format!("{}_level", c.column));
        fields.push(format!("{}_weight", c.column));
    }
    if run.model.household.is_some() {
        fields.push(format!("{HOUSEHOLD_COLUMN}_level"));
        fields.push(format!("{HOUSEHOLD_COLUMN}_weight"));
    }
    header
        .write_record(&fields)
        .map_err(|e| csv_err(name, &e))?;
    let header = header
        .into_inner()
        .map_err(|e| io_err(name, std::io::Error::other(e.to_string())))?;
    out.write_all(&header).map_err(|e| io_err(name, e))?;

    // Strongest first; ties keep candidate order, as the stable sort of the CSV writer does.
    let mut order: Vec<(f64, usize)> = run
        .link_indices(min_probability)
        .map(|i| (run.pair_weight(i).2, i))
        .collect();
    order.par_sort_unstable_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    let comparisons = &run.model.comparisons;
    write_rows(name, &mut out, order.len(), |k, w, numbers| {
        let (a, b, weight, levels) = run.pair_parts(order[k].1);
        w.write_field(run.record(a).id)?;
        w.write_field(run.record(b).id)?;
        w.write_field(numbers.get(probability_from_weight(weight), 6))?;
        w.write_field(numbers.get(weight, 4))?;
        for (c, (params, &l)) in comparisons.iter().zip(levels).enumerate() {
            w.write_field(
                params
                    .levels
                    .get(l as usize)
                    .map_or("", |x| x.label.as_str()),
            )?;
            w.write_field(numbers.get(run.contribution(c, l, a), 4))?;
        }
        if run.model.household.is_some() {
            let adjustment = run.household_adjustment(order[k].1);
            w.write_field(household_level(adjustment))?;
            w.write_field(numbers.get(adjustment, 4))?;
        }
        w.write_record(None::<&[u8]>)
    })?;
    Ok(order.len())
}

/// Writes `record_id,cluster_id` (plus `source` = left/right in link mode) for every record.
pub(crate) fn write_clusters(
    name: &str,
    mut out: impl Write,
    run: &MatchRun,
    clusters: &[usize],
) -> Result<(), IdentityError> {
    let mut header = csv::Writer::from_writer(Vec::new());
    let mut fields = vec!["record_id", "cluster_id"];
    if run.mode == MatchMode::Link {
        fields.push("source");
    }
    header
        .write_record(&fields)
        .map_err(|e| csv_err(name, &e))?;
    let header = header
        .into_inner()
        .map_err(|e| io_err(name, std::io::Error::other(e.to_string())))?;
    out.write_all(&header).map_err(|e| io_err(name, e))?;
    write_rows(name, &mut out, clusters.len(), |i, w, numbers| {
        let r = run.record(i);
        w.write_field(r.id)?;
        w.write_field(numbers.count(clusters[i]))?;
        if let Some(side) = r.side {
            w.write_field(side)?;
        }
        w.write_record(None::<&[u8]>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_io::{write_clusters_to, write_pairs_to};
    use crate::matching::synthetic::test_dataset;
    use crate::matching::{dedupe_dataset, infer_settings, link_datasets, Dataset};

    fn same_bytes(run: &MatchRun) {
        for min in [0.0, 0.5, 0.99] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let n = write_pairs_to("a", &mut a, run, min).expect("pairs");
            let m = write_pairs("b", &mut b, run, min).expect("pairs");
            assert_eq!(n, m);
            assert_eq!(String::from_utf8(a), String::from_utf8(b));
        }
        let clusters = run.clusters(0.5);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_clusters_to("a", &mut a, run, &clusters).expect("clusters");
        write_clusters("b", &mut b, run, &clusters).expect("clusters");
        assert_eq!(String::from_utf8(a), String::from_utf8(b));
    }

    fn people(records: usize, seed: u64) -> Dataset {
        test_dataset(records, seed).0
    }

    #[test]
    fn parallel_writers_give_the_same_bytes_as_the_csv_writers() {
        let data = people(2000, 3);
        let mut settings = infer_settings(&[&data]);
        settings.training.u_sample_pairs = 20_000;
        same_bytes(&dedupe_dataset(&data, &settings).expect("dedupe"));

        let (left, right) = (people(1500, 4), people(1500, 5));
        let mut settings = infer_settings(&[&left, &right]);
        settings.training.u_sample_pairs = 20_000;
        same_bytes(&link_datasets(&left, &right, &settings).expect("link"));
    }
}

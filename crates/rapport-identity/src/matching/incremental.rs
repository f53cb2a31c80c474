//! Incremental dedupe: new records are matched against records already clustered, and the
//! existing clusters keep their ids. An existing record never changes cluster; a new record
//! joins the cluster it links to most strongly, directly or through other new records, or
//! starts a new cluster. A new record that links to two existing clusters is reported for
//! review rather than merging them, since merging would rename one of them.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::api::{load_settings, MatchOptions};
use super::cluster::UnionFind;
use super::pipeline::{dedupe_dataset, MatchRun};
use crate::csv_io::{read_dataset, write_atomically};
use crate::error::IdentityError;

/// How a record got its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Assignment {
    /// An existing record: its cluster is unchanged.
    Existing,
    /// A new record that joined an existing cluster.
    Joined,
    /// A new record in a cluster of new records only.
    New,
}

/// A new record whose links reach more than one existing cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bridge {
    pub record_id: String,
    /// The cluster it joined.
    pub joined: String,
    /// The other existing clusters it also links to at the threshold.
    pub also_links: Vec<String>,
}

/// The result of an incremental run: a cluster id and an assignment per record, existing
/// records first, in input order.
#[derive(Debug, Clone, Serialize)]
pub struct IncrementalClusters {
    pub clusters: Vec<String>,
    pub assignments: Vec<Assignment>,
    pub bridges: Vec<Bridge>,
}

/// Assigns clusters to the new records of `run`, a dedupe over existing records (indices
/// `0..existing.len()`, with their cluster ids) followed by new ones.
pub fn assign_incremental(
    run: &MatchRun,
    existing: &[String],
    threshold: f64,
) -> IncrementalClusters {
    let n = run.n_records();
    let n_old = existing.len();
    // Best direct link of each new record to an existing record, and every existing cluster
    // it reaches.
    let mut best: Vec<Option<(f64, usize)>> = vec![None; n - n_old];
    let mut reached: Vec<Vec<usize>> = vec![Vec::new(); n - n_old];
    let mut uf = UnionFind::new(n - n_old);
    for i in run.link_indices(threshold) {
        let (a, b, w) = run.pair_weight(i);
        match (a < n_old, b < n_old) {
            (true, true) => {}
            (false, false) => uf.union(a - n_old, b - n_old),
            (old_a, _) => {
                let (old, new) = if old_a { (a, b) } else { (b, a) };
                let slot = &mut best[new - n_old];
                if slot.is_none_or(|(bw, bo)| w > bw || (w == bw && old < bo)) {
                    *slot = Some((w, old));
                }
                reached[new - n_old].push(old);
            }
        }
    }
    // A component of new records without any direct link takes the strongest link of any
    // of its members.
    let mut component_best: HashMap<usize, (f64, usize)> = HashMap::new();
    for (k, b) in best.iter().enumerate() {
        if let Some((w, old)) = *b {
            let root = uf.find(k);
            let e = component_best.entry(root).or_insert((w, old));
            if w > e.0 || (w == e.0 && old < e.1) {
                *e = (w, old);
            }
        }
    }
    let numeric: Option<u64> = existing
        .iter()
        .map(|c| c.parse::<u64>().ok())
        .try_fold(0u64, |m, c| c.map(|c| m.max(c)));
    let mut next_number = numeric.map(|m| m + 1);
    let mut fresh: HashMap<usize, String> = HashMap::new();
    let mut clusters = existing.to_vec();
    let mut assignments = vec![Assignment::Existing; n_old];
    let mut bridges = Vec::new();
    for k in 0..n - n_old {
        let root = uf.find(k);
        let joined = best[k].or_else(|| component_best.get(&root).copied());
        match joined {
            Some((_, old)) => {
                let cluster = existing[old].clone();
                let mut others: Vec<String> = reached[k]
                    .iter()
                    .map(|&o| existing[o].clone())
                    .filter(|c| *c != cluster)
                    .collect();
                others.sort();
                others.dedup();
                if !others.is_empty() {
                    bridges.push(Bridge {
                        record_id: run.record(n_old + k).id.to_owned(),
                        joined: cluster.clone(),
                        also_links: others,
                    });
                }
                clusters.push(cluster);
                assignments.push(Assignment::Joined);
            }
            None => {
                let id = fresh.entry(root).or_insert_with(|| match &mut next_number {
                    Some(next) => {
                        *next += 1;
                        (*next - 1).to_string()
                    }
                    None => format!("n-{}", run.record(n_old + k).id),
                });
                clusters.push(id.clone());
                assignments.push(Assignment::New);
            }
        }
    }
    IncrementalClusters {
        clusters,
        assignments,
        bridges,
    }
}

/// What an incremental run did.
#[derive(Debug, Clone, Serialize)]
pub struct IncrementalReport {
    pub existing_records: usize,
    pub new_records: usize,
    pub existing_clusters: usize,
    pub joined_existing: usize,
    pub new_clusters: usize,
    pub candidate_pairs: usize,
    pub threshold: f64,
    pub bridges: Vec<Bridge>,
    pub settings_inferred: bool,
    pub elapsed_ms: u128,
}

impl std::fmt::Display for IncrementalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "existing: {} records in {} clusters (ids unchanged); new: {} records",
            self.existing_records, self.existing_clusters, self.new_records
        )?;
        writeln!(
            f,
            "{} new records joined existing clusters; {} new clusters; {} candidate pairs",
            self.joined_existing, self.new_clusters, self.candidate_pairs
        )?;
        for b in &self.bridges {
            writeln!(
                f,
                "review: {} joined {} and also links to {}",
                b.record_id,
                b.joined,
                b.also_links.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Reads `record_id,cluster_id` for the existing records, in their order; every existing
/// record needs exactly one, and every row must name an existing record.
fn read_existing_clusters(path: &Path, ids: &[&str]) -> Result<Vec<String>, IdentityError> {
    let name = path.display().to_string();
    let rows = crate::csv_io::read_two_columns(path, "record_id", "cluster_id")?;
    let index: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut clusters: Vec<Option<String>> = vec![None; ids.len()];
    for (line, record, cluster) in rows {
        let Some(&i) = index.get(record.as_str()) else {
            return Err(IdentityError::Csv {
                path: name,
                message: format!("line {line}: record {record:?} is not in the existing records"),
            });
        };
        if clusters[i].is_some() {
            return Err(IdentityError::Csv {
                path: name,
                message: format!("line {line}: record {record:?} is listed twice"),
            });
        }
        clusters[i] = Some(cluster);
    }
    if let Some(i) = clusters.iter().position(Option::is_none) {
        return Err(IdentityError::Csv {
            path: name,
            message: format!("existing record {:?} has no cluster", ids[i]),
        });
    }
    Ok(clusters.into_iter().flatten().collect())
}

/// Matches the records of `input` against `existing` records clustered in
/// `existing_clusters`, and writes every record's cluster to `opts.clusters_out`
/// (`record_id,cluster_id,assignment`). The model is trained on both files together.
pub fn dedupe_incremental(
    existing: &Path,
    existing_clusters: &Path,
    input: &Path,
    opts: &MatchOptions,
) -> Result<IncrementalReport, IdentityError> {
    opts.check()?;
    let started = Instant::now();
    let old = read_dataset(existing, &opts.id_column)?;
    let new = read_dataset(input, &opts.id_column)?;
    if old.columns() != new.columns() {
        return Err(IdentityError::Csv {
            path: input.display().to_string(),
            message: format!(
                "its columns ({}) differ from the existing records' ({})",
                new.columns().join(", "),
                old.columns().join(", ")
            ),
        });
    }
    let ids: Vec<&str> = (0..old.len()).map(|i| old.id(i)).collect();
    let clusters = read_existing_clusters(existing_clusters, &ids)?;
    let all = old.union(&new, ("", ""))?;
    let (settings, inferred) = load_settings(opts, &[&all])?;
    let run = dedupe_dataset(&all, &settings)?;
    let result = assign_incremental(&run, &clusters, opts.threshold);
    if let Some(path) = &opts.clusters_out {
        write_atomically(path, |w| {
            let mut w = csv::Writer::from_writer(w);
            w.write_record(["record_id", "cluster_id", "assignment"])?;
            for (i, (c, a)) in result.clusters.iter().zip(&result.assignments).enumerate() {
                let a = match a {
                    Assignment::Existing => "existing",
                    Assignment::Joined => "joined",
                    Assignment::New => "new",
                };
                w.write_record([run.record(i).id, c.as_str(), a])?;
            }
            w.flush()?;
            Ok(())
        })?;
    }
    let mut distinct_old: Vec<&String> = clusters.iter().collect();
    distinct_old.sort();
    distinct_old.dedup();
    let mut distinct_new: Vec<&String> = result
        .clusters
        .iter()
        .zip(&result.assignments)
        .filter(|(_, a)| **a == Assignment::New)
        .map(|(c, _)| c)
        .collect();
    distinct_new.sort();
    distinct_new.dedup();
    Ok(IncrementalReport {
        existing_records: old.len(),
        new_records: new.len(),
        existing_clusters: distinct_old.len(),
        joined_existing: result
            .assignments
            .iter()
            .filter(|a| **a == Assignment::Joined)
            .count(),
        new_clusters: distinct_new.len(),
        candidate_pairs: run.n_pairs(),
        threshold: opts.threshold,
        bridges: result.bridges,
        settings_inferred: inferred,
        elapsed_ms: started.elapsed().as_millis(),
    })
}

#[cfg(test)]
mod tests;

//! Probabilistic dedupe of the stored profiles of a workspace, and the decisions on its
//! review queue.
//!
//! A run turns each live profile into a match record exactly as `POST /v1/match` does
//! ([`profile_fields`]), finds candidate pairs by blocking (same email, same phone digits,
//! same last-name sound and first initial, same birth date, same postcode and first initial),
//! scores them with the shipped people model (Fellegi-Sunter, every field's contribution
//! kept) at the prior one over the number of profiles, and then, best pair first:
//! - at or above the auto-merge threshold, merges the two through the store's merge path
//!   (logged with rule `probabilistic_dedupe` and the score as its detail, audited, undone by
//!   unmerge); a merge a guard refuses is logged as refused and the pair goes to review;
//! - between the review and auto-merge thresholds, queues the pair for a person;
//! - below, leaves it alone.
//!
//! Pairs the review queue holds already, whatever their status, are skipped, so a rejected
//! pair is never queued or merged again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use rapport_core::{Actor, AuditEntry, IdentifierKind, Profile, ProfileId, WorkspaceId};
use rapport_identity::matching::probe::{fields_from_traits, Fields, PeopleModel, ProbeScore};
use rapport_identity::matching::{blocking_key, KeyTransform};
use rapport_store::{
    ProfileMerge, ProfileMergeOutcome, ProfileMergeRule, ReviewDecision, ReviewOutcome, ReviewPair,
    ReviewPairDraft, StoreError,
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::engine::Engine;

/// Most profiles one run reads.
pub const MAX_PROFILES: usize = 1_000_000;
/// A blocking key shared by more profiles than this says little (a shared office phone, a
/// common name); its pairs are left out rather than scored quadratically.
pub const MAX_BLOCK: usize = 200;
/// Actions listed in a report at most (the counts cover all).
pub const MAX_LISTED: usize = 500;

/// The thresholds of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DedupeThresholds {
    /// Pairs at or above this probability are merged.
    pub auto_merge: f64,
    /// Pairs at or above this (and below `auto_merge`) go to the review queue.
    pub review: f64,
}

impl Default for DedupeThresholds {
    fn default() -> Self {
        Self {
            auto_merge: 0.97,
            review: 0.80,
        }
    }
}

impl DedupeThresholds {
    /// Every problem with the thresholds, for config checks and request validation.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, v) in [("auto_merge", self.auto_merge), ("review", self.review)] {
            if !(0.0..=1.0).contains(&v) || v.is_nan() {
                out.push(format!("{name} threshold {v} is not between 0 and 1"));
            }
        }
        if self.review > self.auto_merge {
            out.push(format!(
                "review threshold {} is above the auto-merge threshold {}",
                self.review, self.auto_merge
            ));
        }
        out
    }
}

/// The record `POST /v1/match` and dedupe compare for a profile: its standardised traits
/// first, raw ones otherwise.
pub fn profile_fields(p: &Profile) -> Fields {
    fields_from_traits(&p.standardized_traits, &p.traits)
}

/// One pair a run acted on (or, in a dry run, would have).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DedupeAction {
    /// `merged`, `queued`, `refused` (a guard refused the merge; the pair was queued), or
    /// in a dry run `would_merge`, `would_queue`, `would_refuse`.
    pub action: String,
    pub profile_a: String,
    pub profile_b: String,
    pub match_probability: f64,
    /// The guard that refused, for `refused`.
    pub refusal: Option<String>,
    /// The merge log entry of a merge or a refusal.
    pub merge_id: Option<i64>,
}

/// What a run did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DedupeReport {
    pub dry_run: bool,
    /// Model name and version.
    pub model: String,
    pub auto_merge_threshold: f64,
    pub review_threshold: f64,
    /// Live profiles read and turned into match records.
    pub profiles_scanned: usize,
    /// Pairs found by blocking and scored.
    pub candidate_pairs: usize,
    /// Profiles sharing a key held by more than the block limit (those pairs are not scored).
    pub oversized_blocks: usize,
    pub merged: usize,
    pub queued: usize,
    /// Auto-merges a guard refused (each also queued for review unless queued before).
    pub refused: usize,
    /// Pairs above the review threshold the queue held already (pending or decided).
    pub skipped_known: usize,
    /// Pairs below the review threshold, left alone.
    pub below_review: usize,
    pub elapsed_ms: u128,
    /// The pairs acted on, most probable first (at most 500).
    pub actions: Vec<DedupeAction>,
}

impl std::fmt::Display for DedupeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let would = if self.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        };
        writeln!(f, "dedupe with {}{would}", self.model)?;
        writeln!(
            f,
            "profiles scanned: {}, candidate pairs: {}",
            self.profiles_scanned, self.candidate_pairs
        )?;
        writeln!(
            f,
            "merged (p >= {}): {}, queued for review (p >= {}): {}, refused by a guard: {}",
            self.auto_merge_threshold,
            self.merged,
            self.review_threshold,
            self.queued,
            self.refused
        )?;
        writeln!(
            f,
            "already in the review queue: {}, below review: {}, time: {} ms",
            self.skipped_known, self.below_review, self.elapsed_ms
        )?;
        for a in &self.actions {
            writeln!(
                f,
                "  {:<12} {} {} p={:.4}{}",
                a.action,
                a.profile_a,
                a.profile_b,
                a.match_probability,
                a.refusal
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

/// A scored candidate pair, indexes into the run's profiles.
struct Scored {
    a: usize,
    b: usize,
    score: ProbeScore,
}

/// The blocking keys of one record.
fn keys(f: &Fields) -> Vec<String> {
    let get = |c: &str, t: KeyTransform| f.get(c).and_then(|v| blocking_key(v, t));
    let mut out = Vec::new();
    if let Some(k) = get("email", KeyTransform::Exact) {
        out.push(format!("e:{k}"));
    }
    if let Some(k) = get("phone", KeyTransform::Digits) {
        out.push(format!("p:{k}"));
    }
    let initial = get("first_name", KeyTransform::First(1));
    if let (Some(l), Some(i)) = (get("last_name", KeyTransform::Soundex), &initial) {
        out.push(format!("n:{l}:{i}"));
    }
    if let Some(k) = get("dob", KeyTransform::Exact) {
        out.push(format!("d:{k}"));
    }
    if let (Some(k), Some(i)) = (get("postcode", KeyTransform::Exact), &initial) {
        out.push(format!("z:{k}:{i}"));
    }
    out
}

/// Candidate pairs `(a, b)` with `a < b`, and how many blocks were too big to use.
fn candidate_pairs(records: &[Fields]) -> (Vec<(usize, usize)>, usize) {
    let mut blocks: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        for k in keys(r) {
            blocks.entry(k).or_default().push(i);
        }
    }
    let mut pairs = BTreeSet::new();
    let mut oversized = 0;
    for members in blocks.values() {
        if members.len() > MAX_BLOCK {
            oversized += 1;
            continue;
        }
        for (n, &a) in members.iter().enumerate() {
            for &b in &members[n + 1..] {
                pairs.insert((a.min(b), a.max(b)));
            }
        }
    }
    (pairs.into_iter().collect(), oversized)
}

/// Scores candidate pairs with the people model; the best first.
fn score_pairs(records: &[Fields], pairs: &[(usize, usize)], prior: f64) -> Vec<Scored> {
    let model = PeopleModel::embedded();
    let mut by_left: HashMap<usize, Vec<usize>> = HashMap::new();
    for &(a, b) in pairs {
        by_left.entry(a).or_default().push(b);
    }
    let mut out = Vec::with_capacity(pairs.len());
    for (a, bs) in by_left {
        let candidates: Vec<Fields> = bs.iter().map(|&b| records[b].clone()).collect();
        for (b, score) in bs
            .into_iter()
            .zip(model.score(&records[a], &candidates, prior))
        {
            out.push(Scored { a, b, score });
        }
    }
    out.sort_by(|x, y| {
        y.score
            .match_weight
            .total_cmp(&x.score.match_weight)
            .then((x.a, x.b).cmp(&(y.a, y.b)))
    });
    out
}

/// Each field's part of a score, as the review queue and the merge log keep it.
pub fn field_parts(score: &ProbeScore) -> Value {
    Value::Array(
        score
            .fields
            .iter()
            .map(|f| {
                json!({
                    "field": f.column,
                    "level": f.level,
                    "log2_bayes_factor": f.log2_bayes_factor,
                })
            })
            .collect(),
    )
}

fn has_user_id(p: &Profile) -> bool {
    p.identities
        .iter()
        .any(|i| i.kind() == IdentifierKind::UserId)
}

/// A pair key that does not depend on order.
fn pair_key(a: &ProfileId, b: &ProfileId) -> (String, String) {
    let (a, b) = (a.as_str().to_owned(), b.as_str().to_owned());
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

impl Engine {
    /// The thresholds configured for dedupe runs.
    pub fn dedupe_thresholds(&self) -> DedupeThresholds {
        self.options.dedupe
    }

    /// Runs dedupe over a workspace's live profiles (see the module docs). With `dry_run`
    /// nothing is written and the report says what would have been done.
    pub async fn dedupe(
        &self,
        workspace: &WorkspaceId,
        thresholds: DedupeThresholds,
        dry_run: bool,
        actor: Actor,
    ) -> Result<DedupeReport, StoreError> {
        let problems = thresholds.problems();
        if !problems.is_empty() {
            return Err(StoreError::InvalidInput(problems.join("; ")));
        }
        let started = Instant::now();
        let store = &self.store;
        let mut profiles: Vec<Profile> = Vec::new();
        for s in store.recent_profiles(workspace, MAX_PROFILES).await? {
            if let Some(p) = store.profile(workspace, &s.id).await? {
                profiles.push(p);
            }
        }
        let known: HashSet<(String, String)> = store
            .review_pair_keys(workspace)
            .await?
            .iter()
            .map(|(a, b)| pair_key(a, b))
            .collect();
        let records: Vec<Fields> = profiles.iter().map(profile_fields).collect();
        let prior = 1.0 / (profiles.len().max(1) as f64 + 1.0);
        let (records, pairs, oversized, scored) = tokio::task::spawn_blocking(move || {
            let (pairs, oversized) = candidate_pairs(&records);
            let scored = score_pairs(&records, &pairs, prior);
            (records, pairs, oversized, scored)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("dedupe scoring failed: {e}")))?;
        drop(records);
        let model = PeopleModel::embedded();
        let mut report = DedupeReport {
            dry_run,
            model: format!("{} {}", model.name, model.version),
            auto_merge_threshold: thresholds.auto_merge,
            review_threshold: thresholds.review,
            profiles_scanned: profiles.len(),
            candidate_pairs: pairs.len(),
            oversized_blocks: oversized,
            merged: 0,
            queued: 0,
            refused: 0,
            skipped_known: 0,
            below_review: 0,
            elapsed_ms: 0,
            actions: Vec::new(),
        };
        // Where each profile went in this run's merges, to act on the survivors.
        let mut moved: HashMap<ProfileId, ProfileId> = HashMap::new();
        let resolve = |moved: &HashMap<ProfileId, ProfileId>, p: &ProfileId| {
            let mut p = p.clone();
            while let Some(next) = moved.get(&p) {
                p = next.clone();
            }
            p
        };
        let mut queue: Vec<ReviewPairDraft> = Vec::new();
        let mut queued_now: HashSet<(String, String)> = HashSet::new();
        for s in scored {
            let p = s.score.match_probability;
            if p < thresholds.review {
                report.below_review += 1;
                continue;
            }
            let (pa, pb) = (&profiles[s.a], &profiles[s.b]);
            if known.contains(&pair_key(&pa.id, &pb.id)) {
                report.skipped_known += 1;
                continue;
            }
            let (a, b) = (resolve(&moved, &pa.id), resolve(&moved, &pb.id));
            if a == b {
                continue;
            }
            let mut action = DedupeAction {
                action: String::new(),
                profile_a: a.to_string(),
                profile_b: b.to_string(),
                match_probability: p,
                refusal: None,
                merge_id: None,
            };
            let mut to_queue = p < thresholds.auto_merge;
            if !to_queue {
                if dry_run {
                    if has_user_id(pa) && has_user_id(pb) {
                        action.action = "would_refuse".into();
                        action.refusal = Some("unauthenticated_merge".into());
                        report.refused += 1;
                        to_queue = true;
                    } else {
                        action.action = "would_merge".into();
                        report.merged += 1;
                        moved.insert(b.clone(), a.clone());
                    }
                } else {
                    let detail = json!({
                        "match_probability": p,
                        "match_weight": s.score.match_weight,
                        "prior": prior,
                        "model": report.model,
                        "auto_merge_threshold": thresholds.auto_merge,
                        "fields": field_parts(&s.score),
                    });
                    let merge = ProfileMerge {
                        a: a.clone(),
                        b: b.clone(),
                        rule: ProfileMergeRule::ProbabilisticDedupe,
                        detail,
                    };
                    match store.merge_profiles(workspace, merge, Vec::new()).await? {
                        ProfileMergeOutcome::Merged { merge } => {
                            action.action = "merged".into();
                            action.merge_id = Some(merge.id);
                            report.merged += 1;
                            moved.insert(merge.merged.clone(), merge.survivor.clone());
                        }
                        ProfileMergeOutcome::Refused { merge } => {
                            action.action = "refused".into();
                            action.merge_id = Some(merge.id);
                            action.refusal = merge.refusal.clone();
                            report.refused += 1;
                            to_queue = true;
                        }
                        ProfileMergeOutcome::AlreadyOne { .. } => continue,
                    }
                }
            }
            if to_queue {
                if !queued_now.insert(pair_key(&a, &b)) {
                    continue;
                }
                if action.action.is_empty() {
                    action.action = if dry_run { "would_queue" } else { "queued" }.into();
                }
                report.queued += 1;
                queue.push(ReviewPairDraft {
                    profile_a: a.clone(),
                    profile_b: b.clone(),
                    match_probability: p,
                    match_weight: s.score.match_weight,
                    fields: field_parts(&s.score),
                    refusal: action.refusal.clone(),
                });
            }
            if report.actions.len() < MAX_LISTED {
                report.actions.push(action);
            }
        }
        report.elapsed_ms = started.elapsed().as_millis();
        if !dry_run {
            let audit = AuditEntry::new(
                Some(workspace.clone()),
                actor,
                "identity.dedupe.run",
                None,
                json!({
                    "profiles_scanned": report.profiles_scanned,
                    "candidate_pairs": report.candidate_pairs,
                    "merged": report.merged,
                    "queued": report.queued,
                    "refused": report.refused,
                    "auto_merge_threshold": thresholds.auto_merge,
                    "review_threshold": thresholds.review,
                    "model": report.model,
                }),
            );
            let added = store
                .queue_review_pairs(workspace, queue, vec![audit])
                .await?;
            report.queued = added;
        }
        tracing::info!(
            workspace = %workspace,
            profiles = report.profiles_scanned,
            pairs = report.candidate_pairs,
            merged = report.merged,
            queued = report.queued,
            refused = report.refused,
            dry_run,
            "dedupe run"
        );
        Ok(report)
    }

    /// Decides a pair of the review queue for `actor`: `merge` merges the two through the
    /// guards (rule `dedupe_review`, reversible by unmerge), `reject` records that they are
    /// different customers. Audited as `identity.review.merged` or `identity.review.rejected`.
    pub async fn decide_review(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        merge: bool,
        actor: Actor,
    ) -> Result<ReviewOutcome, StoreError> {
        let pair: ReviewPair = self
            .store
            .review_pair(workspace, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("review pair {id}")))?;
        let by = actor.encode();
        let decision = if merge {
            ReviewDecision::Merge {
                detail: json!({
                    "review_pair": pair.id,
                    "decided_by": by,
                    "match_probability": pair.match_probability,
                    "match_weight": pair.match_weight,
                    "fields": pair.fields,
                }),
            }
        } else {
            ReviewDecision::Reject
        };
        let audit = AuditEntry::new(
            Some(workspace.clone()),
            actor,
            if merge {
                "identity.review.merged"
            } else {
                "identity.review.rejected"
            },
            Some(pair.id.clone()),
            json!({
                "profile_a": pair.profile_a,
                "profile_b": pair.profile_b,
                "match_probability": pair.match_probability,
            }),
        );
        self.store
            .decide_review_pair(workspace, id, decision, &by, vec![audit])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn blocking_finds_shared_keys_and_scoring_ranks_the_duplicate_first() {
        let records = vec![
            rec(&[
                ("first_name", "maria"),
                ("last_name", "gonzalez"),
                ("phone", "+14155550101"),
                ("email", "maria@a.io"),
            ]),
            rec(&[
                ("first_name", "marla"),
                ("last_name", "gonzales"),
                ("phone", "+14155550101"),
                ("email", "mg@b.io"),
            ]),
            rec(&[
                ("first_name", "tom"),
                ("last_name", "baker"),
                ("email", "tom@c.io"),
            ]),
        ];
        let (pairs, oversized) = candidate_pairs(&records);
        assert_eq!(pairs, vec![(0, 1)]);
        assert_eq!(oversized, 0);
        let scored = score_pairs(&records, &pairs, 1.0 / 4.0);
        assert_eq!(scored.len(), 1);
        assert!(
            scored[0].score.match_probability > 0.9,
            "{:?}",
            scored[0].score
        );
        let parts = field_parts(&scored[0].score);
        assert!(parts.as_array().is_some_and(|a| a.len() == 7));
    }

    #[test]
    fn thresholds_are_checked() {
        assert!(DedupeThresholds::default().problems().is_empty());
        let bad = DedupeThresholds {
            auto_merge: 0.5,
            review: 0.9,
        };
        assert_eq!(bad.problems().len(), 1);
        let worse = DedupeThresholds {
            auto_merge: 1.5,
            review: -0.1,
        };
        assert_eq!(worse.problems().len(), 2);
    }
}

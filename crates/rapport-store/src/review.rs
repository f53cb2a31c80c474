//! What both backends share about the dedupe review queue: how a pair is keyed, ranked and
//! stored.

use chrono::{DateTime, Utc};
use rapport_core::ProfileId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ReviewPair, ReviewPairDraft};

/// The pair's profiles in the order the queue keys them by, so (a, b) and (b, a) are one pair.
pub(crate) fn ordered<'a>(a: &'a ProfileId, b: &'a ProfileId) -> (&'a str, &'a str) {
    if a.as_str() <= b.as_str() {
        (a.as_str(), b.as_str())
    } else {
        (b.as_str(), a.as_str())
    }
}

/// The probability in millionths, the column the queue is ordered by.
pub(crate) fn review_rank(p: f64) -> i64 {
    (p.clamp(0.0, 1.0) * 1e6).round() as i64
}

pub(crate) fn new_id() -> String {
    format!("dup_{}", uuid::Uuid::now_v7().simple())
}

/// The stored `body` of a pair.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct ReviewBody {
    match_probability: f64,
    match_weight: f64,
    fields: Value,
    refusal: Option<String>,
}

pub(crate) fn review_body(p: &ReviewPairDraft) -> Value {
    serde_json::to_value(ReviewBody {
        match_probability: p.match_probability,
        match_weight: p.match_weight,
        fields: p.fields.clone(),
        refusal: p.refusal.clone(),
    })
    .unwrap_or(Value::Null)
}

impl ReviewBody {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn into_pair(
        self,
        id: String,
        profile_a: ProfileId,
        profile_b: ProfileId,
        status: String,
        created_at: DateTime<Utc>,
        decided_at: Option<DateTime<Utc>>,
        decided_by: Option<String>,
    ) -> ReviewPair {
        ReviewPair {
            id,
            profile_a,
            profile_b,
            match_probability: self.match_probability,
            match_weight: self.match_weight,
            fields: self.fields,
            refusal: self.refusal,
            status,
            created_at,
            decided_at,
            decided_by,
        }
    }
}

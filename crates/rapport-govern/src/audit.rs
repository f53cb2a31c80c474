//! Verification of the audit chain: each record carries the hash of the one before and a hash
//! of its own fields, and sequence numbers run from 1 without gaps. Any edited, removed,
//! inserted or reordered record breaks one of those links, and the verifier names it.
//!
//! What a chain alone cannot show: records removed from the *end*. Compare the head
//! ([`ChainVerifier::head`]) with one noted elsewhere (a report, a ticket, another system) to
//! cover that.

use rapport_core::{AuditRecord, GENESIS_HASH};
use serde::Serialize;

/// One broken link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The sequence number of the record where the chain breaks.
    pub seq: i64,
    /// `edited`, `missing`, `reordered` or `relinked`.
    pub kind: &'static str,
    pub detail: String,
}

/// Checks records fed oldest first, one at a time, in constant memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
    checked: u64,
    problems: Vec<Problem>,
    /// Past this many problems only the count grows (a wholesale rewrite breaks every link).
    keep: usize,
    dropped: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            checked: 0,
            problems: Vec::new(),
            keep: 100,
            dropped: 0,
        }
    }

    fn flag(&mut self, seq: i64, kind: &'static str, detail: String) {
        if self.problems.len() < self.keep {
            self.problems.push(Problem { seq, kind, detail });
        } else {
            self.dropped += 1;
        }
    }

    pub fn push(&mut self, r: &AuditRecord) {
        self.checked += 1;
        if r.seq != self.expected_seq {
            if r.seq > self.expected_seq {
                let gap = r.seq - self.expected_seq;
                self.flag(
                    r.seq,
                    "missing",
                    format!(
                        "{gap} record(s) before #{} are missing (expected #{})",
                        r.seq, self.expected_seq
                    ),
                );
            } else {
                self.flag(
                    r.seq,
                    "reordered",
                    format!("#{} appears after #{}", r.seq, self.expected_seq - 1),
                );
            }
        }
        let own = r.compute_hash();
        if own != r.hash {
            self.flag(
                r.seq,
                "edited",
                format!("#{}'s fields no longer match its hash", r.seq),
            );
        } else if r.prev_hash != self.prev_hash && r.seq == self.expected_seq {
            // Fields intact and in sequence, but it points at a different predecessor: the
            // record before it was replaced (or the chain was re-sealed from here).
            self.flag(
                r.seq,
                "relinked",
                format!("#{} does not follow the record stored before it", r.seq),
            );
        }
        self.expected_seq = r.seq.max(self.expected_seq - 1) + 1;
        self.prev_hash.clone_from(&r.hash);
    }

    /// The hash of the last record seen: the value to note elsewhere and compare later.
    pub fn head(&self) -> &str {
        &self.prev_hash
    }

    pub fn finish(self) -> VerifyReport {
        VerifyReport {
            checked: self.checked,
            head: self.prev_hash,
            ok: self.problems.is_empty(),
            problems: self.problems,
            more_problems: self.dropped,
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub checked: u64,
    pub head: String,
    pub ok: bool,
    pub problems: Vec<Problem>,
    /// Problems past the first hundred, counted only.
    pub more_problems: u64,
}

/// Verifies a whole chain held in memory.
pub fn verify<'a>(records: impl IntoIterator<Item = &'a AuditRecord>) -> VerifyReport {
    let mut v = ChainVerifier::new();
    for r in records {
        v.push(r);
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rapport_core::{Actor, AuditEntry};
    use serde_json::json;

    fn chain(n: usize) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let prev = out
                .last()
                .map(|r| r.hash.clone())
                .unwrap_or(GENESIS_HASH.into());
            let e = AuditEntry::new(
                None,
                Actor::System,
                "test.event",
                Some(format!("prof_{i}")),
                json!({"i": i}),
            );
            out.push(AuditRecord::seal(&e, i as i64 + 1, 1_000 + i as i64, &prev));
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain(50);
        let r = verify(&c);
        assert!(r.ok, "{r:?}");
        assert_eq!(r.checked, 50);
        assert_eq!(r.head, c[49].hash);
    }

    #[test]
    fn an_edit_is_named() {
        let mut c = chain(10);
        c[4].details = r#"{"i":99}"#.into();
        let r = verify(&c);
        assert_eq!(r.problems.len(), 1, "{r:?}");
        assert_eq!((r.problems[0].seq, r.problems[0].kind), (5, "edited"));
    }

    #[test]
    fn a_resealed_edit_breaks_the_next_link() {
        let mut c = chain(10);
        c[4].details = r#"{"i":99}"#.into();
        c[4].hash = c[4].compute_hash();
        let r = verify(&c);
        assert_eq!((r.problems[0].seq, r.problems[0].kind), (6, "relinked"));
    }

    #[test]
    fn a_removal_is_named() {
        let mut c = chain(10);
        c.remove(3);
        let r = verify(&c);
        assert_eq!((r.problems[0].seq, r.problems[0].kind), (5, "missing"));
    }

    #[test]
    fn a_swap_is_named() {
        let mut c = chain(10);
        c.swap(2, 3);
        let r = verify(&c);
        assert!(!r.ok);
        assert_eq!(r.problems[0].seq, 4);
        assert!(r.problems.iter().any(|p| p.kind == "reordered"), "{r:?}");
    }

    proptest! {
        #[test]
        fn any_single_tamper_is_caught(n in 2usize..40, at in 0usize..40, what in 0u8..4) {
            let mut c = chain(n);
            let i = at % n;
            match what {
                0 => c[i].actor = "user:mallory".into(),
                1 => { c.remove(i); if c.is_empty() || i == n - 1 { return Ok(()); } }
                2 => { let j = (i + 1) % n; if i == j { return Ok(()); } c.swap(i, j); }
                _ => c[i].at_ms += 1,
            }
            prop_assert!(!verify(&c).ok);
        }
    }
}

//! The hand-labelled customer-message set (`tests/data/cx-messages.jsonl`) and its scoring:
//! per-label precision and recall for emotions, effort and urgency. Shared by the
//! `evaluate_cx` example and the accuracy guard in `tests/interpret.rs`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use rapport_interpret::{Interpreter, MessageAnalysis};
use serde::Deserialize;

/// Urgency as labelled.
#[derive(Debug, Clone, Deserialize)]
pub struct GoldUrgency {
    pub level: String,
    pub reasons: Vec<String>,
}

/// One labelled message.
#[derive(Debug, Clone, Deserialize)]
pub struct Gold {
    pub id: String,
    pub split: String,
    pub channel: String,
    pub text: String,
    pub emotions: BTreeMap<String, u8>,
    pub effort: Option<i8>,
    pub urgency: GoldUrgency,
}

/// All labelled messages, in file order.
pub fn load() -> Vec<Gold> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cx-messages.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{path:?} line {}: {e}", i + 1))
        })
        .collect()
}

/// True positives, false positives, false negatives of one label.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub tp: u32,
    pub fp: u32,
    pub fn_: u32,
}

impl Counts {
    fn add(&mut self, gold: bool, pred: bool) {
        match (gold, pred) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => {}
        }
    }

    /// Precision; 1 when nothing was predicted.
    pub fn precision(&self) -> f64 {
        let d = self.tp + self.fp;
        if d == 0 {
            1.0
        } else {
            f64::from(self.tp) / f64::from(d)
        }
    }

    /// Recall; 1 when there was nothing to find.
    pub fn recall(&self) -> f64 {
        let d = self.tp + self.fn_;
        if d == 0 {
            1.0
        } else {
            f64::from(self.tp) / f64::from(d)
        }
    }

    /// F1.
    pub fn f1(&self) -> f64 {
        let d = 2 * self.tp + self.fp + self.fn_;
        if d == 0 {
            1.0
        } else {
            f64::from(2 * self.tp) / f64::from(d)
        }
    }

    /// Gold occurrences.
    pub fn support(&self) -> u32 {
        self.tp + self.fn_
    }
}

/// Everything measured on a set of messages.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub messages: usize,
    /// Per emotion, plus `none` (no emotion at all).
    pub emotions: BTreeMap<String, Counts>,
    /// Sum of |intensity difference| over emotions found and labelled, and their number.
    pub intensity_err: (u32, u32),
    /// Effort: `signal` (non-null), `hard` (< 0) and `easy` (> 0) as labels.
    pub effort: BTreeMap<String, Counts>,
    /// Sum of |effort difference| where both are non-null, and their number.
    pub effort_err: (u32, u32),
    /// Per urgency level.
    pub levels: BTreeMap<String, Counts>,
    /// Level exactly right, within one step.
    pub level_exact: u32,
    pub level_near: u32,
    /// Per urgency reason.
    pub reasons: BTreeMap<String, Counts>,
}

const EMOTIONS: [&str; 7] = [
    "anger",
    "frustration",
    "anxiety",
    "sadness",
    "confusion",
    "joy",
    "gratitude",
];
const LEVELS: [&str; 4] = ["low", "normal", "high", "critical"];
const REASONS: [&str; 8] = [
    "outage",
    "money_lost",
    "legal_threat",
    "cancellation",
    "safety",
    "deadline",
    "repeated_contact",
    "human_request",
];

fn level_rank(l: &str) -> i32 {
    LEVELS.iter().position(|x| *x == l).map_or(-9, |p| p as i32)
}

/// Scores one analysis against its labels into `r`.
pub fn score(r: &mut Report, g: &Gold, a: &MessageAnalysis) {
    r.messages += 1;
    for e in EMOTIONS {
        let pred = a.emotions.iter().find(|x| x.kind.as_str() == e);
        let gold = g.emotions.get(e);
        r.emotions
            .entry(e.to_string())
            .or_default()
            .add(gold.is_some(), pred.is_some());
        if let (Some(p), Some(gi)) = (pred, gold) {
            r.intensity_err.0 += u32::from(p.intensity.get().abs_diff(*gi));
            r.intensity_err.1 += 1;
        }
    }
    r.emotions
        .entry("none".to_string())
        .or_default()
        .add(g.emotions.is_empty(), a.emotions.is_empty());

    let pe = a.effort.as_ref().map(|e| e.score.get());
    let eff = |k: &str, v: Option<i8>| match k {
        "signal" => v.is_some(),
        "hard" => v.is_some_and(|x| x < 0),
        _ => v.is_some_and(|x| x > 0),
    };
    for k in ["signal", "hard", "easy"] {
        r.effort
            .entry(k.to_string())
            .or_default()
            .add(eff(k, g.effort), eff(k, pe));
    }
    if let (Some(p), Some(gv)) = (pe, g.effort) {
        r.effort_err.0 += u32::from(p.abs_diff(gv));
        r.effort_err.1 += 1;
    }

    let pl = a.urgency.level.as_str();
    for l in LEVELS {
        r.levels
            .entry(l.to_string())
            .or_default()
            .add(g.urgency.level == l, pl == l);
    }
    let d = (level_rank(pl) - level_rank(&g.urgency.level)).abs();
    r.level_exact += u32::from(d == 0);
    r.level_near += u32::from(d <= 1);
    for k in REASONS {
        let gold = g.urgency.reasons.iter().any(|x| x == k);
        let pred = a.urgency.reasons.iter().any(|x| x.kind.as_str() == k);
        r.reasons.entry(k.to_string()).or_default().add(gold, pred);
    }
}

/// Analyses and scores every message of `split` (`dev`, `heldout` or `all`).
pub fn evaluate(interp: &Interpreter, set: &[Gold], split: &str) -> Report {
    let mut r = Report::default();
    for g in set.iter().filter(|g| split == "all" || g.split == split) {
        score(&mut r, g, &interp.analyze(&g.text));
    }
    r
}

/// Micro-averaged counts over a map of labels (skipping `none`).
pub fn micro(m: &BTreeMap<String, Counts>) -> Counts {
    let mut c = Counts::default();
    for (k, v) in m {
        if k != "none" {
            c.tp += v.tp;
            c.fp += v.fp;
            c.fn_ += v.fn_;
        }
    }
    c
}

/// Macro-averaged F1 over a map of labels that occur in gold (skipping `none`).
pub fn macro_f1(m: &BTreeMap<String, Counts>) -> f64 {
    let f: Vec<f64> = m
        .iter()
        .filter(|(k, v)| *k != "none" && v.support() > 0)
        .map(|(_, v)| v.f1())
        .collect();
    f.iter().sum::<f64>() / f.len().max(1) as f64
}

/// Markdown table of one report.
pub fn table(r: &Report) -> String {
    let mut s =
        String::from("| label | support | precision | recall | F1 |\n|---|---|---|---|---|\n");
    let mut section = |name: &str, m: &BTreeMap<String, Counts>| {
        for (k, c) in m {
            s.push_str(&format!(
                "| {name} {k} | {} | {:.2} | {:.2} | {:.2} |\n",
                c.support(),
                c.precision(),
                c.recall(),
                c.f1()
            ));
        }
        let mc = micro(m);
        if name != "effort" {
            s.push_str(&format!(
                "| {name} micro / macro-F1 | {} | {:.2} | {:.2} | {:.2} / {:.2} |\n",
                mc.support(),
                mc.precision(),
                mc.recall(),
                mc.f1(),
                macro_f1(m)
            ));
        }
    };
    section("emotion", &r.emotions);
    section("effort", &r.effort);
    section("urgency", &r.levels);
    section("reason", &r.reasons);
    let n = r.messages.max(1) as f64;
    s.push_str(&format!(
        "\n{} messages. Urgency level exact {:.1}%, within one level {:.1}%. Emotion intensity mean absolute error {:.2} (over {} emotions found and labelled). Effort mean absolute error {:.2} (over {} messages with both).\n",
        r.messages,
        100.0 * f64::from(r.level_exact) / n,
        100.0 * f64::from(r.level_near) / n,
        f64::from(r.intensity_err.0) / f64::from(r.intensity_err.1.max(1)),
        r.intensity_err.1,
        f64::from(r.effort_err.0) / f64::from(r.effort_err.1.max(1)),
        r.effort_err.1,
    ));
    s
}

//! Per-label precision and recall of the embedded emotion, effort and urgency detectors on
//! the hand-labelled customer messages (`tests/data/cx-messages.jsonl`), for the `dev` part
//! (used for tuning), the `heldout` part (reported) and both.
//!
//!     cargo run -p rapport-interpret --example evaluate_cx [-- --errors dev]
//!
//! `--errors dev` also lists every dev message where a label was missed or invented (never
//! use it on `heldout` while tuning).

mod common;

use common::cx;
use rapport_interpret::{IntentTaxonomy, Interpreter};

fn main() {
    let interp = Interpreter::embedded(IntentTaxonomy::default_cx()).expect("interpreter");
    let set = cx::load();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(split) = args
        .iter()
        .position(|a| a == "--errors")
        .and_then(|i| args.get(i + 1))
    {
        for g in set.iter().filter(|g| &g.split == split) {
            let a = interp.analyze(&g.text);
            let mut r = cx::Report::default();
            cx::score(&mut r, g, &a);
            let wrong = |m: &std::collections::BTreeMap<String, cx::Counts>| {
                m.iter()
                    .filter(|(_, c)| c.fp + c.fn_ > 0)
                    .map(|(k, c)| format!("{}{k}", if c.fp > 0 { "+" } else { "-" }))
                    .collect::<Vec<_>>()
            };
            let mut errs = wrong(&r.emotions);
            errs.extend(wrong(&r.effort).into_iter().map(|e| format!("effort:{e}")));
            errs.extend(wrong(&r.reasons));
            if r.level_exact == 0 {
                errs.push(format!(
                    "level {}→{}",
                    g.urgency.level,
                    a.urgency.level.as_str()
                ));
            }
            if !errs.is_empty() {
                println!("{} {:?}\n    {}", g.id, g.text, errs.join(" "));
            }
        }
        return;
    }
    for split in ["dev", "heldout", "all"] {
        let r = cx::evaluate(&interp, &set, split);
        println!("## {split}\n\n{}", cx::table(&r));
    }
}

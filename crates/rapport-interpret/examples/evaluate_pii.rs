//! Per-type precision and recall, and overall F2, of the embedded personal-data detector on
//! seeded synthetic chat and email messages (see `common/pii_gen.rs`).
//!
//!     cargo run --release -p rapport-interpret --example evaluate_pii [-- --seed 7 --n 2000 --errors 40]
//!
//! Seed 1 is the development set the detector was tuned on; the figures in BENCHMARKS.md are
//! for seed 7, generated and scored only after tuning was finished.

mod common;

use common::pii_gen;
use rapport_interpret::{IntentTaxonomy, Interpreter};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seed = arg(&args, "--seed", 7);
    let n = arg(&args, "--n", 2000) as usize;
    let show = arg(&args, "--errors", 0) as usize;
    let interp = Interpreter::embedded(IntentTaxonomy::default_cx()).expect("interpreter");
    let samples = pii_gen::generate(seed, n);
    let labels: usize = samples.iter().map(|s| s.labels.len()).sum();
    let decoys: usize = samples.iter().map(|s| s.decoys).sum();
    let (counts, coverage, errors) = pii_gen::evaluate(&interp, &samples);
    println!(
        "seed {seed}: {n} messages ({} email), {labels} labelled values, {decoys} decoys\n",
        samples.iter().filter(|s| s.channel == "email").count()
    );
    println!("| type | labelled | precision | recall | F2 |\n|---|---|---|---|---|");
    for (k, c) in pii_gen::KINDS.iter().zip(&counts) {
        let k = if *k == "none" { "**all types**" } else { k };
        println!(
            "| {k} | {} | {:.3} | {:.3} | {:.3} |",
            c.tp + c.fn_,
            c.precision(),
            c.recall(),
            c.f2()
        );
    }
    println!(
        "\nlabelled characters covered by some detection (redaction recall): {:.3}",
        coverage
    );
    for e in errors.iter().take(show) {
        println!("{e}");
    }
}

//! Throughput and latency of the full embedded analysis of one message, on one thread, for
//! 20-word customer messages, against two references measured in the same run: the
//! lexicon-and-rules sentiment pass alone, and a plain regex scan (an email pattern) over the
//! same texts.
//!
//!     cargo run --release -p rapport-interpret --example bench_analyze [-- --seconds 3]
//!
//! Messages: 20-word windows over the hand-labelled customer messages (tests/data).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use rapport_interpret::{IntentTaxonomy, Interpreter};

/// Runs `f` over the texts round-robin for about `secs` seconds; messages per second.
fn rate(texts: &[String], secs: f64, mut f: impl FnMut(&str)) -> f64 {
    let t0 = Instant::now();
    let mut n = 0usize;
    while t0.elapsed().as_secs_f64() < secs {
        for t in texts {
            f(t);
        }
        n += texts.len();
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: f64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let words: Vec<String> = common::cx::load()
        .iter()
        .flat_map(|g| {
            g.text
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let texts: Vec<String> = (0..words.len().saturating_sub(20))
        .step_by(7)
        .map(|i| words[i..i + 20].join(" "))
        .collect();
    let interp = Interpreter::embedded(IntentTaxonomy::default_cx()).expect("interpreter");
    let email = regex::Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b")
        .expect("regex");
    // Warm up.
    for t in &texts {
        black_box(interp.analyze(t));
    }
    // Interleave the three, twice, and keep the better round of each.
    let mut best = [0.0f64; 3];
    for _ in 0..2 {
        let r = [
            rate(&texts, secs, |t| {
                black_box(interp.analyze(t));
            }),
            rate(&texts, secs, |t| {
                black_box(interp.lexicon_score(t));
            }),
            rate(&texts, secs, |t| {
                black_box(email.find_iter(t).count());
            }),
        ];
        for (b, v) in best.iter_mut().zip(r) {
            *b = b.max(v);
        }
    }
    // Single-message latency: each message timed on its own, many times over.
    let mut lat: Vec<Duration> = Vec::new();
    for _ in 0..20 {
        for t in &texts {
            let t0 = Instant::now();
            black_box(interp.analyze(t));
            lat.push(t0.elapsed());
        }
    }
    lat.sort();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{} distinct 20-word messages, one thread, {cores} cores on the machine\n",
        texts.len()
    );
    println!("| pass | messages/s on one core | vs full analysis |\n|---|---|---|");
    let names = [
        "full analyze() (language, sentiment + sentences, emotion, effort, urgency, intent, PII, redaction)",
        "reference: lexicon + rules sentiment only",
        "reference: one email regex scan",
    ];
    for (n, r) in names.iter().zip(best) {
        println!("| {n} | {:.0} | {:.2}x |", r, r / best[0]);
    }
    println!(
        "\nsingle message latency of analyze(): p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({} timings)",
        q(0.50),
        q(0.99),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
        lat.len()
    );
}

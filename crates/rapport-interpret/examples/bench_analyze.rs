//! Throughput and latency of the full embedded analysis of one message, on one thread, for
//! 20-word customer messages, against two references measured in the same run: the
//! lexicon-and-rules sentiment pass alone, and a plain regex scan (an email pattern) over the
//! same texts.
//!
//!     cargo run --release -p rapport-interpret --example bench_analyze [-- --seconds 3]
//!
//! With `--profile` only the full analysis runs (for `perf record`).
//!
//! Messages: 20-word windows over the hand-labelled customer messages (tests/data).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use rapport_interpret::{IntentTaxonomy, Interpreter};

/// CPU time this thread has run, from Linux's `/proc/thread-self/schedstat` (nanoseconds
/// on the CPU); `None` elsewhere. Under load (other builds on the two cores) the thread is
/// off the CPU part of the time, so the rate per CPU second is the rate of one core, and
/// the wall-clock rate is what this machine gave at that moment.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Runs `f` over the texts round-robin for about `secs` seconds; messages per wall-clock
/// second and per second on the CPU.
fn rate(texts: &[String], secs: f64, mut f: impl FnMut(&str)) -> (f64, f64) {
    let t0 = Instant::now();
    let c0 = thread_cpu();
    let mut n = 0usize;
    while t0.elapsed().as_secs_f64() < secs {
        for t in texts {
            f(t);
        }
        n += texts.len();
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = match (c0, thread_cpu()) {
        (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
        _ => wall,
    };
    (n as f64 / wall, n as f64 / cpu)
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
    if args.iter().any(|a| a == "--profile") {
        // Only the full analysis, for a profiler (`perf record ... -- --profile`).
        let (wall, cpu) = rate(&texts, secs, |t| {
            black_box(interp.analyze(t));
        });
        println!("{wall:.0} messages/s, {cpu:.0} per CPU second");
        return;
    }
    let email = regex::Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b")
        .expect("regex");
    // Warm up.
    for t in &texts {
        black_box(interp.analyze(t));
    }
    // Interleave the three, twice, and keep the better round of each.
    let mut best = [(0.0f64, 0.0f64); 3];
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
            b.0 = b.0.max(v.0);
            b.1 = b.1.max(v.1);
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
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "{} distinct 20-word messages, one thread, {cores} cores on the machine, load average {}\n",
        texts.len(),
        load.join(" ")
    );
    println!(
        "| pass | messages/s, wall clock | messages per CPU second (one core) | vs full analysis |\n|---|---|---|---|"
    );
    let names = [
        "full analyze() (language, sentiment + sentences, emotion, effort, urgency, intent, PII, redaction)",
        "reference: lexicon + rules sentiment only",
        "reference: one email regex scan",
    ];
    for (n, (wall, cpu)) in names.iter().zip(best) {
        println!("| {n} | {wall:.0} | {cpu:.0} | {:.2}x |", cpu / best[0].1);
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut stages = interp.stage_seconds(&refs);
    for _ in 0..9 {
        for (acc, (_, s)) in stages.iter_mut().zip(interp.stage_seconds(&refs)) {
            acc.1 += s;
        }
    }
    let all: f64 = stages.iter().map(|(_, s)| s).sum();
    println!("\n| stage | µs per message | share |\n|---|---|---|");
    for (name, s) in &stages {
        println!(
            "| {name} | {:.1} | {:.0}% |",
            s / (10 * texts.len()) as f64 * 1e6,
            100.0 * s / all
        );
    }
    println!(
        "\nsingle message latency of analyze(): p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({} timings)",
        q(0.50),
        q(0.99),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
        lat.len()
    );
}

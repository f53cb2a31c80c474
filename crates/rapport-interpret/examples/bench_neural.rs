//! Throughput of the MiniLM sentence embedder on the evaluation mix (UCI sentiment
//! sentences + BANKING77 train and test texts): the reference forward pass
//! (candle-transformers' `BertModel`, `MiniLm::embed_reference`) against our own
//! (`MiniLm::embed`) with both ways of using the cores, in one run so that the ratios are
//! not skewed by other load on the machine. Also single-sentence latency of both, and the
//! largest difference between their vectors.
//!
//!     CARGO_TARGET_DIR=/root/.cache/tgt-neural cargo build --release -p rapport-interpret \
//!         --features neural --example bench_neural
//!     /root/.cache/tgt-neural/release/examples/bench_neural [MODEL_DIR] [--batch N]... \
//!         [--limit N] [--threads N] [--only-new]
//!
//! Without MODEL_DIR the model is read from the default models directory
//! (`$RAPPORT_MODELS_DIR`, else `~/.cache/rapport/models`).

mod common;

use std::path::PathBuf;
use std::time::Instant;

use rapport_interpret::neural::{default_models_dir, minilm_dir, MiniLm, Threading};

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0f32, f32::max)
}

/// Sentences per second and seconds of one call of `embed` on `texts`.
fn time(texts: &[&str], embed: impl Fn(&[&str]) -> Vec<Vec<f32>>) -> (f64, f64, Vec<Vec<f32>>) {
    let t0 = Instant::now();
    let out = embed(texts);
    let secs = t0.elapsed().as_secs_f64();
    (texts.len() as f64 / secs, secs, out)
}

fn main() {
    let mut dir: Option<PathBuf> = None;
    let mut batches = Vec::new();
    let mut only_new = false;
    let mut limit = usize::MAX;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--batch" => batches.push(args.next().expect("--batch N").parse().expect("N")),
            "--limit" => limit = args.next().expect("--limit N").parse().expect("N"),
            "--threads" => threads = args.next().expect("--threads N").parse().expect("N"),
            "--only-new" => only_new = true,
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    if batches.is_empty() {
        batches.push(rapport_interpret::neural::DEFAULT_BATCH_SIZE);
    }
    let dir = dir.unwrap_or_else(|| minilm_dir(&default_models_dir()));
    let mut model = MiniLm::load(&dir).expect("load MiniLM");

    let (u_train, u_test) = common::uci();
    let mut texts: Vec<String> = u_train.into_iter().chain(u_test).map(|(t, _)| t).collect();
    for f in ["banking77/train.csv", "banking77/test.csv"] {
        texts.extend(common::csv_rows(f).into_iter().map(|(t, _)| t));
    }
    texts.truncate(limit);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    println!(
        "{} sentences, {threads} threads, load average at start {}",
        refs.len(),
        loadavg()
    );

    let check = model
        .embed_one("This is an example sentence")
        .expect("embed");
    println!("\"This is an example sentence\" -> {:?}", &check[..3]);

    for &b in &batches {
        model.set_batch_size(b);
        model.set_threading(Threading::Batches(threads));
        let (split_rate, split_secs, split) = time(&refs, |t| model.embed(t).expect("embed"));
        if only_new {
            println!(
                "batch {b}: new, {threads} batches at once: {split_rate:.1} sentences/s \
                 ({split_secs:.1} s), load {}",
                loadavg()
            );
            continue;
        }
        model.set_threading(Threading::Inner(threads));
        let (inner_rate, inner_secs, inner) = time(&refs, |t| model.embed(t).expect("embed"));
        let (ref_rate, ref_secs, reference) =
            time(&refs, |t| model.embed_reference(t).expect("embed"));
        println!(
            "batch {b}: reference {ref_rate:.1} sentences/s ({ref_secs:.1} s); \
             new, {threads} batches at once {split_rate:.1}/s ({split_secs:.1} s, ratio {:.2}); \
             new, one batch on {threads} threads {inner_rate:.1}/s ({inner_secs:.1} s, ratio \
             {:.2}); max |reference - new| {:.2e} / {:.2e}; load {}",
            split_rate / ref_rate,
            inner_rate / ref_rate,
            max_diff(&reference, &split),
            max_diff(&reference, &inner),
            loadavg()
        );
    }

    // The shipped sentiment head's encoder adapter: plain embeddings alone against plain and
    // adapted ones together (what the live path computes for each message), same run.
    let (head, _) = rapport_interpret::neural::SentimentHead::shipped().expect("shipped head");
    if let Some(adapter) = head.encoder_adapter(&model).expect("adapter") {
        model.set_threading(Threading::Batches(threads));
        let (plain_rate, plain_secs, _) = time(&refs, |t| model.embed(t).expect("embed"));
        let (both_rate, both_secs, _) = time(&refs, |t| {
            model
                .embed_adapted(t, &adapter)
                .expect("embed")
                .into_iter()
                .map(|(p, _)| p)
                .collect()
        });
        println!(
            "sentiment adapter from layer {}: plain {plain_rate:.1} sentences/s ({plain_secs:.1} s); \
             plain + adapted {both_rate:.1}/s ({both_secs:.1} s, ratio {:.2}); load {}",
            adapter.first_layer(),
            both_rate / plain_rate,
            loadavg()
        );
    }

    // Single-sentence latency after a warm-up, BANKING77 test texts.
    model.set_threading(Threading::Batches(threads));
    let (mean, p95) = common::single_sentence_latency(|t| model.embed_one(t));
    println!("single sentence, new, one thread: mean {mean:.2} ms, p95 {p95:.2} ms");
    if !only_new {
        model.set_threading(Threading::Inner(threads));
        let (mean, p95) = common::single_sentence_latency(|t| model.embed_one(t));
        println!("single sentence, new, {threads} threads: mean {mean:.2} ms, p95 {p95:.2} ms");
        let (mean, p95) = common::single_sentence_latency(|t| model.embed_one_reference(t));
        println!("single sentence, reference: mean {mean:.2} ms, p95 {p95:.2} ms");
    }
    println!("load at end {}", loadavg());
}

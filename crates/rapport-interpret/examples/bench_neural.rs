//! Throughput of the MiniLM sentence embedder on the evaluation mix (UCI sentiment
//! sentences + BANKING77 train and test texts), old way (fixed batches in input order)
//! against the current `embed` (batches grouped by token length), in one run so that the
//! ratio is not skewed by other load on the machine. Also single-sentence latency and a
//! check that both ways give the same vectors.
//!
//!     CARGO_TARGET_DIR=/root/.cache/tgt-rel cargo build --release -p rapport-interpret \
//!         --features neural --example bench_neural
//!     /root/.cache/tgt-rel/release/examples/bench_neural [MODEL_DIR] [--batch N]... [--only-new]
//!
//! Without MODEL_DIR the model is read from the default models directory
//! (`$RAPPORT_MODELS_DIR`, else `~/.cache/rapport/models`).

mod common;

use std::path::PathBuf;
use std::time::Instant;

use rapport_interpret::neural::{default_models_dir, minilm_dir, MiniLm};

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    let mut dir: Option<PathBuf> = None;
    let mut batches = Vec::new();
    let mut only_new = false;
    let mut limit = usize::MAX;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--batch" => batches.push(args.next().expect("--batch N").parse().expect("N")),
            "--limit" => limit = args.next().expect("--limit N").parse().expect("N"),
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
        "{} sentences, load average at start {}",
        refs.len(),
        loadavg()
    );

    let check = model
        .embed_one("This is an example sentence")
        .expect("embed");
    println!("\"This is an example sentence\" -> {:?}", &check[..3]);

    for &b in &batches {
        model.set_batch_size(b);
        let t0 = Instant::now();
        let new = model.embed(&refs).expect("embed");
        let new_secs = t0.elapsed().as_secs_f64();
        let new_rate = refs.len() as f64 / new_secs;
        if only_new {
            println!(
                "batch {b}: new {new_rate:.1} sentences/s ({new_secs:.1} s), load {}",
                loadavg()
            );
            continue;
        }
        let t0 = Instant::now();
        let old = model.embed_unsorted(&refs).expect("embed");
        let old_secs = t0.elapsed().as_secs_f64();
        let old_rate = refs.len() as f64 / old_secs;
        let max_diff = old
            .iter()
            .zip(&new)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
            .fold(0f32, f32::max);
        println!(
            "batch {b}: old {old_rate:.1} sentences/s ({old_secs:.1} s), new {new_rate:.1} \
             sentences/s ({new_secs:.1} s), ratio {:.2}, max |old - new| {max_diff:.2e}, load {}",
            new_rate / old_rate,
            loadavg()
        );
    }

    // Single-sentence latency after a warm-up, BANKING77 test texts.
    let (mean, p95) = common::single_sentence_latency(&model);
    println!(
        "single sentence: mean {mean:.2} ms, p95 {p95:.2} ms, load {}",
        loadavg()
    );
}

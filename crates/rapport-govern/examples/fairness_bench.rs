//! Times a fairness audit of a million rows with two group columns, and Fairlearn's on the
//! same data in the same run when Python with Fairlearn is there. Run in release:
//!
//! ```text
//! cargo run --release -p rapport-govern --example fairness_bench -- [ROWS] [--fairlearn]
//! ```
//!
//! It writes a seeded synthetic CSV to the temporary directory, then measures: reading that
//! CSV and auditing it; auditing the rows already in memory (median of 5); auditing with 200
//! bootstrap resamples; and, with `--fairlearn`, `fairness_bench_fairlearn.py` on the same
//! file, whose aggregates must equal ours to 1e-9.
//!
//! Measured on the 2-core build machine while other builds ran (load average 3 to 6), one
//! million rows, `sex` (3 values) × `region` (8 values), labels and scores, three runs:
//! reading the CSV and auditing 0.52 s, 0.64 s and 0.86 s (the audit alone 0.08 to 0.15 s);
//! 200 bootstrap resamples 2.8 s and 3.5 s (the last two runs). Fairlearn 0.15 on the same
//! file in the first and last run (pandas `read_csv`, then `MetricFrame` with the same
//! metrics): 224.6 s and 176.8 s, with all 15 aggregates equal to ours to 1e-9.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rapport_govern::fairness::{
    read_csv, AuditOptions, BootstrapOptions, Columns, Metric, Report, TaskKind, Value,
};

const REGIONS: [&str; 8] = [
    "capital", "centre", "east", "islands", "north", "overseas", "south", "west",
];

fn write_data(path: &Path, rows: usize) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "id,sex,region,approved,repaid,score")?;
    for i in 0..rows {
        let sex = match rng.gen_range(0..100) {
            0..=46 => "F",
            47..=94 => "M",
            _ => "X",
        };
        let r = rng.gen_range(0..REGIONS.len());
        let base = match sex {
            "F" => -0.3,
            "M" => 0.25,
            _ => -0.5,
        } + (r as f64 - 3.5) * 0.08;
        // A rough normal from four uniforms.
        let noise: f64 = (0..4).map(|_| rng.gen::<f64>()).sum::<f64>() - 2.0;
        let latent = base + noise * 1.7;
        let score = 1.0 / (1.0 + (-latent).exp());
        let approved = u8::from(score > 0.5);
        let repaid = u8::from(rng.gen::<f64>() < 1.0 / (1.0 + (-(0.9 * latent + 0.3)).exp()));
        writeln!(
            out,
            "{i},{sex},{},{approved},{repaid},{score:.6}",
            REGIONS[r]
        )?;
    }
    out.flush()
}

fn columns() -> Columns {
    Columns {
        groups: vec!["sex".into(), "region".into()],
        prediction: "approved".into(),
        label: Some("repaid".into()),
        score: Some("score".into()),
    }
}

fn options(bootstrap: Option<BootstrapOptions>) -> AuditOptions {
    AuditOptions {
        task: Some(TaskKind::Binary),
        positive: Some(Value::Number(1.0)),
        bootstrap,
    }
}

fn seconds(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows: usize = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let fairlearn = args.iter().any(|a| a == "--fairlearn");
    let path = std::env::temp_dir().join(format!("rapport-fairness-bench-{rows}.csv"));

    let t = Instant::now();
    write_data(&path, rows)?;
    println!(
        "wrote {rows} rows to {} in {:.2} s",
        path.display(),
        seconds(t)
    );

    let t = Instant::now();
    let data = read_csv(std::fs::File::open(&path)?, &columns())?;
    let read = seconds(t);
    let t = Instant::now();
    let report = data.audit(&options(None))?;
    let first_audit = seconds(t);
    println!(
        "rapport: read CSV {read:.3} s + audit {first_audit:.3} s = {:.3} s",
        read + first_audit
    );

    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let r = data.audit(&options(None)).expect("audit");
            std::hint::black_box(r);
            seconds(t)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "rapport: audit of rows in memory, median of 5: {:.3} s",
        times[2]
    );

    let boot = BootstrapOptions {
        resamples: 200,
        seed: 1,
        confidence: 0.95,
        threads: None,
    };
    let t = Instant::now();
    let with_ci = data.audit(&options(Some(boot)))?;
    println!(
        "rapport: audit with 200 bootstrap resamples ({} threads): {:.2} s",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        seconds(t)
    );
    let dp = with_ci
        .grouping(&["sex", "region"])
        .and_then(|g| g.outcomes[0].aggregate(Metric::DemographicParityDifference))
        .expect("dp");
    println!("  demographic parity difference by sex × region: {dp:?}");

    if fairlearn {
        run_fairlearn(&path, &report)?;
    }
    Ok(())
}

fn run_fairlearn(path: &Path, ours: &Report) -> Result<(), Box<dyn std::error::Error>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fairness_bench_fairlearn.py");
    let t = Instant::now();
    let out = std::process::Command::new("python3")
        .arg("-W")
        .arg("ignore")
        .arg(&script)
        .arg(path)
        .output()?;
    let wall = seconds(t);
    if !out.status.success() {
        return Err(format!(
            "fairlearn script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let f = |k: &str| json[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "fairlearn {}: read CSV {:.3} s + audit {:.3} s = {:.3} s (process wall time {wall:.2} s, \
         with Python start-up and imports); one equalized_odds_ratio() call {:.3} s",
        json["fairlearn"].as_str().unwrap_or("?"),
        f("read_csv_seconds"),
        f("audit_seconds"),
        f("read_csv_seconds") + f("audit_seconds"),
        f("equalized_odds_ratio_call_seconds"),
    );
    let mut compared = 0;
    for (name, cols) in [
        ("sex", vec!["sex"]),
        ("region", vec!["region"]),
        ("sex x region", vec!["sex", "region"]),
    ] {
        let g = ours.grouping(&cols).ok_or("grouping")?;
        for (k, v) in json["results"][name].as_object().ok_or("results")? {
            let Some(m) = Metric::ALL.iter().find(|m| m.as_str() == k) else {
                continue;
            };
            let mine = g.outcomes[0].aggregate(*m).and_then(|a| a.value);
            let theirs = v.as_f64();
            match (mine, theirs) {
                (Some(a), Some(b)) if (a - b).abs() <= 1e-9 => compared += 1,
                (None, None) => compared += 1,
                _ => return Err(format!("{name} {k}: ours {mine:?}, Fairlearn {v}").into()),
            }
        }
    }
    println!("  {compared} aggregates equal Fairlearn's to 1e-9");
    Ok(())
}

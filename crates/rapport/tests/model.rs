//! `rapport model ...` and `rapport clv fit` as a user runs them: separate processes, real
//! files.

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rapport"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RAPPORT__") {
            c.env_remove(k);
        }
    }
    c.args(args).output().expect("run rapport")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A churn-like file with an id column; deterministic, with a few missing values.
fn write_data(path: &Path, n: usize, offset: usize) {
    let mut s = String::from("account,tenure,plan,tickets,churned\n");
    for i in 0..n {
        let k = i + offset;
        let tenure = 1 + (k * 37) % 60;
        let plan = ["basic", "plus", "pro"][(k * 7) % 3];
        let tickets = (k * 13) % 6;
        let score =
            tickets as f64 * 0.8 - tenure as f64 * 0.08 + if plan == "basic" { 1.0 } else { 0.0 };
        // A deterministic but noisy label: the score plus a hash-like wobble.
        let wobble = ((k * 7919) % 100) as f64 / 100.0 * 3.0 - 1.5;
        let churned = (score + wobble > 0.5) as u8;
        let tickets = if k.is_multiple_of(11) {
            String::new()
        } else {
            tickets.to_string()
        };
        s.push_str(&format!("a{k},{tenure},{plan},{tickets},{churned}\n"));
    }
    std::fs::write(path, s).expect("write data");
}

#[test]
fn train_eval_score_and_explain_a_classifier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (train, test, model) = (
        dir.path().join("train.csv"),
        dir.path().join("test.csv"),
        dir.path().join("m.json"),
    );
    write_data(&train, 600, 0);
    write_data(&test, 200, 10_000);

    let o = run(&[
        "model",
        "train",
        "--task",
        "classification",
        "--input",
        p(&train),
        "--label",
        "churned",
        "--id",
        "account",
        "--output",
        p(&model),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("trees"), "{}", stdout(&o));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(saved["version"], 2);
    assert_eq!(saved["task"], "classification");
    assert_eq!(saved["features"].as_array().unwrap().len(), 3);

    let o = run(&[
        "model",
        "eval",
        "--model",
        p(&model),
        "--input",
        p(&test),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let eval: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(eval["roc_auc"].as_f64().unwrap() > 0.75, "{eval}");
    for k in ["pr_auc", "brier", "log_loss"] {
        assert!(eval[k].as_f64().is_some(), "{k} in {eval}");
    }
    assert_eq!(eval["calibration"].as_array().unwrap().len(), 10);

    let o = run(&["model", "score", "--model", p(&model), "--input", p(&test)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("account,probability,missing_features,model")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 200);
    assert!(rows[0].starts_with("a10000,"));
    let prob: f64 = rows[0].split(',').nth(1).unwrap().parse().unwrap();
    assert!((0.0..=1.0).contains(&prob));

    let o = run(&[
        "model",
        "explain",
        "--model",
        p(&model),
        "--input",
        p(&test),
        "--id",
        "a10001",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let sum: f64 = e["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contribution"].as_f64().unwrap())
        .sum();
    let total = e["base_log_odds"].as_f64().unwrap() + sum;
    assert!(
        (total - e["log_odds"].as_f64().unwrap()).abs() < 1e-9,
        "{e}"
    );
    let o = run(&[
        "model",
        "explain",
        "--model",
        p(&model),
        "--input",
        p(&test),
        "--id",
        "nobody",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("id_not_found"), "{}", stderr(&o));

    // A scoring file without the `tickets` column: scored, warned, and said in explanations.
    let partial = dir.path().join("partial.csv");
    std::fs::write(&partial, "account,tenure,plan\nz1,3,basic\n").unwrap();
    let o = run(&[
        "model",
        "score",
        "--model",
        p(&model),
        "--input",
        p(&partial),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("\"tickets\""), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("z1,") && stdout(&o).contains(",tickets,"),
        "{}",
        stdout(&o)
    );
    let o = run(&[
        "model",
        "explain",
        "--model",
        p(&model),
        "--input",
        p(&partial),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("missing: tickets (column absent from the input"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn bad_training_files_write_no_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("m.json");
    for (name, body, code) in [
        (
            "constant.csv",
            "x,y\n".to_string() + &"1,1\n2,1\n".repeat(20),
            "label_constant",
        ),
        (
            "negatives.csv",
            "x,y\n".to_string() + &"1,0\n2,0\n".repeat(20),
            "label_no_positives",
        ),
        (
            "three.csv",
            "x,y\n1,a\n2,b\n3,c\n".to_string(),
            "label_not_binary",
        ),
    ] {
        let input = dir.path().join(name);
        std::fs::write(&input, body).unwrap();
        let o = run(&[
            "model",
            "train",
            "--task",
            "classification",
            "--input",
            p(&input),
            "--label",
            "y",
            "--output",
            p(&model),
        ]);
        assert!(!o.status.success(), "{name}");
        assert!(stderr(&o).contains(code), "{name}: {}", stderr(&o));
        assert!(!model.exists(), "{name}: no model may be written");
    }
}

#[test]
fn model_files_of_another_version_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, model) = (dir.path().join("d.csv"), dir.path().join("m.json"));
    write_data(&data, 200, 0);
    let o = run(&[
        "model",
        "train",
        "--task",
        "classification",
        "--input",
        p(&data),
        "--label",
        "churned",
        "--output",
        p(&model),
        "--iterations",
        "5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text =
        std::fs::read_to_string(&model)
            .unwrap()
            .replacen("\"version\": 2", "\"version\": 7", 1);
    std::fs::write(&model, text).unwrap();
    let o = run(&["model", "score", "--model", p(&model), "--input", p(&data)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("model_version_unsupported") && stderr(&o).contains("version 7"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn clv_fit_prints_parameters_and_names_a_bad_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tx = dir.path().join("tx.txt");
    // 60 customers with varied repeat purchases over 1997.
    let mut s = String::new();
    for c in 0..60 {
        let repeats = c % 5;
        let first = 1 + c % 28;
        s.push_str(&format!("{c:05} 199701{first:02} 1 {}.00\n", 10 + c % 7));
        for k in 0..repeats {
            let month = 2 + (k * 2 + c) % 10;
            s.push_str(&format!(
                "{c:05} 1997{month:02}15 2 {}.50\n",
                12 + (c * k) % 30
            ));
        }
    }
    std::fs::write(&tx, s).unwrap();
    let out = dir.path().join("clv.csv");
    let o = run(&["clv", "fit", "--transactions", p(&tx), "--output", p(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    for name in ["r =", "alpha =", "a =", "b =", "p =", "q =", "v ="] {
        assert!(stdout(&o).contains(name), "{name}: {}", stdout(&o));
    }
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(csv.starts_with("customer,frequency,recency,T,monetary_value,expected_purchases"));
    assert_eq!(csv.lines().count(), 61);

    std::fs::write(&tx, "00001 19970101 1 10.00\n00002 1997-01-02 1 3.00\n").unwrap();
    let o = run(&["clv", "fit", "--transactions", p(&tx)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("line 2") && stderr(&o).contains("transaction_invalid"),
        "{}",
        stderr(&o)
    );
}

/// A model's predictions audited for fairness: `model score --keep ... --threshold` carries
/// the groups and the outcome beside each score, and `audit fairness` reads that file.
#[test]
fn scored_predictions_go_straight_into_a_fairness_audit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (train, test, model, scored) = (
        dir.path().join("train.csv"),
        dir.path().join("test.csv"),
        dir.path().join("m.json"),
        dir.path().join("scored.csv"),
    );
    write_data(&train, 600, 0);
    write_data(&test, 300, 20_000);
    let o = run(&[
        "model",
        "train",
        "--task",
        "classification",
        "--input",
        p(&train),
        "--label",
        "churned",
        "--id",
        "account",
        "--output",
        p(&model),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let score = |extra: &[&str]| {
        let mut args = vec!["model", "score", "--model", p(&model), "--input", p(&test)];
        args.extend_from_slice(extra);
        run(&args)
    };
    let o = score(&["--keep", "nope"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no column \"nope\""), "{}", stderr(&o));
    let o = score(&["--threshold", "1.5"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("between 0 and 1"), "{}", stderr(&o));

    let o = score(&[
        "--keep",
        "plan",
        "--keep",
        "churned",
        "--threshold",
        "0.5",
        "--output",
        p(&scored),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&scored).expect("scored");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("account,probability,predicted,missing_features,model,plan,churned")
    );
    // Selected and rows per plan, counted from the scored file.
    let mut per_plan: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let prob: f64 = cells[1].parse().expect("probability");
        assert_eq!(cells[2], if prob >= 0.5 { "1" } else { "0" }, "{line}");
        assert!(["basic", "plus", "pro"].contains(&cells[5]), "{line}");
        let e = per_plan.entry(cells[5].to_owned()).or_default();
        e.0 += f64::from(u8::from(cells[2] == "1"));
        e.1 += 1.0;
    }

    let o = run(&[
        "audit",
        "fairness",
        "--input",
        p(&scored),
        "--group",
        "plan",
        "--prediction",
        "predicted",
        "--label",
        "churned",
        "--score",
        "probability",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json report");
    let class_one = report
        .pointer("/groupings/0/outcomes")
        .and_then(serde_json::Value::as_array)
        .and_then(|o| o.iter().find(|x| x["class"] == "1"))
        .expect("the positive class's outcome");
    let groups = class_one["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 3, "{class_one}");
    for g in groups {
        let plan = g["group"][0].as_str().expect("plan");
        let (selected, rows) = per_plan[plan];
        let rate = g["selection_rate"].as_f64().expect("rate");
        assert!(
            (rate - selected / rows).abs() < 1e-12,
            "{plan}: {rate} vs {selected}/{rows}"
        );
    }
}

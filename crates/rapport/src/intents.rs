//! `rapport intents train` and `rapport intents eval`: an intent classifier trained on a CSV
//! of labelled texts, saved to a file, and scored on another CSV (accuracy, macro-F1, and
//! out-of-scope precision and recall when the file has out-of-scope rows). `rapport intents
//! retrain`: a workspace's intent model retrained in the store from agents' corrections, as
//! the dashboard's button and `POST /v1/intents/retrain` do.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rapport_interpret::intent_eval::{self, ThresholdGoal, DEFAULT_OOS_LABEL};
use rapport_interpret::{IntentClassifier, IntentConfig};

#[derive(Debug, clap::Subcommand)]
pub enum IntentsCommand {
    /// Train a classifier on a CSV of labelled texts and save it.
    Train(TrainArgs),
    /// Score a saved classifier on a CSV of labelled texts.
    Eval(EvalArgs),
    /// Retrain a workspace's intent model in the store from the default taxonomy and agents'
    /// corrections; running servers switch to the new version without a restart.
    Retrain(RetrainArgs),
}

#[derive(Debug, clap::Args)]
pub struct RetrainArgs {
    #[arg(long, default_value = rapport_core::WorkspaceName::DEFAULT)]
    pub workspace: String,
    /// Switch to the new version even if it reads the corrections worse than the one in use.
    #[arg(long)]
    pub force: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: crate::cli::StoreArgs,
}

/// Retrains in the store and prints the new version with its figures.
pub async fn retrain(config: &crate::config::Config, a: RetrainArgs) -> Result<()> {
    let s = crate::cli::open_store(&crate::cli::storage(config, &a.store)?).await?;
    let ws = crate::cli::workspace_id(s.as_ref(), &a.workspace).await?;
    // Under `interpret.model = "neural"` the version also gets the neural intent head that
    // servers with the neural path read its intents with.
    let neural = config.interpreter()?;
    let out = rapport_server::intents::retrain(
        s.as_ref(),
        &ws,
        rapport_core::Actor::System,
        a.force,
        neural,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"));
    s.close();
    let out = out?;
    if a.json {
        println!("{}", serde_json::to_string(&out)?);
        return Ok(());
    }
    let r = &out.report;
    let opt = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), pct);
    println!(
        "trained intent model version {} of workspace {} from {} taxonomy phrases and {} corrections ({} out of scope, {} skipped)",
        out.model.version, a.workspace, r.taxonomy_examples, r.corrections, r.out_of_scope_corrections, r.skipped_corrections
    );
    println!(
        "on the corrections ({} folds): version {} {} -> new {}; taxonomy phrases {}",
        r.folds,
        out.previous_version,
        opt(r.old_accuracy),
        opt(r.new_accuracy),
        pct(r.taxonomy_accuracy)
    );
    if out.activated {
        println!("version {} is now in use", out.model.version);
    } else {
        println!(
            "version {} is stored but NOT in use: it reads the corrections worse than version {} (use --force to switch anyway)",
            out.model.version, out.previous_version
        );
    }
    Ok(())
}

/// Where the texts and labels are in a CSV file.
#[derive(Debug, clap::Args)]
pub struct Columns {
    /// Column holding the text.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// Column holding the intent.
    #[arg(long, default_value = "category")]
    pub label_column: String,
    /// Label marking out-of-scope examples.
    #[arg(long, default_value = DEFAULT_OOS_LABEL)]
    pub oos_label: String,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Training CSV with a header row.
    #[arg(long, value_name = "train.csv")]
    pub input: PathBuf,
    /// Where to write the model.
    #[arg(long, value_name = "M")]
    pub output: PathBuf,
    #[command(flatten)]
    pub columns: Columns,
    /// Validation CSV (same columns) on which the out-of-scope threshold is chosen; needs
    /// out-of-scope rows.
    #[arg(long, value_name = "val.csv")]
    pub validation: Option<PathBuf>,
    /// With --validation: take the threshold with the best in-scope accuracy among those whose
    /// out-of-scope recall is at least this (otherwise the best mean of the two).
    #[arg(long)]
    pub min_oos_recall: Option<f64>,
    /// With --validation: take the threshold with the best out-of-scope recall among those
    /// that cost in-scope accuracy at most this much (0.01 is one point) against no threshold.
    #[arg(long, conflicts_with = "min_oos_recall")]
    pub max_in_scope_cost: Option<f64>,
    /// Fixed out-of-scope threshold (0..1) instead of one chosen on validation.
    #[arg(long, conflicts_with = "validation")]
    pub threshold: Option<f32>,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The model written by `rapport intents train`.
    #[arg(long, value_name = "M")]
    pub model: PathBuf,
    /// Test CSV with a header row.
    #[arg(long, value_name = "test.csv")]
    pub input: PathBuf,
    #[command(flatten)]
    pub columns: Columns,
    /// Score at this threshold instead of the model's own.
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `(text, label)` rows of a CSV, with every problem named by line.
fn read_rows(path: &Path, cols: &Columns) -> Result<Vec<(String, String)>> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let headers = r
        .headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .clone();
    let find = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .with_context(|| {
                format!(
                    "{}: no column {name:?} (columns: {})",
                    path.display(),
                    headers.iter().collect::<Vec<_>>().join(", ")
                )
            })
    };
    let (ti, li) = (find(&cols.text_column)?, find(&cols.label_column)?);
    let mut rows = Vec::new();
    let mut empty = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{}, line {line}", path.display()))?;
        let text = rec.get(ti).unwrap_or("").trim().to_string();
        let label = rec.get(li).unwrap_or("").trim().to_string();
        if text.is_empty() || label.is_empty() {
            empty.push(line);
            continue;
        }
        rows.push((text, label));
    }
    if !empty.is_empty() {
        bail!(
            "{}: empty text or label on line(s) {}",
            path.display(),
            empty
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if rows.is_empty() {
        bail!("{}: no labelled rows", path.display());
    }
    Ok(rows)
}

fn as_refs(rows: &[(String, String)]) -> Vec<(&str, &str)> {
    rows.iter().map(|(t, l)| (t.as_str(), l.as_str())).collect()
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn print_report(r: &intent_eval::IntentReport) {
    println!(
        "rows: {} ({} in scope, {} out of scope)",
        r.rows, r.in_scope_rows, r.oos_rows
    );
    println!("threshold: {:.2}", r.threshold);
    println!("accuracy: {}", pct(r.accuracy));
    println!("in-scope accuracy: {}", pct(r.in_scope_accuracy));
    println!("macro-F1: {}", pct(r.macro_f1));
    if let (Some(p), Some(rec)) = (r.oos_precision, r.oos_recall) {
        println!("out-of-scope precision: {}", pct(p));
        println!("out-of-scope recall: {}", pct(rec));
    }
    if !r.unknown_labels.is_empty() {
        println!(
            "labels the model does not know (counted wrong): {}",
            r.unknown_labels.join(", ")
        );
    }
}

pub fn run(command: IntentsCommand) -> Result<()> {
    match command {
        IntentsCommand::Train(a) => train(a),
        IntentsCommand::Eval(a) => eval(a),
        IntentsCommand::Retrain(_) => {
            bail!("retrain runs against the store (see intents::retrain)")
        }
    }
}

fn train(a: TrainArgs) -> Result<()> {
    if let Some(t) = a.threshold {
        if !(0.0..=1.0).contains(&t) {
            bail!("--threshold must be between 0 and 1, not {t}");
        }
    }
    for (flag, value) in [
        ("--min-oos-recall", a.min_oos_recall),
        ("--max-in-scope-cost", a.max_in_scope_cost),
    ] {
        if value.is_some_and(|v| !(0.0..=1.0).contains(&v) || a.validation.is_none()) {
            bail!("{flag} needs --validation and a value between 0 and 1");
        }
    }
    let rows = read_rows(&a.input, &a.columns)?;
    let mut labels: Vec<String> = Vec::new();
    let mut examples: Vec<(&str, usize)> = Vec::new();
    for (text, label) in &rows {
        // Out-of-scope rows are not an intent; they only help choose the threshold.
        if *label == a.columns.oos_label {
            continue;
        }
        let c = match labels.iter().position(|l| l == label) {
            Some(c) => c,
            None => {
                labels.push(label.clone());
                labels.len() - 1
            }
        };
        examples.push((text.as_str(), c));
    }
    if labels.len() < 2 {
        bail!(
            "{}: at least two intents are needed, found {}",
            a.input.display(),
            labels.len()
        );
    }
    let mut clf = IntentClassifier::train_examples(
        labels.clone(),
        &examples,
        a.threshold.unwrap_or(0.0),
        IntentConfig::default(),
    );
    let mut note = format!(
        "trained on {} ({} examples)",
        a.input.display(),
        examples.len()
    );
    if let Some(val) = &a.validation {
        let vrows = read_rows(val, &a.columns)?;
        let goal = match (a.min_oos_recall, a.max_in_scope_cost) {
            (Some(r), _) => ThresholdGoal::MinOosRecall(r),
            (None, Some(c)) => ThresholdGoal::MaxInScopeCost(c),
            (None, None) => ThresholdGoal::Balanced,
        };
        let (th, r) =
            intent_eval::tune_threshold(&clf, &as_refs(&vrows), &a.columns.oos_label, goal);
        if r.oos_rows == 0 {
            bail!(
                "{}: no rows labelled {:?}, so no out-of-scope threshold can be chosen",
                val.display(),
                a.columns.oos_label
            );
        }
        clf.set_threshold(th);
        note.push_str(&format!("; threshold {th:.2} chosen on {}", val.display()));
        println!(
            "threshold {th:.2} on {}: in-scope accuracy {}, out-of-scope recall {}",
            val.display(),
            pct(r.in_scope_accuracy),
            pct(r.oos_recall.unwrap_or(0.0))
        );
    }
    let bytes = clf.to_bytes(&note)?;
    std::fs::write(&a.output, &bytes)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    println!(
        "{} intents, {} examples; model written to {} ({} bytes)",
        labels.len(),
        examples.len(),
        a.output.display(),
        bytes.len()
    );
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("cannot read {}", a.model.display()))?;
    let (mut clf, note) = IntentClassifier::from_bytes(&bytes).with_context(|| {
        format!(
            "{} is not a usable intent model (make one with `rapport intents train`)",
            a.model.display()
        )
    })?;
    if let Some(t) = a.threshold {
        if !(0.0..=1.0).contains(&t) {
            bail!("--threshold must be between 0 and 1, not {t}");
        }
        clf.set_threshold(t);
    }
    let rows = read_rows(&a.input, &a.columns)?;
    let r = intent_eval::evaluate(&clf, &as_refs(&rows), &a.columns.oos_label);
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("model: {} ({note})", a.model.display());
        print_report(&r);
    }
    Ok(())
}

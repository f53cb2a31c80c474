//! `rapport audit fairness`: a fairness audit of a CSV file, a thin wrapper over
//! `rapport_govern::fairness`. Exits non-zero when a threshold is violated.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use rapport_govern::fairness::{
    read_csv, AuditOptions, BootstrapOptions, Columns, TaskKind, Thresholds, Value,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TaskArg {
    Binary,
    Multiclass,
    Regression,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct FairnessArgs {
    /// CSV file with a header row; `-` reads standard input. Rows are numbered from 1 after
    /// the header in messages.
    #[arg(long, value_name = "F.csv")]
    pub input: PathBuf,
    /// A sensitive column to audit by; repeat for more (their intersection is audited too).
    #[arg(long = "group", value_name = "COL", required = true)]
    pub groups: Vec<String>,
    /// The column with the decision or prediction.
    #[arg(long, value_name = "COL")]
    pub prediction: String,
    /// The column with the true outcome, for error rates (TPR, FPR, MAE...).
    #[arg(long, value_name = "COL")]
    pub label: Option<String>,
    /// A column with a model score, averaged per group.
    #[arg(long, value_name = "COL")]
    pub score: Option<String>,
    /// The kind of prediction; inferred from the values when absent.
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
    /// Binary: the positive outcome (needed unless the values are 0/1, -1/1 or true/false).
    #[arg(long, value_name = "LABEL")]
    pub positive: Option<String>,
    /// Bootstrap resamples for confidence intervals of the aggregates (none when absent).
    #[arg(long, value_name = "N")]
    pub bootstrap: Option<usize>,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Coverage of the bootstrap intervals.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    #[arg(long, value_enum, default_value = "table")]
    pub format: FormatArg,
    /// Limits (TOML, e.g. `max_demographic_parity_difference = 0.1`); the command exits
    /// non-zero when one is violated.
    #[arg(long, value_name = "FILE.toml")]
    pub thresholds: Option<PathBuf>,
}

pub fn run(args: FairnessArgs) -> Result<()> {
    let thresholds = match &args.thresholds {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(Thresholds::from_toml_str(&text).with_context(|| path.display().to_string())?)
        }
        None => None,
    };
    let columns = Columns {
        groups: args.groups.clone(),
        prediction: args.prediction.clone(),
        label: args.label.clone(),
        score: args.score.clone(),
    };
    let input: Box<dyn Read> = if args.input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.input)
                .with_context(|| format!("cannot open {}", args.input.display()))?,
        )
    };
    let name = args.input.display().to_string();
    let dataset =
        read_csv(std::io::BufReader::new(input), &columns).with_context(|| format!("in {name}"))?;
    let options = AuditOptions {
        task: args.task.map(|t| match t {
            TaskArg::Binary => TaskKind::Binary,
            TaskArg::Multiclass => TaskKind::Multiclass,
            TaskArg::Regression => TaskKind::Regression,
        }),
        positive: args.positive.as_deref().map(Value::parse),
        bootstrap: args.bootstrap.map(|resamples| BootstrapOptions {
            resamples,
            seed: args.seed,
            confidence: args.confidence,
            threads: None,
        }),
    };
    let report = dataset
        .audit(&options)
        .with_context(|| format!("in {name}"))?;
    let violations = thresholds
        .as_ref()
        .map(|t| t.check(&report))
        .unwrap_or_default();

    match args.format {
        FormatArg::Json => {
            let mut json = serde_json::to_value(&report)?;
            if thresholds.is_some() {
                json["violations"] = serde_json::to_value(&violations)?;
            }
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        FormatArg::Table => {
            print!("{report}");
            if thresholds.is_some() {
                if violations.is_empty() {
                    println!("\nThresholds: none violated");
                } else {
                    println!("\nThresholds: {} violated", violations.len());
                    for v in &violations {
                        println!("  - {v}");
                    }
                }
            }
        }
    }
    if !violations.is_empty() {
        bail!("{} fairness threshold(s) violated", violations.len());
    }
    Ok(())
}

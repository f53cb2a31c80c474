//! `rapport model train|eval|score|explain` and `rapport clv fit`: the prediction models of
//! `rapport-predict` over CSV and transaction files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use rapport_core::error::Coded;
use rapport_predict::data::{is_missing, Gap, Table};
use rapport_predict::{clv, metrics, Classifier, PredictError, TrainOptions};

/// A library error with its stable code, for the command line.
fn coded(e: PredictError) -> anyhow::Error {
    anyhow!("{e} [{}]", e.code())
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TaskArg {
    Classification,
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Train a model on a CSV file (one row per example, a header line).
    Train(TrainArgs),
    /// Evaluate a model on a labelled CSV file: ROC-AUC, PR-AUC, Brier score, log loss,
    /// calibration table.
    Eval {
        #[arg(long, value_name = "M")]
        model: PathBuf,
        #[arg(long, value_name = "test.csv")]
        input: PathBuf,
        /// Print the evaluation as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Score a CSV file: one row out per row in, with the calibrated probability.
    Score {
        #[arg(long, value_name = "M")]
        model: PathBuf,
        #[arg(long, value_name = "F.csv")]
        input: PathBuf,
        /// Where to write the scores (standard output when absent).
        #[arg(long, value_name = "OUT.csv")]
        output: Option<PathBuf>,
        /// Copy this input column into the output too (repeatable): e.g. the groups and the
        /// outcome, so `rapport audit fairness` can audit the predictions.
        #[arg(long, value_name = "COL")]
        keep: Vec<String>,
        /// Also write a `predicted` column: 1 where the probability is at least this.
        #[arg(long, value_name = "P")]
        threshold: Option<f64>,
    },
    /// Explain predictions: each feature's exact contribution to the calibrated log-odds.
    Explain {
        #[arg(long, value_name = "M")]
        model: PathBuf,
        #[arg(long, value_name = "F.csv")]
        input: PathBuf,
        /// Only the row whose id column holds this value.
        #[arg(long, value_name = "X")]
        id: Option<String>,
        /// The id column (default: the one given at training).
        #[arg(long, value_name = "COL")]
        id_column: Option<String>,
        /// How many contributions to show per row, largest first.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// One JSON object per row, with every contribution.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[arg(long, value_enum)]
    pub task: TaskArg,
    #[arg(long, value_name = "data.csv")]
    pub input: PathBuf,
    /// The column to predict (two values, e.g. 0/1, true/false, yes/no).
    #[arg(long, value_name = "COL")]
    pub label: String,
    /// A column identifying rows; it is not a feature.
    #[arg(long, value_name = "COL")]
    pub id: Option<String>,
    /// The label value meaning positive, when the values do not say it.
    #[arg(long, value_name = "VALUE")]
    pub positive: Option<String>,
    /// Where to write the model file.
    #[arg(long, value_name = "M")]
    pub output: PathBuf,
    /// Most trees cross-validation may choose (it usually chooses fewer).
    #[arg(long)]
    pub iterations: Option<usize>,
    #[arg(long)]
    pub learning_rate: Option<f32>,
    /// Deepest trees cross-validation tries (depths 1 to this, and no trees).
    #[arg(long)]
    pub max_depth: Option<usize>,
    /// Share of rows each cross-validation fold holds out (0.2: five folds); the held-out
    /// predictions choose the model and calibrate it.
    #[arg(long, default_value_t = 0.2)]
    pub holdout: f64,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the training summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum ClvCommand {
    /// Fit BG/NBD and Gamma-Gamma to a transaction log and print each customer's expected
    /// purchases and value.
    Fit {
        /// Transactions in the CDNOW layout: customer id, date YYYYMMDD, quantity, amount.
        #[arg(long, value_name = "F")]
        transactions: PathBuf,
        /// Expected purchases and value over this many days.
        #[arg(long, default_value_t = 365.0)]
        horizon_days: f64,
        /// End of observation, YYYYMMDD (default: the last day in the file).
        #[arg(long, value_name = "YYYYMMDD")]
        observation_end: Option<String>,
        /// Write the per-customer CSV here instead of standard output.
        #[arg(long, value_name = "OUT.csv")]
        output: Option<PathBuf>,
        /// Print the parameters as JSON (per-customer rows then go to --output only).
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Workspace(crate::churn::ClvModelCommand),
}

fn read_table(path: &Path) -> Result<Table> {
    Table::read(path).map_err(coded)
}

fn load(path: &Path) -> Result<Classifier> {
    Classifier::load(path).map_err(coded)
}

fn warn_absent(absent: &[String]) {
    if !absent.is_empty() {
        eprintln!(
            "warning: the input has no column {}: {} treated as missing in every row (see `rapport model explain`)",
            absent.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", "),
            if absent.len() == 1 { "it is" } else { "they are" }
        );
    }
}

pub fn run_model(command: ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Train(args) => train(args),
        ModelCommand::Eval { model, input, json } => {
            let m = load(&model)?;
            let table = read_table(&input)?;
            let label_col = table.column(&m.label).ok_or_else(|| {
                anyhow!(
                    "{}: no column named {:?}, the label the model was trained on [column_missing]",
                    input.display(),
                    m.label
                )
            })?;
            let mut y = Vec::with_capacity(table.rows.len());
            for (r, row) in table.rows.iter().enumerate() {
                let v = &row[label_col];
                if *v == m.positive_label {
                    y.push(true)
                } else if *v == m.negative_label {
                    y.push(false)
                } else {
                    let what = if is_missing(v) {
                        "is empty".to_string()
                    } else {
                        format!("is {v:?}")
                    };
                    bail!(
                        "{}, line {}: the label {what}; the model knows {:?} (positive) and {:?} [label_invalid]",
                        input.display(),
                        table.lines[r],
                        m.positive_label,
                        m.negative_label
                    );
                }
            }
            let enc = m.encode(&table).map_err(coded)?;
            warn_absent(&enc.absent);
            let p: Vec<f64> = (0..enc.rows()).map(|r| m.probability(enc.row(r))).collect();
            let eval = metrics::evaluate(&y, &p);
            if json {
                println!("{}", serde_json::to_string_pretty(&eval)?);
            } else {
                print!("{eval}");
            }
            Ok(())
        }
        ModelCommand::Score {
            model,
            input,
            output,
            keep,
            threshold,
        } => {
            if let Some(t) = threshold {
                if !(0.0..=1.0).contains(&t) {
                    bail!("--threshold must be between 0 and 1, not {t}");
                }
            }
            let m = load(&model)?;
            let table = read_table(&input)?;
            let kept: Vec<usize> = keep
                .iter()
                .map(|c| {
                    table
                        .column(c)
                        .ok_or_else(|| anyhow!("--keep: {} has no column {c:?}", input.display()))
                })
                .collect::<Result<_>>()?;
            let enc = m.encode(&table).map_err(coded)?;
            warn_absent(&enc.absent);
            let id_col = m.id_column.as_ref().and_then(|c| table.column(c));
            let sink: Box<dyn Write> = match &output {
                Some(p) => {
                    Box::new(std::fs::File::create(p).map_err(|e| anyhow!("{}: {e}", p.display()))?)
                }
                None => Box::new(std::io::stdout().lock()),
            };
            let mut w = csv::Writer::from_writer(std::io::BufWriter::new(sink));
            let id_name = match (id_col, &m.id_column) {
                (Some(_), Some(name)) => name.clone(),
                _ => "row".to_string(),
            };
            let mut header = vec![id_name.as_str(), "probability"];
            if threshold.is_some() {
                header.push("predicted");
            }
            header.extend(["missing_features", "model"]);
            header.extend(keep.iter().map(String::as_str));
            w.write_record(&header)?;
            let model_name = format!("{}@{}", m.model, m.version);
            for r in 0..enc.rows() {
                let id = match id_col {
                    Some(c) => table.rows[r][c].clone(),
                    None => (r + 1).to_string(),
                };
                let missing: Vec<&str> = enc.gaps[r]
                    .iter()
                    .map(|(f, _)| m.features[*f].name.as_str())
                    .collect();
                let probability = m.probability(enc.row(r));
                let mut record = vec![id, format!("{probability:.6}")];
                if let Some(t) = threshold {
                    record.push(u8::from(probability >= t).to_string());
                }
                record.extend([missing.join(";"), model_name.clone()]);
                record.extend(kept.iter().map(|&c| table.rows[r][c].clone()));
                w.write_record(&record)?;
            }
            w.flush()?;
            Ok(())
        }
        ModelCommand::Explain {
            model,
            input,
            id,
            id_column,
            top,
            json,
        } => {
            let m = load(&model)?;
            let table = read_table(&input)?;
            let enc = m.encode(&table).map_err(coded)?;
            warn_absent(&enc.absent);
            let id_name = id_column.or_else(|| m.id_column.clone());
            let id_col = match &id_name {
                Some(c) => Some(table.column(c).ok_or_else(|| {
                    anyhow!("{}: no id column {c:?} [column_missing]", input.display())
                })?),
                None => None,
            };
            let rows: Vec<usize> = match &id {
                Some(x) => {
                    let c = id_col.ok_or_else(|| {
                        anyhow!("--id needs an id column: the model was trained without --id; name one with --id-column [id_column_missing]")
                    })?;
                    let found: Vec<usize> = (0..table.rows.len())
                        .filter(|&r| table.rows[r][c] == *x)
                        .collect();
                    if found.is_empty() {
                        return Err(coded(PredictError::IdNotFound {
                            path: input.display().to_string(),
                            column: id_name.clone().unwrap_or_default(),
                            id: x.clone(),
                        }));
                    }
                    found
                }
                None => (0..table.rows.len()).collect(),
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for r in rows {
                let e = m.explain(&table, &enc, r);
                let row_id = id_col.map(|c| table.rows[r][c].clone());
                if json {
                    let mut v = serde_json::to_value(&e)?;
                    v["row"] = (r + 1).into();
                    if let Some(i) = &row_id {
                        v["id"] = i.clone().into();
                    }
                    writeln!(out, "{}", serde_json::to_string(&v)?)?;
                    continue;
                }
                let who = match &row_id {
                    Some(i) => format!("{} {i}", id_name.as_deref().unwrap_or("id")),
                    None => format!("row {}", r + 1),
                };
                writeln!(
                    out,
                    "{who}: probability {:.4} (log-odds {:.4} = base {:.4} + contributions; {})",
                    e.probability, e.log_odds, e.base_log_odds, e.model
                )?;
                for c in e.contributions.iter().take(top) {
                    let value = c.value.as_deref().map_or("(absent)".to_string(), |v| {
                        if is_missing(v) {
                            "(missing)".to_string()
                        } else {
                            v.to_string()
                        }
                    });
                    writeln!(out, "  {:+.4}  {} = {}", c.contribution, c.feature, value)?;
                }
                for g in &e.gaps {
                    let why = match &g.gap {
                        Gap::ColumnAbsent => "column absent from the input".to_string(),
                        Gap::Missing => "no value".to_string(),
                        Gap::UnknownCategory { value } => {
                            format!("category {value:?} not seen in training")
                        }
                    };
                    writeln!(
                        out,
                        "  missing: {} ({why}; what the model learned for missing values was used)",
                        g.feature
                    )?;
                }
            }
            out.flush()?;
            Ok(())
        }
    }
}

fn train(args: TrainArgs) -> Result<()> {
    let TaskArg::Classification = args.task;
    let table = read_table(&args.input)?;
    let mut opts = TrainOptions::new(&args.label);
    opts.id_column = args.id.clone();
    opts.positive = args.positive.clone();
    opts.holdout = args.holdout;
    if let Some(v) = args.iterations {
        opts.params.iterations = v;
    }
    if let Some(v) = args.learning_rate {
        opts.params.learning_rate = v;
    }
    if let Some(v) = args.max_depth {
        opts.params.max_depth = v;
    }
    if let Some(v) = args.seed {
        opts.params.seed = v;
    }
    let started = Instant::now();
    let model = Classifier::train(&table, &opts).map_err(coded)?;
    let seconds = started.elapsed().as_secs_f64();
    model.save(&args.output).map_err(coded)?;
    let t = &model.training;
    if args.json {
        let mut v = serde_json::to_value(t)?;
        v["training_seconds"] = seconds.into();
        v["output"] = args.output.display().to_string().into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "trained {} on {} rows ({} positive, label {:?} = {:?}): linear part{} and {} trees{}, chosen by {}-fold cross-validation{}",
            model.model,
            t.rows,
            t.positives,
            model.label,
            model.positive_label,
            if model.linear.is_some() { "" } else { " (none)" },
            t.trees,
            t.selection
                .as_ref()
                .filter(|s| s.trees > 0)
                .map_or(String::new(), |s| format!(" of depth {}", s.depth)),
            t.selection.as_ref().map_or(0, |s| s.folds),
            if t.calibrated { "" } else { " (calibration skipped: it would reverse the ranking)" }
        );
        if let Some(auc) = t.holdout_roc_auc {
            println!("held-out ROC-AUC {auc:.4} (out of fold; optimistic: those predictions also chose the model and calibration)");
        }
        println!(
            "training took {seconds:.3} s; model written to {}",
            args.output.display()
        );
    }
    Ok(())
}

pub fn run_clv(command: ClvCommand) -> Result<()> {
    let ClvCommand::Fit {
        transactions,
        horizon_days,
        observation_end,
        output,
        json,
    } = command
    else {
        bail!("the workspace commands of `rapport clv` run on a store");
    };
    let end = match &observation_end {
        Some(s) => Some(clv::parse_yyyymmdd(s).ok_or_else(|| {
            anyhow!("--observation-end {s:?} is not a date YYYYMMDD [parameter_invalid]")
        })?),
        None => None,
    };
    let tx = clv::read_cdnow(&transactions).map_err(coded)?;
    let started = Instant::now();
    let fit = clv::fit(&tx, end, horizon_days).map_err(coded)?;
    let seconds = started.elapsed().as_secs_f64();
    let bg = fit.bgnbd;
    let gg = fit.gamma_gamma;
    if json {
        let v = serde_json::json!({
            "customers": fit.customers,
            "transactions": fit.transactions,
            "bgnbd": bg,
            "bgnbd_log_likelihood": fit.bgnbd_log_likelihood,
            "gamma_gamma": gg,
            "gamma_gamma_log_likelihood": fit.gamma_gamma_log_likelihood,
            "gamma_gamma_customers": fit.gamma_gamma_customers,
            "horizon_days": fit.horizon_days,
            "fit_seconds": seconds,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        // Parameters go to standard error when the per-customer CSV goes to standard output.
        let mut head: Box<dyn Write> = if output.is_some() {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::io::stderr())
        };
        writeln!(
            head,
            "{} customers, {} transactions (time in days)",
            fit.customers, fit.transactions
        )?;
        writeln!(
            head,
            "BG/NBD       r = {:.6}  alpha = {:.6}  a = {:.6}  b = {:.6}  (log-likelihood {:.3})",
            bg.r, bg.alpha, bg.a, bg.b, fit.bgnbd_log_likelihood
        )?;
        writeln!(
            head,
            "Gamma-Gamma  p = {:.6}  q = {:.6}  v = {:.6}  (log-likelihood {:.3}, {} customers with repeat purchases)",
            gg.p, gg.q, gg.v, fit.gamma_gamma_log_likelihood, fit.gamma_gamma_customers
        )?;
        writeln!(
            head,
            "fitted in {seconds:.2} s; expectations over the next {horizon_days} days"
        )?;
    }
    let sink: Option<Box<dyn Write>> = match (&output, json) {
        (Some(p), _) => Some(Box::new(
            std::fs::File::create(p).map_err(|e| anyhow!("{}: {e}", p.display()))?,
        )),
        (None, false) => Some(Box::new(std::io::stdout().lock())),
        (None, true) => None,
    };
    if let Some(sink) = sink {
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(sink));
        w.write_record([
            "customer",
            "frequency",
            "recency",
            "T",
            "monetary_value",
            "expected_purchases",
            "expected_average_value",
            "expected_value",
        ])?;
        let opt = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.4}"));
        for c in &fit.values {
            let s = &c.summary;
            w.write_record([
                s.customer.clone(),
                s.frequency.to_string(),
                s.recency.to_string(),
                s.t.to_string(),
                format!("{:.4}", s.monetary),
                format!("{:.6}", c.expected_purchases),
                opt(c.expected_average_value),
                opt(c.expected_value),
            ])?;
        }
        w.flush()?;
    }
    Ok(())
}

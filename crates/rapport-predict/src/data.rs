//! Tabular data: reading CSV files, the feature schema a model is trained with, and turning
//! rows into the numbers trees read (with every gap noted, so explanations can say it).

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::PredictError;

/// A CSV file read whole: a header and rows of text, each with its line in the file.
#[derive(Debug, Clone)]
pub struct Table {
    pub path: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub lines: Vec<u64>,
}

impl Table {
    /// Reads a CSV file with a header line. Ragged rows, bad quoting and non-UTF-8 text are
    /// errors naming the line; so are duplicate column names.
    pub fn read(path: &Path) -> Result<Table, PredictError> {
        let file = std::fs::File::open(path).map_err(|e| PredictError::io(path, e))?;
        Self::from_reader(file, &path.display().to_string())
    }

    pub fn from_reader(reader: impl std::io::Read, name: &str) -> Result<Table, PredictError> {
        let csv_err = |message: String| PredictError::Csv {
            path: name.to_string(),
            message,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(reader);
        let headers: Vec<String> = rdr
            .headers()
            .map_err(|e| csv_err(e.to_string()))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        if headers.is_empty() || headers.iter().all(|h| h.is_empty()) {
            return Err(csv_err("the file has no header line".into()));
        }
        let mut seen = HashMap::new();
        for h in &headers {
            if seen.insert(h.clone(), ()).is_some() {
                return Err(csv_err(format!("the column {h:?} appears twice")));
            }
        }
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| csv_err(e.to_string()))?;
            lines.push(rec.position().map(|p| p.line()).unwrap_or(0));
            rows.push(rec.iter().map(|v| v.trim().to_string()).collect());
        }
        Ok(Table {
            path: name.to_string(),
            headers,
            rows,
            lines,
        })
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }

    pub(crate) fn require_column(&self, name: &str) -> Result<usize, PredictError> {
        self.column(name)
            .ok_or_else(|| PredictError::MissingColumn {
                path: self.path.clone(),
                column: name.to_string(),
                available: self.headers.join(", "),
            })
    }
}

/// Whether a cell counts as a missing value.
pub fn is_missing(v: &str) -> bool {
    matches!(
        v,
        "" | "NA" | "N/A" | "na" | "n/a" | "NaN" | "nan" | "null" | "NULL" | "None" | "?"
    )
}

/// One input column of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub name: String,
    #[serde(flatten)]
    pub kind: FeatureKind,
}

/// How a column's text becomes a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeatureKind {
    /// Parsed as a floating-point number.
    Numeric,
    /// Each known category is its position in `categories` (ordered by the training rate of
    /// the positive class, so a tree can separate low from high rates with one threshold);
    /// a category not seen in training counts as missing.
    Categorical { categories: Vec<String> },
}

/// Why a feature of a row had no value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Gap {
    /// The input file has no such column.
    ColumnAbsent,
    /// The cell is empty (or NA, null, ...).
    Missing,
    /// A category the model never saw in training.
    UnknownCategory { value: String },
}

/// Rows turned into numbers, row-major, with the gaps found.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub n_features: usize,
    pub values: Vec<f64>,
    /// Per row, the features without a value and why.
    pub gaps: Vec<Vec<(usize, Gap)>>,
    /// Features whose column the input does not have.
    pub absent: Vec<String>,
}

impl Encoded {
    pub fn rows(&self) -> usize {
        self.gaps.len()
    }

    pub fn row(&self, r: usize) -> &[f64] {
        &self.values[r * self.n_features..(r + 1) * self.n_features]
    }
}

/// Infers the schema from training rows: a column whose every present value is a finite
/// number is numeric, any other is categorical. `positive[r]` orders categories.
pub(crate) fn infer_schema(
    table: &Table,
    columns: &[usize],
    positive: &[bool],
    train_rows: &[usize],
) -> Vec<FeatureSpec> {
    columns
        .iter()
        .map(|&c| {
            let name = table.headers[c].clone();
            let numeric = table.rows.iter().all(|row| {
                let v = &row[c];
                is_missing(v) || v.parse::<f64>().is_ok_and(|x| x.is_finite())
            });
            if numeric {
                return FeatureSpec {
                    name,
                    kind: FeatureKind::Numeric,
                };
            }
            // (positives, count) per category over the training part; categories seen only
            // outside it still get a code, with the overall rate as their prior.
            let mut stats: HashMap<&str, (f64, f64)> = HashMap::new();
            for row in &table.rows {
                if !is_missing(&row[c]) {
                    stats.entry(row[c].as_str()).or_insert((0.0, 0.0));
                }
            }
            let total_pos = train_rows.iter().filter(|&&r| positive[r]).count() as f64;
            let prior = total_pos / train_rows.len().max(1) as f64;
            for &r in train_rows {
                let v = table.rows[r][c].as_str();
                if let Some(s) = stats.get_mut(v) {
                    s.0 += positive[r] as u8 as f64;
                    s.1 += 1.0;
                }
            }
            let mut cats: Vec<(String, f64)> = stats
                .into_iter()
                .map(|(k, (p, n))| (k.to_string(), (p + prior) / (n + 1.0)))
                .collect();
            cats.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            FeatureSpec {
                name,
                kind: FeatureKind::Categorical {
                    categories: cats.into_iter().map(|(k, _)| k).collect(),
                },
            }
        })
        .collect()
}

/// Encodes every row of `table` for `features`. A column the file lacks makes that feature
/// missing in every row (and is listed in `absent`); a numeric column holding text is an error
/// naming the line.
pub fn encode(table: &Table, features: &[FeatureSpec]) -> Result<Encoded, PredictError> {
    let n = features.len();
    let cols: Vec<Option<usize>> = features.iter().map(|f| table.column(&f.name)).collect();
    let lookups: Vec<Option<HashMap<&str, f64>>> = features
        .iter()
        .map(|f| match &f.kind {
            FeatureKind::Numeric => None,
            FeatureKind::Categorical { categories } => Some(
                categories
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.as_str(), i as f64))
                    .collect(),
            ),
        })
        .collect();
    let absent = features
        .iter()
        .zip(&cols)
        .filter(|(_, c)| c.is_none())
        .map(|(f, _)| f.name.clone())
        .collect();
    let mut values = Vec::with_capacity(table.rows.len() * n);
    let mut gaps = Vec::with_capacity(table.rows.len());
    for (r, row) in table.rows.iter().enumerate() {
        let mut row_gaps = Vec::new();
        for f in 0..n {
            let Some(c) = cols[f] else {
                values.push(f64::NAN);
                row_gaps.push((f, Gap::ColumnAbsent));
                continue;
            };
            let v = row[c].as_str();
            if is_missing(v) {
                values.push(f64::NAN);
                row_gaps.push((f, Gap::Missing));
                continue;
            }
            match &lookups[f] {
                None => match v.parse::<f64>() {
                    Ok(x) if x.is_finite() => values.push(x),
                    _ => {
                        return Err(PredictError::InvalidValue {
                            path: table.path.clone(),
                            line: table.lines[r],
                            column: features[f].name.clone(),
                            value: v.to_string(),
                        })
                    }
                },
                Some(map) => match map.get(v) {
                    Some(&code) => values.push(code),
                    None => {
                        values.push(f64::NAN);
                        row_gaps.push((
                            f,
                            Gap::UnknownCategory {
                                value: v.to_string(),
                            },
                        ));
                    }
                },
            }
        }
        gaps.push(row_gaps);
    }
    Ok(Encoded {
        n_features: n,
        values,
        gaps,
        absent,
    })
}

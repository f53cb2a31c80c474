//! The audited rows: which columns mean what, the values rows carry, and a compact columnar
//! [`Dataset`] built row by row with every value checked on the way in.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::FairnessError;

/// An outcome: a class label or a number. Text that reads as a number is a number, as a CSV
/// reader would have it, so `"1"`, `"1.0"` and `1` are the same class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    Text(String),
}

impl Value {
    /// Reads a text cell: a number when it parses as one, text otherwise (trimmed).
    pub fn parse(cell: &str) -> Value {
        match ValueRef::parse(cell) {
            ValueRef::Number(x) => Value::Number(x),
            ValueRef::Text(t) => Value::Text(t.to_owned()),
        }
    }

    fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Number(x) => ValueRef::Number(*x),
            Value::Text(t) => ValueRef::parse(t),
        }
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Number(x)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::parse(s)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(x) => f.write_str(&number_text(*x)),
            Value::Text(t) => f.write_str(t),
        }
    }
}

/// Whole numbers print without a fraction, so class `1.0` shows as `1`.
pub(crate) fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum ValueRef<'a> {
    Number(f64),
    Text(&'a str),
}

impl<'a> ValueRef<'a> {
    pub(crate) fn parse(cell: &'a str) -> ValueRef<'a> {
        let t = cell.trim();
        match t.parse::<f64>() {
            Ok(x) => ValueRef::Number(x),
            Err(_) => ValueRef::Text(t),
        }
    }
}

/// Which input columns the audit reads: the sensitive group columns (one or more), the
/// prediction or decision, and optionally the true outcome (label) and a model score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub groups: Vec<String>,
    pub prediction: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub score: Option<String>,
}

impl Columns {
    /// Columns with predictions only; add a label and score with the fields.
    pub fn new(groups: Vec<String>, prediction: impl Into<String>) -> Self {
        Columns {
            groups,
            prediction: prediction.into(),
            label: None,
            score: None,
        }
    }

    fn check(&self) -> Result<(), FairnessError> {
        if self.groups.is_empty() {
            return Err(FairnessError::NoGroupColumn);
        }
        for (i, g) in self.groups.iter().enumerate() {
            if g.trim().is_empty() {
                return Err(FairnessError::EmptyColumnName);
            }
            if self.groups[..i].contains(g) {
                return Err(FairnessError::DuplicateColumn(g.clone()));
            }
        }
        if self.prediction.trim().is_empty() {
            return Err(FairnessError::EmptyColumnName);
        }
        Ok(())
    }
}

/// One audited row, for callers that hold rows as values (stored decisions, request bodies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// One value per group column, in the order of [`Columns::groups`].
    pub groups: Vec<String>,
    pub prediction: Value,
    #[serde(default)]
    pub label: Option<Value>,
    #[serde(default)]
    pub score: Option<f64>,
}

/// A prediction or label as stored: a number, or an index into the dataset's shared texts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell {
    Number(f64),
    Text(u32),
}

/// The rows of one audit, stored by column, with group values and text outcomes interned.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub(crate) columns: Columns,
    /// Per group column, its distinct values in order of first appearance.
    pub(crate) group_levels: Vec<Vec<String>>,
    /// Per group column, each row's index into `group_levels`.
    pub(crate) group_codes: Vec<Vec<u32>>,
    /// Texts of text outcomes, shared by predictions and labels.
    pub(crate) texts: Vec<String>,
    pub(crate) predictions: Vec<Cell>,
    pub(crate) labels: Option<Vec<Cell>>,
    pub(crate) scores: Option<Vec<f64>>,
}

impl Dataset {
    /// Builds a dataset from rows in one go.
    pub fn from_rows<'a>(
        columns: Columns,
        rows: impl IntoIterator<Item = &'a Row>,
    ) -> Result<Dataset, FairnessError> {
        let mut b = DatasetBuilder::new(columns)?;
        for r in rows {
            b.push(r)?;
        }
        b.finish()
    }

    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    pub fn len(&self) -> usize {
        self.predictions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.predictions.is_empty()
    }

    pub(crate) fn cell_text(&self, cell: Cell) -> String {
        match cell {
            Cell::Number(x) => number_text(x),
            Cell::Text(i) => self.texts[i as usize].clone(),
        }
    }
}

/// Adds rows one at a time, checking each value; [`DatasetBuilder::finish`] gives the
/// [`Dataset`]. Rows are numbered from 1 in errors.
#[derive(Debug)]
pub struct DatasetBuilder {
    data: Dataset,
    group_index: Vec<HashMap<String, u32>>,
    text_index: HashMap<String, u32>,
}

impl DatasetBuilder {
    pub fn new(columns: Columns) -> Result<Self, FairnessError> {
        columns.check()?;
        let k = columns.groups.len();
        let labels = columns.label.as_ref().map(|_| Vec::new());
        let scores = columns.score.as_ref().map(|_| Vec::new());
        Ok(DatasetBuilder {
            data: Dataset {
                columns,
                group_levels: vec![Vec::new(); k],
                group_codes: vec![Vec::new(); k],
                texts: Vec::new(),
                predictions: Vec::new(),
                labels,
                scores,
            },
            group_index: vec![HashMap::new(); k],
            text_index: HashMap::new(),
        })
    }

    /// The number of rows added so far.
    pub fn len(&self) -> usize {
        self.data.predictions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.predictions.is_empty()
    }

    /// Adds a row given as values.
    pub fn push(&mut self, row: &Row) -> Result<(), FairnessError> {
        let groups: Vec<&str> = row.groups.iter().map(String::as_str).collect();
        self.push_parsed(
            &groups,
            Some(row.prediction.as_ref()),
            row.label.as_ref().map(Value::as_ref),
            row.score.map(ValueRef::Number),
        )
    }

    /// Adds a row given as text cells, read the way a CSV file is: numbers where they parse,
    /// `None` or an empty cell for a missing value.
    pub fn push_text(
        &mut self,
        groups: &[&str],
        prediction: &str,
        label: Option<&str>,
        score: Option<&str>,
    ) -> Result<(), FairnessError> {
        self.push_parsed(
            groups,
            cell(prediction),
            label.and_then(cell),
            score.and_then(cell),
        )
    }

    fn push_parsed(
        &mut self,
        groups: &[&str],
        prediction: Option<ValueRef<'_>>,
        label: Option<ValueRef<'_>>,
        score: Option<ValueRef<'_>>,
    ) -> Result<(), FairnessError> {
        let row = self.len() + 1;
        let cols = &self.data.columns;
        if groups.len() != cols.groups.len() {
            return Err(FairnessError::GroupArity {
                row,
                expected: cols.groups.len(),
                got: groups.len(),
            });
        }
        // Check everything before storing anything, so a failed push leaves the builder as it
        // was.
        for (j, g) in groups.iter().enumerate() {
            if g.trim().is_empty() {
                return Err(FairnessError::EmptyGroup {
                    row,
                    column: cols.groups[j].clone(),
                });
            }
        }
        let prediction = outcome(row, &cols.prediction, prediction)?;
        let label = match (&cols.label, label) {
            (Some(c), l) => Some(outcome(row, c, l)?),
            (None, Some(_)) => return Err(FairnessError::Unexpected { row, what: "label" }),
            (None, None) => None,
        };
        let score = match (&cols.score, score) {
            (Some(c), s) => Some(number(row, c, s)?),
            (None, Some(_)) => return Err(FairnessError::Unexpected { row, what: "score" }),
            (None, None) => None,
        };

        for (j, g) in groups.iter().enumerate() {
            let g = g.trim();
            let code = match self.group_index[j].get(g) {
                Some(&c) => c,
                None => {
                    let c = self.data.group_levels[j].len() as u32;
                    self.data.group_levels[j].push(g.to_owned());
                    self.group_index[j].insert(g.to_owned(), c);
                    c
                }
            };
            self.data.group_codes[j].push(code);
        }
        let p = self.intern(prediction);
        self.data.predictions.push(p);
        if let (Some(labels), Some(l)) = (self.data.labels.as_mut(), label) {
            let l = intern(&mut self.data.texts, &mut self.text_index, l);
            labels.push(l);
        }
        if let (Some(scores), Some(s)) = (self.data.scores.as_mut(), score) {
            scores.push(s);
        }
        Ok(())
    }

    fn intern(&mut self, v: ValueRef<'_>) -> Cell {
        intern(&mut self.data.texts, &mut self.text_index, v)
    }

    /// The dataset; an error when no row was added.
    pub fn finish(self) -> Result<Dataset, FairnessError> {
        if self.data.predictions.is_empty() {
            return Err(FairnessError::Empty);
        }
        Ok(self.data)
    }
}

/// A text cell: `None` when empty, else parsed.
fn cell(s: &str) -> Option<ValueRef<'_>> {
    if s.trim().is_empty() {
        None
    } else {
        Some(ValueRef::parse(s))
    }
}

fn intern(texts: &mut Vec<String>, index: &mut HashMap<String, u32>, v: ValueRef<'_>) -> Cell {
    match v {
        ValueRef::Number(x) => Cell::Number(if x == 0.0 { 0.0 } else { x }),
        ValueRef::Text(t) => Cell::Text(match index.get(t) {
            Some(&i) => i,
            None => {
                let i = texts.len() as u32;
                texts.push(t.to_owned());
                index.insert(t.to_owned(), i);
                i
            }
        }),
    }
}

/// A prediction or label: present, and not NaN or infinite when numeric.
fn outcome<'a>(
    row: usize,
    column: &str,
    v: Option<ValueRef<'a>>,
) -> Result<ValueRef<'a>, FairnessError> {
    match v {
        None => Err(FairnessError::Missing {
            row,
            column: column.to_owned(),
        }),
        Some(ValueRef::Number(x)) if x.is_nan() => Err(FairnessError::NotANumber {
            row,
            column: column.to_owned(),
        }),
        Some(ValueRef::Number(x)) if !x.is_finite() => Err(FairnessError::NotNumeric {
            row,
            column: column.to_owned(),
            value: x.to_string(),
        }),
        Some(v) => Ok(v),
    }
}

/// A score: present and a finite number.
fn number(row: usize, column: &str, v: Option<ValueRef<'_>>) -> Result<f64, FairnessError> {
    match outcome(row, column, v)? {
        ValueRef::Number(x) => Ok(x),
        ValueRef::Text(t) => Err(FairnessError::NotNumeric {
            row,
            column: column.to_owned(),
            value: t.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Columns {
        Columns {
            groups: vec!["sex".into(), "age".into()],
            prediction: "approved".into(),
            label: Some("repaid".into()),
            score: Some("score".into()),
        }
    }

    #[test]
    fn text_cells_become_numbers_where_they_parse() {
        assert_eq!(Value::parse(" 1 "), Value::Number(1.0));
        assert_eq!(Value::parse("1.0"), Value::Number(1.0));
        assert_eq!(Value::parse("gold"), Value::Text("gold".into()));
        assert_eq!(Value::Number(1.0).to_string(), "1");
        assert_eq!(Value::Number(2.5).to_string(), "2.5");
    }

    #[test]
    fn bad_cells_name_their_row_and_column() {
        let mut b = DatasetBuilder::new(cols()).unwrap();
        b.push_text(&["F", "18-29"], "1", Some("0"), Some("0.3"))
            .unwrap();
        let e = b
            .push_text(&["F", ""], "1", Some("0"), Some("0.3"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "row 2, column \"age\": the group value is empty; fill in a value (such as \
             \"unknown\") to audit these rows as a group of their own"
        );
        let e = b
            .push_text(&["F", "30"], "NaN", Some("0"), Some("0.3"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "row 2, column \"approved\": NaN is not a usable value"
        );
        let e = b
            .push_text(&["F", "30"], "1", Some(""), Some("0.3"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "row 2, column \"repaid\": the value is missing"
        );
        let e = b
            .push_text(&["F", "30"], "1", Some("1"), Some("high"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "row 2, column \"score\": \"high\" is not a finite number"
        );
        let e = b.push_text(&["F"], "1", Some("1"), None).unwrap_err();
        assert!(matches!(e, FairnessError::GroupArity { row: 2, .. }));
        // Failed pushes stored nothing.
        assert_eq!(b.len(), 1);
        assert_eq!(b.finish().unwrap().group_codes[1].len(), 1);
    }

    #[test]
    fn rows_as_values_build_the_same_dataset_as_text() {
        let c = Columns {
            score: None,
            ..cols()
        };
        let rows = vec![
            Row {
                groups: vec!["F".into(), "a".into()],
                prediction: Value::Number(1.0),
                label: Some(Value::Text("0".into())),
                score: None,
            },
            Row {
                groups: vec!["M".into(), "a".into()],
                prediction: Value::Text("0".into()),
                label: Some(Value::Number(1.0)),
                score: None,
            },
        ];
        let d = Dataset::from_rows(c.clone(), &rows).unwrap();
        assert_eq!(d.predictions, vec![Cell::Number(1.0), Cell::Number(0.0)]);
        assert_eq!(d.group_levels[0], vec!["F", "M"]);
        let e = Dataset::from_rows(
            Columns {
                label: None,
                ..c.clone()
            },
            &rows,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "row 1: a label was given, but the audit has no label column"
        );
        assert!(matches!(
            Dataset::from_rows(c, &[]),
            Err(FairnessError::Empty)
        ));
    }

    #[test]
    fn column_lists_are_checked() {
        let mut c = cols();
        c.groups = vec![];
        assert!(matches!(
            DatasetBuilder::new(c),
            Err(FairnessError::NoGroupColumn)
        ));
        let mut c = cols();
        c.groups = vec!["a".into(), "a".into()];
        assert!(matches!(
            DatasetBuilder::new(c),
            Err(FairnessError::DuplicateColumn(_))
        ));
    }
}

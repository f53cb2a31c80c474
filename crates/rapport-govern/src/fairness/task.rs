//! The kind of audit (binary, multiclass, regression), inferred from the outcomes when not
//! given, and the outcomes encoded for it: class indices or numbers.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::data::{number_text, Cell, Dataset, Value, ValueRef};
use super::error::FairnessError;

/// What the prediction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Two outcomes, one of them positive (selected, approved, offered).
    Binary,
    /// Several classes, each audited one-vs-rest.
    Multiclass,
    /// A quantity.
    Regression,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Binary => "binary",
            TaskKind::Multiclass => "multiclass",
            TaskKind::Regression => "regression",
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "binary" => Ok(TaskKind::Binary),
            "multiclass" => Ok(TaskKind::Multiclass),
            "regression" => Ok(TaskKind::Regression),
            other => Err(format!(
                "unknown task {other:?}: binary, multiclass or regression"
            )),
        }
    }
}

/// Most classes a classification audit takes; more usually means a quantity.
pub const MAX_CLASSES: usize = 256;
/// Whole-number outcomes with more distinct values than this are inferred to be a regression.
pub const MAX_INFERRED_CLASSES: usize = 20;

/// Infers the task: any fractional number (and no text) means regression; otherwise two
/// distinct values mean binary; text, or at most [`MAX_INFERRED_CLASSES`] whole numbers, mean
/// multiclass; more whole numbers mean regression.
pub(crate) fn infer(d: &Dataset) -> TaskKind {
    let cells = || d.predictions.iter().chain(d.labels.iter().flatten());
    let mut any_text = false;
    let mut any_fraction = false;
    for c in cells() {
        match c {
            Cell::Text(_) => any_text = true,
            Cell::Number(x) => any_fraction |= x.fract() != 0.0,
        }
    }
    if any_fraction && !any_text {
        return TaskKind::Regression;
    }
    let mut distinct: Vec<Key> = Vec::new();
    for c in cells() {
        let k = Key::of(*c);
        if !distinct.contains(&k) {
            distinct.push(k);
            if distinct.len() > MAX_INFERRED_CLASSES {
                break;
            }
        }
    }
    match distinct.len() {
        0..=2 => TaskKind::Binary,
        n if any_text || n <= MAX_INFERRED_CLASSES => TaskKind::Multiclass,
        _ => TaskKind::Regression,
    }
}

/// Outcomes ready for counting.
#[derive(Debug, Clone)]
pub(crate) enum Encoded {
    /// Class indices into `names` (sorted: numbers ascending, then texts). For a binary task
    /// there are exactly two classes and the positive one is index 1.
    Classes {
        names: Vec<String>,
        pred: Vec<u16>,
        label: Option<Vec<u16>>,
    },
    Numbers {
        pred: Vec<f64>,
        label: Option<Vec<f64>>,
    },
}

/// A class identity: numbers by value, texts by their interned index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Number(u64),
    Text(u32),
}

impl Key {
    fn of(c: Cell) -> Key {
        match c {
            Cell::Number(x) => Key::Number(x.to_bits()),
            Cell::Text(i) => Key::Text(i),
        }
    }
}

pub(crate) fn encode(
    d: &Dataset,
    task: TaskKind,
    positive: Option<&Value>,
) -> Result<Encoded, FairnessError> {
    match task {
        TaskKind::Regression => encode_numbers(d),
        TaskKind::Multiclass => encode_classes(d, false)
            .map(|(names, pred, label)| Encoded::Classes { names, pred, label }),
        TaskKind::Binary => encode_binary(d, positive),
    }
}

fn encode_numbers(d: &Dataset) -> Result<Encoded, FairnessError> {
    let numbers = |cells: &[Cell], column: &str| -> Result<Vec<f64>, FairnessError> {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| match c {
                Cell::Number(x) => Ok(*x),
                Cell::Text(_) => Err(FairnessError::NotNumeric {
                    row: i + 1,
                    column: column.to_owned(),
                    value: d.cell_text(*c),
                }),
            })
            .collect()
    };
    Ok(Encoded::Numbers {
        pred: numbers(&d.predictions, &d.columns.prediction)?,
        label: match (&d.labels, &d.columns.label) {
            (Some(l), Some(c)) => Some(numbers(l, c)?),
            _ => None,
        },
    })
}

type ClassCodes = (Vec<String>, Vec<u16>, Option<Vec<u16>>);

/// Gives every distinct outcome a class index, sorted; with `binary`, a third distinct value
/// is an error naming where it first appears.
fn encode_classes(d: &Dataset, binary: bool) -> Result<ClassCodes, FairnessError> {
    let mut index: HashMap<Key, u16> = HashMap::new();
    let mut keys: Vec<Cell> = Vec::new();
    let n = d.len();
    let mut pred = Vec::with_capacity(n);
    let mut label = d.labels.as_ref().map(|_| Vec::with_capacity(n));
    for row in 0..n {
        let mut code = |c: Cell, column: &str| -> Result<u16, FairnessError> {
            let k = Key::of(c);
            if let Some(&i) = index.get(&k) {
                return Ok(i);
            }
            if binary && keys.len() == 2 {
                return Err(FairnessError::NotBinary {
                    row: row + 1,
                    column: column.to_owned(),
                    value: d.cell_text(c),
                    seen: [d.cell_text(keys[0]), d.cell_text(keys[1])],
                });
            }
            if keys.len() == MAX_CLASSES {
                return Err(FairnessError::TooManyClasses {
                    classes: MAX_CLASSES + 1,
                    max: MAX_CLASSES,
                });
            }
            let i = keys.len() as u16;
            keys.push(c);
            index.insert(k, i);
            Ok(i)
        };
        pred.push(code(d.predictions[row], &d.columns.prediction)?);
        if let (Some(out), Some(labels), Some(col)) = (&mut label, &d.labels, &d.columns.label) {
            out.push(code(labels[row], col)?);
        }
    }
    // Sort classes: numbers ascending, then texts by their text.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| match (keys[a], keys[b]) {
        (Cell::Number(x), Cell::Number(y)) => x.total_cmp(&y),
        (Cell::Number(_), Cell::Text(_)) => std::cmp::Ordering::Less,
        (Cell::Text(_), Cell::Number(_)) => std::cmp::Ordering::Greater,
        (Cell::Text(x), Cell::Text(y)) => d.texts[x as usize].cmp(&d.texts[y as usize]),
    });
    let mut remap = vec![0u16; keys.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old] = new as u16;
    }
    let names = order.iter().map(|&i| d.cell_text(keys[i])).collect();
    for p in &mut pred {
        *p = remap[*p as usize];
    }
    if let Some(l) = &mut label {
        for x in l.iter_mut() {
            *x = remap[*x as usize];
        }
    }
    Ok((names, pred, label))
}

fn encode_binary(d: &Dataset, positive: Option<&Value>) -> Result<Encoded, FairnessError> {
    let (names, pred, label) = encode_classes(d, true)?;
    let positive_name = match positive {
        Some(v) => positive_text(v),
        None => infer_positive(&names)?,
    };
    let at = names.iter().position(|n| *n == positive_name);
    if at.is_none() && names.len() == 2 {
        return Err(FairnessError::PositiveNotFound {
            positive: positive_name,
            values: names,
        });
    }
    // Two classes, the positive one last; a missing side gets a placeholder name.
    let negative_name = names
        .iter()
        .find(|n| **n != positive_name)
        .cloned()
        .unwrap_or_else(|| format!("not {positive_name}"));
    let is_positive = |c: u16| -> u16 { u16::from(Some(c as usize) == at) };
    Ok(Encoded::Classes {
        names: vec![negative_name, positive_name],
        pred: pred.into_iter().map(is_positive).collect(),
        label: label.map(|l| l.into_iter().map(is_positive).collect()),
    })
}

/// The positive label's text as classes are named (`1.0` names class `1`).
fn positive_text(v: &Value) -> String {
    match v {
        Value::Number(x) => number_text(*x),
        Value::Text(t) => match ValueRef::parse(t) {
            ValueRef::Number(x) => number_text(x),
            ValueRef::Text(t) => t.to_owned(),
        },
    }
}

/// Fairlearn's rule when no positive label is named: values within {0, 1} or {-1, 1} have
/// positive 1. We also take `true` among {true, false}; anything else must be named.
fn infer_positive(names: &[String]) -> Result<String, FairnessError> {
    let within = |set: &[&str]| names.iter().all(|n| set.contains(&n.as_str()));
    if within(&["0", "1"]) || within(&["-1", "1"]) {
        return Ok("1".to_owned());
    }
    for (t, f) in [("true", "false"), ("True", "False"), ("TRUE", "FALSE")] {
        if within(&[t, f]) {
            return Ok(t.to_owned());
        }
    }
    Err(FairnessError::PositiveRequired {
        values: names.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fairness::data::{Columns, DatasetBuilder};

    fn data(pred: &[&str], label: Option<&[&str]>) -> Dataset {
        let mut c = Columns::new(vec!["g".into()], "p");
        if label.is_some() {
            c.label = Some("y".into());
        }
        let mut b = DatasetBuilder::new(c).unwrap();
        for (i, p) in pred.iter().enumerate() {
            b.push_text(&["a"], p, label.map(|l| l[i]), None).unwrap();
        }
        b.finish().unwrap()
    }

    #[test]
    fn the_task_is_inferred_from_the_outcomes() {
        assert_eq!(infer(&data(&["0", "1", "1"], None)), TaskKind::Binary);
        assert_eq!(infer(&data(&["yes", "no"], None)), TaskKind::Binary);
        assert_eq!(
            infer(&data(&["0", "1"], Some(&["1", "2"]))),
            TaskKind::Multiclass
        );
        assert_eq!(
            infer(&data(&["gold", "silver", "bronze"], None)),
            TaskKind::Multiclass
        );
        assert_eq!(infer(&data(&["0.5", "1", "2"], None)), TaskKind::Regression);
        let many: Vec<String> = (0..30).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(infer(&data(&many, None)), TaskKind::Regression);
    }

    #[test]
    fn binary_positive_rules() {
        let d = data(&["-1", "1", "1"], None);
        let Encoded::Classes { names, pred, .. } = encode(&d, TaskKind::Binary, None).unwrap()
        else {
            panic!()
        };
        assert_eq!(names, vec!["-1", "1"]);
        assert_eq!(pred, vec![0, 1, 1]);

        let d = data(&["approve", "deny"], None);
        let e = encode(&d, TaskKind::Binary, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot tell which of \"approve\", \"deny\" is the positive outcome; name it \
             (--positive)"
        );
        let e = encode(&d, TaskKind::Binary, Some(&Value::from("yes"))).unwrap_err();
        assert!(matches!(e, FairnessError::PositiveNotFound { .. }));
        let Encoded::Classes { names, pred, .. } =
            encode(&d, TaskKind::Binary, Some(&Value::from("deny"))).unwrap()
        else {
            panic!()
        };
        assert_eq!(names, vec!["approve", "deny"]);
        assert_eq!(pred, vec![0, 1]);

        // One value only: the other side is a placeholder.
        let d = data(&["0", "0"], None);
        let Encoded::Classes { names, pred, .. } = encode(&d, TaskKind::Binary, None).unwrap()
        else {
            panic!()
        };
        assert_eq!(names, vec!["0", "1"]);
        assert_eq!(pred, vec![0, 0]);
        let d = data(&["true", "true"], None);
        let Encoded::Classes { names, .. } = encode(&d, TaskKind::Binary, None).unwrap() else {
            panic!()
        };
        assert_eq!(names, vec!["not true", "true"]);
    }

    #[test]
    fn a_third_value_in_a_binary_task_names_its_row() {
        let d = data(&["0", "1", "1"], Some(&["1", "0", "2"]));
        let e = encode(&d, TaskKind::Binary, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "row 3, column \"y\": \"2\" is a third distinct value after \"0\" and \"1\", but \
             a binary audit takes two (use the multiclass task, or map the values to two)"
        );
    }

    #[test]
    fn regression_needs_numbers() {
        let d = data(&["1.5", "high"], None);
        let e = encode(&d, TaskKind::Regression, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "row 2, column \"p\": \"high\" is not a finite number"
        );
    }

    #[test]
    fn multiclass_classes_are_sorted() {
        let d = data(&["silver", "gold", "10", "2"], None);
        let Encoded::Classes { names, pred, .. } = encode(&d, TaskKind::Multiclass, None).unwrap()
        else {
            panic!()
        };
        assert_eq!(names, vec!["2", "10", "gold", "silver"]);
        assert_eq!(pred, vec![3, 2, 1, 0]);
    }
}

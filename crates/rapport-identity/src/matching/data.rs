//! Records to match: a table of string values with a unique id per record, stored by column
//! with every distinct value kept once (a million records of a few thousand first names hold
//! each name once and a 4-byte code per record).

use std::collections::HashMap;

use foldhash::fast::RandomState;
use rayon::prelude::*;

use crate::error::IdentityError;

/// One record: its id and one optional value per column of its dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub values: Vec<Option<String>>,
}

/// Code of a null value in a [`Column`].
pub(crate) const NULL: u32 = u32::MAX;

/// One column: a code per record into the column's distinct values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Column {
    pub codes: Vec<u32>,
    pub values: Vec<Box<str>>,
}

impl Column {
    pub fn get(&self, record: usize) -> Option<&str> {
        match self.codes.get(record) {
            Some(&c) if c != NULL => Some(&self.values[c as usize]),
            _ => None,
        }
    }
}

/// Builds a [`Dataset`] row by row, checking each row as it comes.
#[derive(Debug)]
pub struct DatasetBuilder {
    name: String,
    columns: Vec<String>,
    ids: Vec<Box<str>>,
    seen: HashMap<Box<str>, u32, RandomState>,
    /// Per column, the non-null values as they came, end to end; `codes` meanwhile number
    /// them in order of arrival. [`DatasetBuilder::finish`] keeps each distinct value once,
    /// all columns at the same time.
    cols: Vec<Column>,
    pending: Vec<Pending>,
}

/// A column's non-null values before they are deduplicated.
#[derive(Debug, Clone, Default)]
struct Pending {
    text: String,
    /// End of each value in `text`.
    ends: Vec<usize>,
}

impl Pending {
    fn value(&self, k: usize) -> &str {
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        &self.text[start..self.ends[k]]
    }

    /// Distinct values in order of first appearance, and the code of every pending value.
    fn intern(&self) -> (Vec<Box<str>>, Vec<u32>) {
        let mut lookup: HashMap<&str, u32, RandomState> = HashMap::default();
        let mut values: Vec<Box<str>> = Vec::new();
        let codes = (0..self.ends.len())
            .map(|k| {
                let v = self.value(k);
                *lookup.entry(v).or_insert_with(|| {
                    values.push(v.into());
                    (values.len() - 1) as u32
                })
            })
            .collect();
        (values, codes)
    }
}

impl DatasetBuilder {
    pub fn new(name: impl Into<String>, columns: Vec<String>) -> Self {
        let n = columns.len();
        Self {
            name: name.into(),
            columns,
            ids: Vec::new(),
            seen: HashMap::default(),
            cols: vec![Column::default(); n],
            pending: vec![Pending::default(); n],
        }
    }

    /// Adds a record; blank values become null. Refuses a repeated id or a row whose
    /// length differs from the columns'.
    pub fn push<'a>(
        &mut self,
        id: &str,
        values: impl ExactSizeIterator<Item = Option<&'a str>>,
    ) -> Result<(), IdentityError> {
        if values.len() != self.columns.len() {
            return Err(IdentityError::Csv {
                path: self.name.clone(),
                message: format!(
                    "record {:?} has {} values for {} columns",
                    id,
                    values.len(),
                    self.columns.len()
                ),
            });
        }
        let next = self.ids.len() as u32;
        match self.seen.entry(id.into()) {
            std::collections::hash_map::Entry::Occupied(_) => {
                return Err(IdentityError::DuplicateId {
                    path: self.name.clone(),
                    id: id.to_owned(),
                    lines: None,
                });
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(next);
            }
        }
        self.ids.push(id.into());
        for ((col, pending), v) in self.cols.iter_mut().zip(&mut self.pending).zip(values) {
            let code = match v {
                Some(v) if !v.trim().is_empty() => {
                    pending.text.push_str(v);
                    pending.ends.push(pending.text.len());
                    (pending.ends.len() - 1) as u32
                }
                _ => NULL,
            };
            col.codes.push(code);
        }
        Ok(())
    }

    /// Makes room for about `rows` more records holding about `bytes` of text, so a large
    /// file is read without growing (and copying, and touching fresh memory for) every buffer
    /// many times over.
    pub fn reserve(&mut self, rows: usize, bytes: usize) {
        self.ids.reserve(rows);
        self.seen.reserve(rows);
        let per_column = bytes / self.columns.len().max(1);
        for (col, pending) in self.cols.iter_mut().zip(&mut self.pending) {
            col.codes.reserve(rows);
            pending.ends.reserve(rows);
            pending.text.reserve(per_column);
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The position of an already added record.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.seen.get(id).map(|&i| i as usize)
    }

    pub fn finish(self) -> Dataset {
        let mut cols = self.cols;
        cols.par_iter_mut()
            .zip(self.pending.into_par_iter())
            .for_each(|(col, pending)| {
                let (values, codes) = pending.intern();
                drop(pending);
                for c in &mut col.codes {
                    if *c != NULL {
                        *c = codes[*c as usize];
                    }
                }
                col.values = values;
            });
        Dataset {
            name: self.name,
            columns: self.columns,
            ids: self.ids,
            cols,
        }
    }
}

/// A table of records with unique ids. Empty strings are stored as `None` (null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    name: String,
    columns: Vec<String>,
    ids: Vec<Box<str>>,
    cols: Vec<Column>,
}

impl Dataset {
    /// Builds a dataset, checking that ids are unique and every record has one value per
    /// column. Blank values become null.
    pub fn new(
        name: impl Into<String>,
        columns: Vec<String>,
        records: Vec<Record>,
    ) -> Result<Self, IdentityError> {
        let mut b = DatasetBuilder::new(name, columns);
        for r in &records {
            b.push(&r.id, r.values.iter().map(|v| v.as_deref()))?;
        }
        Ok(b.finish())
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    pub fn column_index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }
    /// The id of record `i`.
    pub fn id(&self, i: usize) -> &str {
        &self.ids[i]
    }
    /// The value of record `i` in column number `c`.
    pub fn value(&self, i: usize, c: usize) -> Option<&str> {
        self.cols.get(c).and_then(|col| col.get(i))
    }
    /// Record `i` as an owned [`Record`].
    pub fn record(&self, i: usize) -> Record {
        Record {
            id: self.ids[i].to_string(),
            values: (0..self.columns.len())
                .map(|c| self.value(i, c).map(str::to_owned))
                .collect(),
        }
    }
    /// Every record, owned (for small tables and tests).
    pub fn records(&self) -> Vec<Record> {
        (0..self.len()).map(|i| self.record(i)).collect()
    }

    /// The value of `column` for every record (`None` where this dataset lacks the column).
    pub(crate) fn column_values(&self, column: &str) -> Vec<Option<&str>> {
        match self.column_index(column) {
            Some(c) => (0..self.len()).map(|i| self.value(i, c)).collect(),
            None => vec![None; self.len()],
        }
    }

    /// The stored column, if the dataset has it.
    pub(crate) fn column(&self, column: &str) -> Option<&Column> {
        self.column_index(column).map(|c| &self.cols[c])
    }

    /// Stacks two datasets (for deduplicating their union), prefixing ids so they stay
    /// unique. Columns are the union, in `self`'s order then `other`'s new ones.
    pub fn union(&self, other: &Dataset, prefixes: (&str, &str)) -> Result<Dataset, IdentityError> {
        let mut columns = self.columns.clone();
        for c in &other.columns {
            if !columns.contains(c) {
                columns.push(c.clone());
            }
        }
        let mut b = DatasetBuilder::new(format!("{}+{}", self.name, other.name), columns.clone());
        for (ds, prefix) in [(self, prefixes.0), (other, prefixes.1)] {
            let map: Vec<Option<usize>> = columns.iter().map(|c| ds.column_index(c)).collect();
            for i in 0..ds.len() {
                let id = format!("{prefix}{}", ds.id(i));
                b.push(&id, map.iter().map(|c| c.and_then(|c| ds.value(i, c))))?;
            }
        }
        Ok(b.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, v: &[&str]) -> Record {
        Record {
            id: id.into(),
            values: v.iter().map(|s| Some((*s).to_owned())).collect(),
        }
    }

    #[test]
    fn duplicate_ids_and_ragged_rows_are_refused() {
        let cols = vec!["a".to_owned()];
        assert!(Dataset::new("t", cols.clone(), vec![rec("1", &["x"]), rec("1", &["y"])]).is_err());
        assert!(Dataset::new("t", cols.clone(), vec![rec("1", &["x", "y"])]).is_err());
        let d = Dataset::new("t", cols, vec![rec("1", &["  "])]).expect("valid");
        assert_eq!(d.records()[0].values[0], None);
    }

    #[test]
    fn union_prefixes_ids_and_merges_columns() {
        let a = Dataset::new("a", vec!["x".into()], vec![rec("1", &["p"])]).expect("a");
        let b = Dataset::new(
            "b",
            vec!["y".into(), "x".into()],
            vec![rec("1", &["q", "r"])],
        )
        .expect("b");
        let u = a.union(&b, ("a:", "b:")).expect("union");
        assert_eq!(u.columns(), ["x", "y"]);
        assert_eq!(u.id(1), "b:1");
        assert_eq!(
            u.records()[1].values,
            vec![Some("r".into()), Some("q".into())]
        );
    }
}

//! Records to match: a table of string values with a unique id per record.

use std::collections::HashSet;

use crate::error::IdentityError;

/// One record: its id and one optional value per column of its dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub values: Vec<Option<String>>,
}

/// A table of records with unique ids. Empty strings are stored as `None` (null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    name: String,
    columns: Vec<String>,
    records: Vec<Record>,
}

impl Dataset {
    /// Builds a dataset, checking that ids are unique and every record has one value per
    /// column. Blank values become null.
    pub fn new(
        name: impl Into<String>,
        columns: Vec<String>,
        records: Vec<Record>,
    ) -> Result<Self, IdentityError> {
        let name = name.into();
        let mut seen = HashSet::new();
        let mut clean = Vec::with_capacity(records.len());
        for mut r in records {
            if !seen.insert(r.id.clone()) {
                return Err(IdentityError::DuplicateId {
                    path: name.clone(),
                    id: r.id,
                });
            }
            if r.values.len() != columns.len() {
                return Err(IdentityError::Csv {
                    path: name.clone(),
                    message: format!(
                        "record {:?} has {} values for {} columns",
                        r.id,
                        r.values.len(),
                        columns.len()
                    ),
                });
            }
            for v in &mut r.values {
                if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                    *v = None;
                }
            }
            clean.push(r);
        }
        Ok(Self {
            name,
            columns,
            records: clean,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
    pub fn records(&self) -> &[Record] {
        &self.records
    }
    pub fn len(&self) -> usize {
        self.records.len()
    }
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    pub fn column_index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// The value of `column` for every record, aligned to another dataset's column order
    /// (`None` where this dataset lacks the column).
    pub(crate) fn column_values(&self, column: &str) -> Vec<Option<&str>> {
        match self.column_index(column) {
            Some(i) => self
                .records
                .iter()
                .map(|r| r.values.get(i).and_then(|v| v.as_deref()))
                .collect(),
            None => vec![None; self.records.len()],
        }
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
        let mut records = Vec::with_capacity(self.len() + other.len());
        for (ds, prefix) in [(self, prefixes.0), (other, prefixes.1)] {
            for r in &ds.records {
                let values = columns
                    .iter()
                    .map(|c| ds.column_index(c).and_then(|i| r.values[i].clone()))
                    .collect();
                records.push(Record {
                    id: format!("{prefix}{}", r.id),
                    values,
                });
            }
        }
        Dataset::new(format!("{}+{}", self.name, other.name), columns, records)
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
        assert_eq!(u.records()[1].id, "b:1");
        assert_eq!(
            u.records()[1].values,
            vec![Some("r".into()), Some("q".into())]
        );
    }
}

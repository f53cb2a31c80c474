//! Reading a [`Dataset`] from CSV with a header row. The only reader here that touches bytes;
//! callers open files or streams themselves.

use std::io::Read;

use super::data::{Columns, Dataset, DatasetBuilder};
use super::error::FairnessError;

/// Reads the named columns of a CSV file with a header row; other columns are ignored.
/// Header names are matched after trimming spaces.
pub fn read_csv(reader: impl Read, columns: &Columns) -> Result<Dataset, FairnessError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .has_headers(true)
        .from_reader(reader);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| csv_error(0, &e))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let at = |name: &str| -> Result<usize, FairnessError> {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| FairnessError::UnknownColumn {
                column: name.to_owned(),
                available: headers.clone(),
            })
    };
    let group_at = columns
        .groups
        .iter()
        .map(|g| at(g))
        .collect::<Result<Vec<_>, _>>()?;
    let prediction_at = at(&columns.prediction)?;
    let label_at = columns.label.as_deref().map(at).transpose()?;
    let score_at = columns.score.as_deref().map(at).transpose()?;

    let mut builder = DatasetBuilder::new(columns.clone())?;
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(builder.len(), &e)),
        }
        let groups: Vec<&str> = group_at.iter().map(|&i| &record[i]).collect();
        builder.push_text(
            &groups,
            &record[prediction_at],
            label_at.map(|i| &record[i]),
            score_at.map(|i| &record[i]),
        )?;
    }
    builder.finish()
}

fn csv_error(row: usize, e: &csv::Error) -> FairnessError {
    match e.kind() {
        csv::ErrorKind::Io(io) => FairnessError::Io(std::io::Error::new(io.kind(), io.to_string())),
        _ => FairnessError::Csv {
            row,
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Columns {
        Columns {
            groups: vec!["sex".into()],
            prediction: "approved".into(),
            label: Some("repaid".into()),
            score: None,
        }
    }

    #[test]
    fn reads_the_named_columns() {
        let csv = "id, sex ,approved,repaid\n1,F,1,0\n2,M,0,1\n";
        let d = read_csv(csv.as_bytes(), &columns()).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.group_levels[0], vec!["F", "M"]);
    }

    #[test]
    fn unknown_columns_list_what_is_there() {
        let csv = "id,gender,approved,repaid\n1,F,1,0\n";
        let e = read_csv(csv.as_bytes(), &columns()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown column \"sex\"; the input has \"id\", \"gender\", \"approved\", \"repaid\""
        );
    }

    #[test]
    fn ragged_rows_and_bad_cells_say_where() {
        let csv = "sex,approved,repaid\nF,1,0\nM,0\n";
        let e = read_csv(csv.as_bytes(), &columns()).unwrap_err();
        assert!(e.to_string().starts_with("CSV problem after row 1:"), "{e}");
        let csv = "sex,approved,repaid\nF,1,0\nM,0,nan\n";
        let e = read_csv(csv.as_bytes(), &columns()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "row 2, column \"repaid\": NaN is not a usable value"
        );
    }

    #[test]
    fn a_header_alone_is_empty() {
        let e = read_csv("sex,approved,repaid\n".as_bytes(), &columns()).unwrap_err();
        assert!(matches!(e, FairnessError::Empty));
    }
}

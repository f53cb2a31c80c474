//! CSV input and output for matching: datasets with an id column, label files, and the
//! `pairs.csv` / `clusters.csv` outputs. The CLI calls these; nothing else here touches files.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use crate::error::IdentityError;
use crate::matching::{Dataset, DatasetBuilder, MatchMode, MatchRun, HOUSEHOLD_COLUMN};

fn io_err(path: &Path, source: std::io::Error) -> IdentityError {
    IdentityError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn csv_err(path: &str, e: &csv::Error) -> IdentityError {
    IdentityError::Csv {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Reads a CSV with a header row; `id_column` names the unique record id, every other column
/// becomes a matchable column. Empty cells are nulls.
pub fn read_dataset(path: &Path, id_column: &str) -> Result<Dataset, IdentityError> {
    let mut file = File::open(path).map_err(|e| io_err(path, e))?;
    let hint = size_hint(&mut file).map_err(|e| io_err(path, e))?;
    read_dataset_sized(&path.display().to_string(), file, id_column, hint)
}

/// About how many rows a CSV file holds and its size in bytes, from its length and the lines
/// in its first 64 KiB; the file is left at its start.
fn size_hint(file: &mut File) -> std::io::Result<(usize, usize)> {
    use std::io::{Seek, SeekFrom};
    let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    let mut sample = vec![0u8; len.min(64 << 10)];
    file.read_exact(&mut sample)?;
    file.seek(SeekFrom::Start(0))?;
    let lines = sample.iter().filter(|&&b| b == b'\n').count();
    let rows = sample
        .len()
        .checked_div(lines)
        .map_or(0, |line_len| len / line_len.max(1));
    Ok((rows, len))
}

/// The message for a CSV reading error, with the line it happened on.
fn csv_problem(name: &str, e: &csv::Error) -> IdentityError {
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => {
            let line = pos.as_ref().map_or(0, |p| p.line());
            format!("line {line}: {len} fields where the header has {expected_len}")
        }
        _ => match e.position() {
            Some(p) => format!("line {}: {e}", p.line()),
            None => e.to_string(),
        },
    };
    IdentityError::Csv {
        path: name.to_owned(),
        message,
    }
}

fn field_utf8<'r>(
    name: &str,
    line: u64,
    column: &str,
    bytes: &'r [u8],
) -> Result<&'r str, IdentityError> {
    std::str::from_utf8(bytes).map_err(|e| IdentityError::Csv {
        path: name.to_owned(),
        message: format!(
            "line {line}, column {column:?}: not valid UTF-8 (byte {} of the field); save the file as UTF-8",
            e.valid_up_to() + 1
        ),
    })
}

/// Reads and checks a header row: present, UTF-8, no blank or repeated names.
fn read_header<R: Read>(
    name: &str,
    rdr: &mut csv::Reader<R>,
) -> Result<Vec<String>, IdentityError> {
    let raw = rdr
        .byte_headers()
        .map_err(|e| csv_problem(name, &e))?
        .clone();
    if raw.is_empty() || (raw.len() == 1 && raw[0].iter().all(u8::is_ascii_whitespace)) {
        return Err(IdentityError::EmptyInput(format!(
            "{name} is empty: it needs a header row and at least one record"
        )));
    }
    let mut headers = Vec::with_capacity(raw.len());
    for (i, h) in raw.iter().enumerate() {
        let h = field_utf8(name, 1, &format!("#{}", i + 1), h)?;
        let h = h.trim().trim_start_matches('\u{feff}').trim().to_owned();
        if h.is_empty() {
            return Err(IdentityError::Csv {
                path: name.to_owned(),
                message: format!("line 1: column {} has no name", i + 1),
            });
        }
        if headers.contains(&h) {
            return Err(IdentityError::Csv {
                path: name.to_owned(),
                message: format!("line 1: column {h:?} appears twice"),
            });
        }
        headers.push(h);
    }
    Ok(headers)
}

/// As [`read_dataset`], from any reader; `name` is used in messages. Every problem names
/// its line: a row with more or fewer fields than the header, a field that is not UTF-8, an
/// empty or repeated id.
pub fn read_dataset_from(
    name: &str,
    reader: impl Read,
    id_column: &str,
) -> Result<Dataset, IdentityError> {
    read_dataset_sized(name, reader, id_column, (0, 0))
}

/// [`read_dataset_from`] with room made for `(rows, bytes)` up front.
fn read_dataset_sized(
    name: &str,
    reader: impl Read,
    id_column: &str,
    (rows, bytes): (usize, usize),
) -> Result<Dataset, IdentityError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(reader);
    let headers = read_header(name, &mut rdr)?;
    let id_at = headers.iter().position(|h| h == id_column).ok_or_else(|| {
        IdentityError::MissingColumn {
            path: name.to_owned(),
            column: id_column.to_owned(),
            available: headers.join(", "),
        }
    })?;
    let columns: Vec<String> = headers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != id_at)
        .map(|(_, h)| h.clone())
        .collect();
    let mut builder = DatasetBuilder::new(name, columns.clone());
    builder.reserve(rows, bytes);
    let mut lines: Vec<u64> = Vec::with_capacity(rows);
    let mut row = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_problem(name, &e)),
        }
        let line = row.position().map_or(0, |p| p.line());
        let id = field_utf8(name, line, id_column, &row[id_at])?.trim();
        if id.is_empty() {
            return Err(IdentityError::Csv {
                path: name.to_owned(),
                message: format!("line {line}: the id column {id_column:?} is empty"),
            });
        }
        let mut values: Vec<Option<&str>> = Vec::with_capacity(columns.len());
        for (i, f) in row.iter().enumerate() {
            if i != id_at {
                let col = &headers[i];
                values.push(Some(field_utf8(name, line, col, f)?));
            }
        }
        match builder.push(id, values.iter().copied()) {
            Ok(()) => lines.push(line),
            Err(IdentityError::DuplicateId { path, id, .. }) => {
                let first = builder.position(&id).map(|i| lines[i]);
                return Err(IdentityError::DuplicateId {
                    path,
                    id,
                    lines: first.map(|f| (f, line)),
                });
            }
            Err(e) => return Err(e),
        }
    }
    if builder.is_empty() {
        return Err(IdentityError::EmptyInput(format!(
            "{name} has a header but no records"
        )));
    }
    Ok(builder.finish())
}

/// Labelled truth: matching id pairs, or a cluster id per record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Labels {
    /// `(left_id, right_id)`: the two records are the same entity. In link mode the first id
    /// is from the left table.
    Pairs(Vec<(String, String)>),
    /// `(record_id, cluster_id)`: records sharing a cluster id are one entity (dedupe only).
    Clusters(Vec<(String, String)>),
}

/// Reads labels: a CSV whose header names a `cluster...` column is read as
/// `record_id,cluster_id`; any other as pairs from its first two columns.
pub fn read_labels(path: &Path) -> Result<Labels, IdentityError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    read_labels_from(&path.display().to_string(), file)
}

/// As [`read_labels`], from any reader.
pub fn read_labels_from(name: &str, reader: impl Read) -> Result<Labels, IdentityError> {
    let mut rdr = csv::Reader::from_reader(reader);
    let headers: Vec<String> = read_header(name, &mut rdr)?
        .into_iter()
        .map(|h| h.to_lowercase())
        .collect();
    if headers.len() < 2 {
        return Err(IdentityError::Csv {
            path: name.to_owned(),
            message: "labels need two columns".into(),
        });
    }
    let cluster_at = headers.iter().position(|h| h.contains("cluster"));
    let (a, b) = match cluster_at {
        Some(c) => ((0..headers.len()).find(|i| *i != c).unwrap_or(0), c),
        None => (0, 1),
    };
    let mut rows = Vec::new();
    let mut row = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_problem(name, &e)),
        }
        let line = row.position().map_or(0, |p| p.line());
        let get = |i: usize| -> Result<String, IdentityError> {
            let v = field_utf8(name, line, &headers[i], row.get(i).unwrap_or_default())?.trim();
            if v.is_empty() {
                return Err(IdentityError::Csv {
                    path: name.to_owned(),
                    message: format!("line {line}: column {:?} is empty", headers[i]),
                });
            }
            Ok(v.to_owned())
        };
        rows.push((get(a)?, get(b)?));
    }
    if rows.is_empty() {
        return Err(IdentityError::EmptyInput(format!(
            "{name} has a header but no labels"
        )));
    }
    Ok(match cluster_at {
        Some(_) => Labels::Clusters(rows),
        None => Labels::Pairs(rows),
    })
}

/// Turns labels into pairs of record indices of a run.
pub fn resolve_labels(
    run: &MatchRun,
    labels: &Labels,
) -> Result<Vec<(usize, usize)>, IdentityError> {
    let mut index = std::collections::HashMap::new();
    for i in 0..run.n_records() {
        let r = run.record(i);
        index.insert((r.side, r.id.to_owned()), i);
    }
    let find = |side: Option<&'static str>, id: &str| {
        index
            .get(&(side, id.to_owned()))
            .copied()
            .ok_or_else(|| IdentityError::UnknownLabelRecord(id.to_owned()))
    };
    let sides = match run.mode {
        MatchMode::Dedupe => (None, None),
        MatchMode::Link => (Some("left"), Some("right")),
    };
    match labels {
        Labels::Pairs(pairs) => pairs
            .iter()
            .map(|(a, b)| Ok((find(sides.0, a)?, find(sides.1, b)?)))
            .collect(),
        Labels::Clusters(rows) => {
            if run.mode == MatchMode::Link {
                return Err(IdentityError::EmptyInput(
                    "cluster labels are for dedupe; give link labels as id pairs".into(),
                ));
            }
            let mut groups: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
            for (id, cluster) in rows {
                groups
                    .entry(cluster.as_str())
                    .or_default()
                    .push(find(None, id)?);
            }
            let mut pairs = Vec::new();
            for members in groups.values() {
                for (i, &a) in members.iter().enumerate() {
                    pairs.extend(members[i + 1..].iter().map(|&b| (a, b)));
                }
            }
            Ok(pairs)
        }
    }
}

/// Writes `left_id,right_id,match_probability,match_weight` then `<column>_level` and
/// `<column>_weight` per comparison, for pairs at or above `min_probability`, best first. In
/// link mode `left_id` is always from the left table.
pub fn write_pairs(
    path: &Path,
    run: &MatchRun,
    min_probability: f64,
) -> Result<usize, IdentityError> {
    let mut n = 0;
    write_atomically(path, |w| {
        n = write_pairs_to(&path.display().to_string(), w, run, min_probability)?;
        Ok(())
    })?;
    Ok(n)
}

/// As [`write_pairs`], to any writer.
pub fn write_pairs_to(
    name: &str,
    writer: impl Write,
    run: &MatchRun,
    min_probability: f64,
) -> Result<usize, IdentityError> {
    let mut w = csv::Writer::from_writer(writer);
    let mut header = vec![
        "left_id".to_owned(),
        "right_id".to_owned(),
        "match_probability".to_owned(),
        "match_weight".to_owned(),
    ];
    for c in &run.model.comparisons {
        header.push(format!("{}_level", c.column));
        header.push(format!("{}_weight", c.column));
    }
    if run.model.household.is_some() {
        header.push(format!("{HOUSEHOLD_COLUMN}_level"));
        header.push(format!("{HOUSEHOLD_COLUMN}_weight"));
    }
    w.write_record(&header).map_err(|e| csv_err(name, &e))?;
    let mut pairs: Vec<_> = run.link_indices(min_probability).collect();
    pairs.sort_by(|&a, &b| run.pair_weight(b).2.total_cmp(&run.pair_weight(a).2));
    let pairs: Vec<_> = pairs.into_iter().map(|i| run.pair(i)).collect();
    for p in &pairs {
        let mut row = vec![
            run.record(p.left).id.to_owned(),
            run.record(p.right).id.to_owned(),
            format!("{:.6}", p.match_probability),
            format!("{:.4}", p.match_weight),
        ];
        for f in run.explain(p) {
            row.push(f.level);
            row.push(format!("{:.4}", f.log2_bayes_factor));
        }
        w.write_record(&row).map_err(|e| csv_err(name, &e))?;
    }
    w.flush().map_err(|e| IdentityError::Io {
        path: name.to_owned(),
        source: e,
    })?;
    Ok(pairs.len())
}

/// Writes `record_id,cluster_id` (plus `source` = left/right in link mode) for every record.
pub fn write_clusters(
    path: &Path,
    run: &MatchRun,
    clusters: &[usize],
) -> Result<(), IdentityError> {
    write_atomically(path, |w| {
        write_clusters_to(&path.display().to_string(), w, run, clusters)?;
        Ok(())
    })
}

type WriteResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// An output written to a temporary file beside its destination, put in place by
/// [`PendingFile::commit`] and removed if dropped uncommitted, so a failed run leaves
/// nothing behind.
#[derive(Debug)]
pub struct PendingFile {
    tmp: std::path::PathBuf,
    dest: std::path::PathBuf,
    done: bool,
}

impl PendingFile {
    pub fn commit(mut self) -> Result<(), IdentityError> {
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| io_err(&self.dest, e))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes an output to a temporary file next to `path`; see [`PendingFile`].
pub fn write_pending(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<File>) -> WriteResult,
) -> Result<PendingFile, IdentityError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let tmp = path.with_file_name(format!(".{file_name}.{}.partial", std::process::id()));
    let file = File::create(&tmp).map_err(|e| io_err(path, e))?;
    let pending = PendingFile {
        tmp,
        dest: path.to_owned(),
        done: false,
    };
    let mut w = std::io::BufWriter::new(file);
    let result = f(&mut w).and_then(|()| w.flush().map_err(Into::into));
    match result {
        Ok(()) => Ok(pending),
        Err(e) => Err(IdentityError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// Writes an output all at once or not at all.
pub fn write_atomically(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<File>) -> WriteResult,
) -> Result<(), IdentityError> {
    write_pending(path, f)?.commit()
}

/// Writes a synthetic population as `records.csv` (see
/// [`crate::matching::synthetic::COLUMNS`]) and `truth.csv` (`record_id,cluster_id`) into
/// `dir`, creating it; returns a one-line summary.
pub fn write_population(
    pop: &crate::matching::synthetic::Population,
    dir: &Path,
) -> Result<String, IdentityError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let records = write_pending(&dir.join("records.csv"), |w| {
        let mut w = csv::Writer::from_writer(w);
        w.write_record(crate::matching::synthetic::COLUMNS)?;
        for (id, fields) in &pop.records {
            w.write_field(id)?;
            for f in fields {
                w.write_field(f.as_deref().unwrap_or(""))?;
            }
            w.write_record(None::<&[u8]>)?;
        }
        w.flush()?;
        Ok(())
    })?;
    let truth = write_pending(&dir.join("truth.csv"), |w| {
        let mut w = csv::Writer::from_writer(w);
        w.write_record(["record_id", "cluster_id"])?;
        for ((id, _), e) in pop.records.iter().zip(&pop.entity) {
            w.write_record([id.as_str(), &format!("e{e}")])?;
        }
        w.flush()?;
        Ok(())
    })?;
    records.commit()?;
    truth.commit()?;
    let entities = pop.entity.iter().max().map_or(0, |m| m + 1);
    let mut sizes = vec![0usize; entities];
    for e in &pop.entity {
        sizes[*e] += 1;
    }
    let pairs: usize = sizes.iter().map(|s| s * s.saturating_sub(1) / 2).sum();
    Ok(format!(
        "wrote {} records of {entities} people ({pairs} true duplicate pairs) to {}",
        pop.records.len(),
        dir.display()
    ))
}

/// Reads two named columns of a CSV, with the line of each row; every value must be
/// present. Used for `record_id,cluster_id` files.
pub fn read_two_columns(
    path: &Path,
    first: &str,
    second: &str,
) -> Result<Vec<(u64, String, String)>, IdentityError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let mut rdr = csv::Reader::from_reader(file);
    let headers = read_header(&name, &mut rdr)?;
    let find = |c: &str| {
        headers
            .iter()
            .position(|h| h == c)
            .ok_or_else(|| IdentityError::MissingColumn {
                path: name.clone(),
                column: c.to_owned(),
                available: headers.join(", "),
            })
    };
    let (a, b) = (find(first)?, find(second)?);
    let mut rows = Vec::new();
    let mut row = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_problem(&name, &e)),
        }
        let line = row.position().map_or(0, |p| p.line());
        let get = |i: usize| -> Result<String, IdentityError> {
            let v = field_utf8(&name, line, &headers[i], &row[i])?.trim();
            if v.is_empty() {
                return Err(IdentityError::Csv {
                    path: name.clone(),
                    message: format!("line {line}: column {:?} is empty", headers[i]),
                });
            }
            Ok(v.to_owned())
        };
        rows.push((line, get(a)?, get(b)?));
    }
    if rows.is_empty() {
        return Err(IdentityError::EmptyInput(format!(
            "{name} has a header but no rows"
        )));
    }
    Ok(rows)
}

/// As [`write_clusters`], to any writer.
pub fn write_clusters_to(
    name: &str,
    writer: impl Write,
    run: &MatchRun,
    clusters: &[usize],
) -> Result<(), IdentityError> {
    let mut w = csv::Writer::from_writer(writer);
    let link = run.mode == MatchMode::Link;
    let mut header = vec!["record_id", "cluster_id"];
    if link {
        header.push("source");
    }
    w.write_record(&header).map_err(|e| csv_err(name, &e))?;
    for (i, cluster) in clusters.iter().enumerate() {
        let r = run.record(i);
        let mut row = vec![r.id.to_owned(), cluster.to_string()];
        if let Some(side) = r.side {
            row.push(side.to_owned());
        }
        w.write_record(&row).map_err(|e| csv_err(name, &e))?;
    }
    w.flush().map_err(|e| IdentityError::Io {
        path: name.to_owned(),
        source: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dataset_with_id_column_anywhere() {
        let text = "name,id,city\nAda,1,London\nBob,2,\n";
        let d = read_dataset_from("t", text.as_bytes(), "id").expect("dataset");
        assert_eq!(d.columns(), ["name", "city"]);
        assert_eq!(d.id(1), "2");
        assert_eq!(d.records()[1].values[1], None);
        assert!(matches!(
            read_dataset_from("t", text.as_bytes(), "key"),
            Err(IdentityError::MissingColumn { .. })
        ));
        assert!(read_dataset_from("t", "id,a\n1,x\n1,y\n".as_bytes(), "id").is_err());
        assert!(read_dataset_from("t", "id,a\n".as_bytes(), "id").is_err());
    }

    #[test]
    fn label_formats() {
        let pairs =
            read_labels_from("l", "fodors_id,zagats_id\n534,219\n".as_bytes()).expect("pairs");
        assert_eq!(pairs, Labels::Pairs(vec![("534".into(), "219".into())]));
        let clusters =
            read_labels_from("l", "record_id,cluster_id\n1,a\n2,a\n".as_bytes()).expect("clusters");
        assert!(matches!(clusters, Labels::Clusters(v) if v.len() == 2));
    }
}

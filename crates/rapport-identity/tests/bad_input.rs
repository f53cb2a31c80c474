//! Bad CSV input through the entry points the CLI uses: each problem is refused with a
//! message naming the file and line, and no output file is left behind.

use std::path::{Path, PathBuf};

use rapport_core::error::Coded;
use rapport_identity::matching::{dedupe, link, MatchOptions};

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("rapport-bad-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("dir");
        Self(d)
    }
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }
    fn opts(&self) -> MatchOptions {
        MatchOptions {
            id_column: "id".into(),
            pairs_out: Some(self.0.join("pairs.csv")),
            clusters_out: Some(self.0.join("clusters.csv")),
            ..MatchOptions::default()
        }
    }
    /// Nothing but the inputs: no outputs, no partial files.
    fn only_inputs(&self, inputs: &[&Path]) {
        for e in std::fs::read_dir(&self.0).expect("read dir") {
            let p = e.expect("entry").path();
            assert!(
                inputs.contains(&p.as_path()),
                "left behind: {}",
                p.display()
            );
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

const GOOD: &str =
    "id,name,email\n1,Ada Lovelace,ada@x.io\n2,Ada Lovelace,ada@x.io\n3,Bob Marsh,bob@x.io\n";

#[test]
fn each_bad_file_is_refused_with_its_line_and_nothing_is_written() {
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("empty", b"".to_vec(), "empty_input", "is empty"),
        ("blank", b"\n\n".to_vec(), "empty_input", "is empty"),
        (
            "header only",
            b"id,name\n".to_vec(),
            "empty_input",
            "has a header but no records",
        ),
        (
            "no id column",
            b"key,name\n1,Ada\n".to_vec(),
            "missing_column",
            "column \"id\" not found",
        ),
        (
            "ragged long",
            b"id,name\n1,Ada\n2,Bob,extra\n".to_vec(),
            "invalid_csv",
            "line 3: 3 fields where the header has 2",
        ),
        (
            "ragged short",
            b"id,name,email\n1,Ada,a@x.io\n2,Bob\n".to_vec(),
            "invalid_csv",
            "line 3: 2 fields where the header has 3",
        ),
        (
            "latin-1",
            b"id,name\n1,Ada\n2,Jos\xe9\n".to_vec(),
            "invalid_csv",
            "line 3, column \"name\": not valid UTF-8",
        ),
        (
            "latin-1 header",
            b"id,n\xe4me\n1,Ada\n".to_vec(),
            "invalid_csv",
            "line 1",
        ),
        (
            "utf-16",
            b"\xff\xfei\x00d\x00\n\x00".to_vec(),
            "invalid_csv",
            "not valid UTF-8",
        ),
        (
            "empty id",
            b"id,name\n1,Ada\n,Bob\n".to_vec(),
            "invalid_csv",
            "line 3: the id column \"id\" is empty",
        ),
        (
            "duplicate id",
            b"id,name\n1,Ada\n2,Bob\n1,Cy\n".to_vec(),
            "duplicate_record_id",
            "lines 2 and 4",
        ),
        (
            "duplicate column",
            b"id,name,name\n1,Ada,Ada\n".to_vec(),
            "invalid_csv",
            "line 1: column \"name\" appears twice",
        ),
        (
            "unnamed column",
            b"id,,name\n1,x,Ada\n".to_vec(),
            "invalid_csv",
            "line 1: column 2 has no name",
        ),
    ];
    for (what, bytes, code, message) in cases {
        let dir = Dir::new(&what.replace(' ', "-"));
        let input = dir.file("in.csv", &bytes);
        let err = dedupe(&input, &dir.opts()).expect_err(what);
        assert_eq!(err.code(), code, "{what}: {err}");
        let text = err.to_string();
        assert!(text.contains(message), "{what}: {text}");
        assert!(text.contains("in.csv"), "{what} names the file: {text}");
        dir.only_inputs(&[&input]);
    }
}

#[test]
fn unknown_columns_in_settings_and_bad_labels_are_refused_before_writing() {
    let dir = Dir::new("settings");
    let input = dir.file("in.csv", GOOD.as_bytes());
    let settings = dir.file(
        "s.toml",
        b"blocking_rules = [[\"postcode\"]]\n[[comparisons]]\ncolumn = \"surname\"\nlevels = [{ type = \"exact\" }]\n",
    );
    let mut opts = dir.opts();
    opts.settings = Some(settings.clone());
    let err = dedupe(&input, &opts).expect_err("unknown columns");
    assert_eq!(err.code(), "invalid_match_settings");
    let text = err.to_string();
    assert!(text.contains("\"surname\" is not in the data"), "{text}");
    assert!(text.contains("\"postcode\" is not in the data"), "{text}");
    let unknown_key = dir.file(
        "k.toml",
        b"[[comparisons]]\ncolumn = \"name\"\nlevels = []\ncolour = 1\n",
    );
    opts.settings = Some(unknown_key.clone());
    let err = dedupe(&input, &opts).expect_err("unknown key");
    assert_eq!(err.code(), "invalid_settings_toml");
    assert!(err.to_string().contains("colour"), "{err}");

    // Labels naming a record that is not in the input, or ragged, or empty.
    let mut opts = dir.opts();
    for (body, code, message) in [
        (
            &b"record_id,cluster_id\n1,a\n9,a\n"[..],
            "unknown_label_record",
            "\"9\"",
        ),
        (&b"left,right\n1,2\n3\n"[..], "invalid_csv", "line 3"),
        (&b"left,right\n"[..], "empty_input", "no labels"),
        (
            &b"left,right\n1,\n"[..],
            "invalid_csv",
            "line 2: column \"right\" is empty",
        ),
    ] {
        let labels = dir.file("labels.csv", body);
        opts.labels = Some(labels.clone());
        let err = dedupe(&input, &opts).expect_err("labels");
        assert_eq!(err.code(), code, "{err}");
        assert!(err.to_string().contains(message), "{err}");
        dir.only_inputs(&[&input, &settings, &unknown_key, &labels]);
    }
}

#[test]
fn an_output_that_cannot_be_written_leaves_no_other_output() {
    let dir = Dir::new("outputs");
    let input = dir.file("in.csv", GOOD.as_bytes());
    let mut opts = dir.opts();
    opts.clusters_out = Some(dir.0.join("missing-dir").join("clusters.csv"));
    let err = dedupe(&input, &opts).expect_err("cannot write");
    assert_eq!(err.code(), "io_error", "{err}");
    dir.only_inputs(&[&input]);
    // A good run writes both.
    let report = dedupe(&input, &dir.opts()).expect("good");
    assert_eq!(report.records_left, 3);
    assert!(dir.0.join("pairs.csv").exists() && dir.0.join("clusters.csv").exists());
}

#[test]
fn linking_refuses_a_bad_right_file_by_name() {
    let dir = Dir::new("link");
    let left = dir.file("left.csv", GOOD.as_bytes());
    let right = dir.file("right.csv", b"id,name,email\n1,Ada\n");
    let err = link(&left, &right, &dir.opts()).expect_err("ragged right");
    let text = err.to_string();
    assert!(
        text.contains("right.csv") && text.contains("line 2"),
        "{text}"
    );
    dir.only_inputs(&[&left, &right]);
}

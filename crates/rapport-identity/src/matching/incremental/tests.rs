use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::matching::data::{Dataset, Record};
use crate::matching::settings::MatchSettings;

const FIRST: &[&str] = &[
    "ada", "bob", "cyril", "dora", "edith", "felix", "greta", "hugo", "iris", "jonas", "kira",
    "leon", "mona", "nils", "olga", "piet", "quinn", "rosa", "sven", "tilda",
];
const LAST: &[&str] = &[
    "lovelace", "marsh", "okafor", "petrov", "quist", "romero", "silva", "tanaka", "umber",
    "vogel", "wright", "xu", "yilmaz", "zeller", "abbott", "brandt", "castro", "dietz",
];

fn typo(rng: &mut ChaCha8Rng, s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    let i = rng.gen_range(0..c.len());
    c[i] = (b'a' + rng.gen_range(0..26u8)) as char;
    c.into_iter().collect()
}

/// People with one to three records each (typos, missing emails), and each record's person.
fn population(seed: u64, people: usize) -> (Vec<Record>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut records = Vec::new();
    let mut person = Vec::new();
    for p in 0..people {
        let first = FIRST[rng.gen_range(0..FIRST.len())];
        let last = LAST[rng.gen_range(0..LAST.len())];
        let dob = format!(
            "19{:02}-{:02}-{:02}",
            rng.gen_range(40..99),
            rng.gen_range(1..13),
            rng.gen_range(1..29)
        );
        let email = format!("{first}.{last}{}@example.com", rng.gen_range(1..999));
        for _ in 0..rng.gen_range(1..4) {
            let f = if rng.gen_bool(0.2) {
                typo(&mut rng, first)
            } else {
                first.into()
            };
            let l = if rng.gen_bool(0.2) {
                typo(&mut rng, last)
            } else {
                last.into()
            };
            let e = (!rng.gen_bool(0.3)).then(|| email.clone());
            records.push(Record {
                id: format!("r{}", records.len()),
                values: vec![Some(f), Some(l), Some(dob.clone()), e],
            });
            person.push(p);
        }
    }
    // Shuffle so that a person's records fall on both sides of a split.
    for i in (1..records.len()).rev() {
        let j = rng.gen_range(0..=i);
        records.swap(i, j);
        person.swap(i, j);
    }
    (records, person)
}

fn settings() -> MatchSettings {
    MatchSettings::from_toml(
        r#"
        blocking_rules = [["email"], ["last_name:first2", "dob"], ["first_name", "dob"]]
        [[comparisons]]
        column = "first_name"
        levels = [{ type = "exact" }, { type = "jaro_winkler", min = 0.85 }]
        [[comparisons]]
        column = "last_name"
        levels = [{ type = "exact" }, { type = "jaro_winkler", min = 0.85 }]
        [[comparisons]]
        column = "dob"
        levels = [{ type = "exact" }]
        [[comparisons]]
        column = "email"
        preprocess = "lower"
        levels = [{ type = "exact" }]
        "#,
    )
    .expect("settings")
}

fn columns() -> Vec<String> {
    ["first_name", "last_name", "dob", "email"]
        .iter()
        .map(|c| (*c).to_owned())
        .collect()
}

#[test]
fn adding_records_never_renames_existing_clusters() {
    let (records, person) = population(11, 400);
    let n = records.len();
    let first = n / 2;
    // Cluster the first half from scratch.
    let start = Dataset::new("start", columns(), records[..first].to_vec()).expect("start");
    let run = dedupe_dataset(&start, &settings()).expect("run");
    let mut clusters: Vec<String> = run.clusters(0.9).iter().map(|c| c.to_string()).collect();
    let mut joined_correctly = 0;
    let mut joined = 0;
    let mut fresh = 0;
    // Then add the rest in three batches, each scored against everything clustered so far.
    let batch = (n - first).div_ceil(3);
    let mut upto = first;
    while upto < n {
        let end = (upto + batch).min(n);
        let data = Dataset::new("all", columns(), records[..end].to_vec()).expect("data");
        let run = dedupe_dataset(&data, &settings()).expect("run");
        let result = assign_incremental(&run, &clusters, 0.9);
        assert_eq!(result.clusters.len(), end);
        assert_eq!(
            &result.clusters[..upto],
            &clusters[..],
            "an existing record changed cluster"
        );
        assert!(result.assignments[..upto]
            .iter()
            .all(|a| *a == Assignment::Existing));
        for k in upto..end {
            match result.assignments[k] {
                Assignment::Joined => {
                    joined += 1;
                    // The cluster it joined holds an earlier record of the same person.
                    if (0..upto)
                        .any(|e| clusters[e] == result.clusters[k] && person[e] == person[k])
                    {
                        joined_correctly += 1;
                    }
                }
                Assignment::New => {
                    fresh += 1;
                    assert!(!clusters.contains(&result.clusters[k]), "reused an old id");
                }
                Assignment::Existing => panic!("a new record marked existing"),
            }
        }
        clusters = result.clusters;
        upto = end;
    }
    // Matching still works while ids stay put: most joins go to the right person, and
    // people first seen in a batch get clusters of their own.
    assert!(joined > 20, "joined {joined}");
    assert!(
        joined_correctly * 10 >= joined * 9,
        "{joined_correctly} of {joined}"
    );
    assert!(fresh > 20, "fresh {fresh}");
}

#[test]
fn new_cluster_ids_continue_numbering_or_use_a_prefix() {
    let (records, _) = population(3, 60);
    let data = Dataset::new("all", columns(), records.clone()).expect("data");
    let run = dedupe_dataset(&data, &settings()).expect("run");
    let k = records.len() / 2;
    let numeric: Vec<String> = (0..k).map(|i| (i * 10).to_string()).collect();
    let r = assign_incremental(&run, &numeric, 0.9);
    let max_old = (k - 1) * 10;
    for (c, a) in r.clusters.iter().zip(&r.assignments) {
        if *a == Assignment::New {
            assert!(c.parse::<usize>().expect("numeric") > max_old);
        }
    }
    let named: Vec<String> = (0..k).map(|i| format!("c{i}")).collect();
    let r = assign_incremental(&run, &named, 0.9);
    assert!(r
        .clusters
        .iter()
        .zip(&r.assignments)
        .filter(|(_, a)| **a == Assignment::New)
        .all(|(c, _)| c.starts_with("n-r")));
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn incremental_files_end_to_end_and_bad_cluster_files() {
    let dir = std::env::temp_dir().join(format!("rapport-incr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let old = write(
        &dir,
        "old.csv",
        "id,first_name,last_name,dob,email\n1,Ada,Lovelace,1815-12-10,ada@x.io\n2,Bob,Marsh,1990-01-01,bob@x.io\n3,Cyril,Okafor,1970-05-05,cy@x.io\n",
    );
    let clusters = write(
        &dir,
        "clusters.csv",
        "record_id,cluster_id\n1,A\n2,B\n3,C\n",
    );
    let new = write(
        &dir,
        "new.csv",
        "id,first_name,last_name,dob,email\n4,Ada,Lovelace,1815-12-10,ada@x.io\n5,Dora,Petrov,1980-02-02,dora@x.io\n",
    );
    let out = dir.join("out.csv");
    let mut opts = MatchOptions {
        id_column: "id".into(),
        clusters_out: Some(out.clone()),
        threshold: 0.5,
        ..MatchOptions::default()
    };
    opts.settings = Some(write(&dir, "s.toml", &settings_toml_without_blocking()));
    let report = dedupe_incremental(&old, &clusters, &new, &opts).expect("runs");
    assert_eq!(report.existing_records, 3);
    assert_eq!(report.new_records, 2);
    let text = std::fs::read_to_string(&out).expect("out");
    assert!(
        text.starts_with(
            "record_id,cluster_id,assignment\n1,A,existing\n2,B,existing\n3,C,existing\n"
        ),
        "{text}"
    );
    assert!(text.contains("4,A,joined\n"), "{text}");
    assert!(text.contains("5,n-5,new\n"), "{text}");
    std::fs::remove_file(&out).expect("rm");

    // Bad cluster files: an unknown record, a missing one, a missing column; nothing written.
    for (body, expect) in [
        (
            "record_id,cluster_id\n1,A\n2,B\n3,C\n9,D\n",
            "line 5: record \"9\" is not in",
        ),
        (
            "record_id,cluster_id\n1,A\n2,B\n",
            "existing record \"3\" has no cluster",
        ),
        ("record,cluster_id\n1,A\n", "column \"record_id\" not found"),
        (
            "record_id,cluster_id\n1,A\n1,B\n",
            "line 3: record \"1\" is listed twice",
        ),
        ("", "is empty"),
    ] {
        let bad = write(&dir, "bad.csv", body);
        let err = dedupe_incremental(&old, &bad, &new, &opts).expect_err(body);
        assert!(err.to_string().contains(expect), "{err} / {expect}");
        assert!(!out.exists(), "an output was written after {err}");
    }
    // A new file with other columns is refused.
    let other = write(&dir, "other.csv", "id,name\n7,Ada\n");
    let err = dedupe_incremental(&old, &clusters, &other, &opts).expect_err("columns");
    assert!(
        err.to_string().contains("differ from the existing"),
        "{err}"
    );
    // A new record reusing an existing id is refused.
    let clash = write(
        &dir,
        "clash.csv",
        "id,first_name,last_name,dob,email\n2,Eve,Xu,1999-09-09,eve@x.io\n",
    );
    let err = dedupe_incremental(&old, &clusters, &clash, &opts).expect_err("clash");
    assert!(
        err.to_string().contains("\"2\" appears more than once"),
        "{err}"
    );
    assert!(!out.exists());
    std::fs::remove_dir_all(&dir).ok();
}

fn settings_toml_without_blocking() -> String {
    let mut s = settings();
    s.blocking_rules.clear();
    s.to_toml()
}

use super::*;
use crate::csv_io::{read_dataset_from, write_clusters_to, write_pairs_to};
use crate::matching::settings::infer_settings;
use crate::matching::synthetic::test_dataset;

/// People with typos, swapped formats and a shared common surname; ids 1-4 are one person,
/// 5-6 another, the rest distinct.
const PEOPLE: &str = "\
id,first_name,surname,dob,city,email
1,Jonathan,Smith,1980-04-12,London,jon.smith@example.com
2,Jonathon,Smith,12/04/1980,London,jon.smith@example.com
3,Jonathan,Smyth,1980-04-12,Londn,
4,Jon,Smith,1980-04-12,London,jon.smith@example.com
5,Amelia,Hart,1975-09-30,Leeds,amelia.hart@example.org
6,Amelia,Hart,1975-09-30,Leeds,a.hart@example.org
7,Oliver,Smith,1992-01-01,London,oliver@example.net
8,Olivia,Brown,1988-07-21,Bristol,olivia.b@example.net
9,Harry,Smith,1969-02-14,York,harry@example.com
10,Grace,Jones,2001-11-05,Cardiff,grace@example.com
11,George,Smith,1955-03-03,London,george@example.com
12,Isla,Taylor,1999-12-12,Glasgow,isla@example.com
13,Jack,Wilson,1983-06-06,Belfast,jack@example.com
14,Emily,Smith,1990-10-10,Manchester,emily@example.com
15,Noah,Evans,1979-08-08,Swansea,noah@example.com
16,Poppy,Smith,1994-05-05,London,poppy@example.com
";

fn people() -> Dataset {
    read_dataset_from("people", PEOPLE.as_bytes(), "id").expect("people")
}

#[test]
fn dedupe_finds_the_duplicates_and_explains_them() {
    let data = people();
    let mut settings = infer_settings(&[&data]);
    // Tiny data: block on nothing so every pair is scored.
    settings.blocking_rules.clear();
    let run = dedupe_dataset(&data, &settings).expect("run");
    assert_eq!(run.n_pairs(), 16 * 15 / 2);
    let score = |a: &str, b: &str| {
        let (ia, ib) = (
            run.index_of(None, a).expect("a"),
            run.index_of(None, b).expect("b"),
        );
        run.pairs()
            .find(|p| (p.left, p.right) == (ia.min(ib), ia.max(ib)))
            .expect("pair")
    };
    let same = score("1", "2");
    let different = score("1", "7");
    assert!(same.match_weight > different.match_weight);
    for p in run.pairs() {
        assert!((0.0..=1.0).contains(&p.match_probability));
        let total: f64 =
            run.model.prior_weight() + p.contributions.iter().sum::<f64>() + p.household_adjustment;
        assert!((total - p.match_weight).abs() < 1e-9);
        assert!(p.household_adjustment <= 0.0);
    }
    // People with a family name: the household class is on, and explained as a last entry.
    assert!(run.model.household.is_some());
    let explained = run.explain(&same);
    assert_eq!(explained.len(), settings.comparisons.len() + 1);
    assert_eq!(explained[0].column, "first_name");
    assert_eq!(explained[explained.len() - 1].column, HOUSEHOLD_COLUMN);
    let sum: f64 = explained.iter().map(|f| f.log2_bayes_factor).sum();
    assert!((run.model.prior_weight() + sum - same.match_weight).abs() < 1e-9);
    // Pairs and clusters write with the documented headers.
    let mut out = Vec::new();
    write_pairs_to("mem", &mut out, &run, 0.0).expect("pairs");
    let text = String::from_utf8(out).expect("utf8");
    assert!(text.starts_with("left_id,right_id,match_probability,match_weight,first_name_level"));
    let mut out = Vec::new();
    write_clusters_to("mem", &mut out, &run, &run.clusters(0.5)).expect("clusters");
    assert!(String::from_utf8(out)
        .expect("utf8")
        .starts_with("record_id,cluster_id\n"));
}

#[test]
fn link_mode_only_scores_cross_pairs() {
    let data = people();
    let (left, right): (Vec<_>, Vec<_>) = data
        .records()
        .into_iter()
        .partition(|r| r.id.parse::<u32>().unwrap_or(0) % 2 == 1);
    let l = Dataset::new("l", data.columns().to_vec(), left).expect("l");
    let r = Dataset::new("r", data.columns().to_vec(), right).expect("r");
    let settings = infer_settings(&[&l, &r]);
    let run = link_datasets(&l, &r, &settings).expect("run");
    assert!(run
        .pairs()
        .all(|p| p.left < run.n_left() && p.right >= run.n_left()));
    assert_eq!(run.record(0).side, Some("left"));
    let truth = vec![(
        run.index_of(Some("left"), "1").expect("1"),
        run.index_of(Some("right"), "2").expect("2"),
    )];
    let e = run.evaluate(&truth, 0.5);
    assert_eq!(e.labelled_pairs, 1);
    assert!((0.0..=1.0).contains(&e.bcubed.f1));
}

#[test]
fn needs_two_records() {
    let one = read_dataset_from("one", "id,name\n1,Ada\n".as_bytes(), "id").expect("one");
    let settings = infer_settings(&[&one]);
    assert!(matches!(
        dedupe_dataset(&one, &settings),
        Err(IdentityError::EmptyInput(_))
    ));
}

/// Synthetic people in households (shared address, phone, surname, sometimes an email or a
/// tablet), with the true duplicate pairs as record indices.
fn households(records: usize, seed: u64) -> (Dataset, Vec<(usize, usize)>) {
    let (data, entity) = test_dataset(records, seed);
    let mut by_entity: std::collections::HashMap<usize, Vec<usize>> = Default::default();
    for (i, &e) in entity.iter().enumerate() {
        by_entity.entry(e).or_default().push(i);
    }
    let mut truth = Vec::new();
    for members in by_entity.values() {
        for (k, &a) in members.iter().enumerate() {
            for &b in &members[k + 1..] {
                truth.push((a.min(b), a.max(b)));
            }
        }
    }
    (data, truth)
}

#[test]
fn the_household_class_keeps_family_members_apart() {
    let (data, truth) = households(4000, 21);
    let mut with = infer_settings(&[&data]);
    with.training.u_sample_pairs = 200_000;
    assert!(!with.training.household_columns.is_empty());
    assert!(!with
        .training
        .household_columns
        .contains(&"first_name".to_owned()));
    assert!(!with.training.household_columns.contains(&"dob".to_owned()));
    let mut without = with.clone();
    without.training.household_columns.clear();

    let two = dedupe_dataset(&data, &without).expect("two classes");
    let three = dedupe_dataset(&data, &with).expect("three classes");
    assert!(two.model.household.is_none());
    let hh = three.model.household.as_ref().expect("household class");
    assert!(hh.share > 0.0 && hh.share_candidates < 0.5);
    let (e2, e3) = (two.evaluate(&truth, 0.9), three.evaluate(&truth, 0.9));
    // Households are the two-class model's false positives: the third class removes most of
    // them and loses little recall.
    assert!(
        e3.pairwise.scores.precision > e2.pairwise.scores.precision + 0.02,
        "precision {} vs {}",
        e3.pairwise.scores.precision,
        e2.pairwise.scores.precision
    );
    assert!(
        e3.pairwise.scores.f1 > e2.pairwise.scores.f1,
        "F1 {} vs {}",
        e3.pairwise.scores.f1,
        e2.pairwise.scores.f1
    );
    // A pair of two different people sharing everything but first name and birth date is
    // explained as a household.
    let explained = (0..three.n_pairs())
        .map(|i| three.pair(i))
        .filter(|p| p.household_adjustment <= -1.0)
        .map(|p| three.explain(&p))
        .next()
        .expect("a household pair");
    let last = explained.last().expect("entries");
    assert_eq!(last.column, HOUSEHOLD_COLUMN);
    assert_eq!(last.level, "looks like a household");
}

//! Fairness audits against Fairlearn's own numbers, and their invariants.
//!
//! `fixtures/fairness/expected.json` holds what Fairlearn computed on `data.csv` and on small
//! edge cases (made by `make_fixture.py` in the same folder); every number must match to
//! 1e-9. No Python runs here.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rapport_govern::fairness::{
    read_csv, AuditOptions, BootstrapOptions, Columns, Dataset, DatasetBuilder, GroupingReport,
    Metric, Outcome, Report, Row, TaskKind, Thresholds, Value,
};
use serde_json::Value as Json;

const TOLERANCE: f64 = 1e-9;
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fairness");

fn expected() -> Json {
    let text = std::fs::read_to_string(format!("{FIXTURE}/expected.json")).expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect()
}

/// Compares one number; `None` on our side must be null (NaN) on Fairlearn's.
fn same(what: &str, ours: Option<f64>, theirs: &Json, checked: &mut usize) {
    *checked += 1;
    match (ours, theirs.as_f64()) {
        (None, None) => {}
        (Some(a), Some(b)) if (a - b).abs() <= TOLERANCE => {}
        (a, _) => panic!("{what}: ours {a:?}, Fairlearn {theirs}"),
    }
}

/// Fairlearn's name for a metric of ours, in the fixture's `aggregates`.
fn metric(name: &str) -> Metric {
    match name {
        "true_positive_rate_difference" => Metric::EqualOpportunityDifference,
        "true_positive_rate_ratio" => Metric::EqualOpportunityRatio,
        other => *Metric::ALL
            .iter()
            .find(|m| m.as_str() == other)
            .unwrap_or_else(|| panic!("no metric {other}")),
    }
}

fn audit_case(case: &Json, groups: &[String]) -> Report {
    let task: TaskKind = case["task"].as_str().unwrap().parse().unwrap();
    let positive = case
        .get("positive")
        .and_then(Json::as_f64)
        .map(Value::Number);
    let options = AuditOptions {
        task: Some(task),
        positive: positive.filter(|_| task == TaskKind::Binary),
        bootstrap: None,
    };
    let dataset = if case["source"] == "csv" {
        let columns = Columns {
            groups: groups.to_vec(),
            prediction: case["prediction"].as_str().unwrap().to_owned(),
            label: case["label"].as_str().map(str::to_owned),
            score: case.get("score").and_then(Json::as_str).map(str::to_owned),
        };
        let file = std::fs::File::open(format!("{FIXTURE}/data.csv")).expect("data.csv");
        read_csv(file, &columns).expect("read data.csv")
    } else {
        let rows = &case["rows"];
        let has_label = !rows["label"].is_null();
        let mut columns = Columns::new(groups.to_vec(), "prediction");
        if has_label {
            columns.label = Some("label".into());
        }
        let mut b = DatasetBuilder::new(columns).unwrap();
        for (i, g) in strings(&rows["g"]).into_iter().enumerate() {
            b.push(&Row {
                groups: vec![g],
                prediction: Value::Number(rows["prediction"][i].as_f64().unwrap()),
                label: has_label.then(|| Value::Number(rows["label"][i].as_f64().unwrap())),
                score: None,
            })
            .unwrap();
        }
        b.finish().unwrap()
    };
    dataset.audit(&options).expect("audit")
}

fn check_case(case: &Json, g: &GroupingReport, checked: &mut usize) {
    let name = case["name"].as_str().unwrap();
    let class = match case["task"].as_str().unwrap() {
        "binary" => Some("1".to_owned()),
        "multiclass" => Some(case["class"].as_str().unwrap().to_owned()),
        _ => None,
    };
    let outcome = g
        .outcome(class.as_deref())
        .unwrap_or_else(|| panic!("{name}: no outcome {class:?}"));
    for row in case["by_group"].as_array().unwrap() {
        let key = strings(&row["group"]);
        let at = format!("{name} {key:?}");
        if row["count"].is_null() {
            assert!(g.empty_groups.contains(&key), "{at}: should be empty");
            assert!(g.groups.iter().all(|s| s.group != key), "{at}: listed");
            *checked += 1;
            continue;
        }
        let summary = g.groups.iter().find(|s| s.group == key).expect(&at);
        check_row(&at, outcome, Some(&key), summary.mean_score, row, checked);
    }
    check_row(
        &format!("{name} overall"),
        outcome,
        None,
        g.overall.mean_score,
        &case["overall"],
        checked,
    );
    let aggregates = case["aggregates"].as_object().unwrap();
    assert!(!aggregates.is_empty());
    for (k, v) in aggregates {
        let m = metric(k);
        let ours = outcome
            .aggregate(m)
            .unwrap_or_else(|| panic!("{name}: no {k}"));
        same(&format!("{name} {k}"), ours.value, v, checked);
    }
}

fn check_row(
    at: &str,
    outcome: &Outcome,
    key: Option<&Vec<String>>,
    mean_score: Option<f64>,
    expected: &Json,
    checked: &mut usize,
) {
    let fields = expected.as_object().unwrap();
    let mut ours: BTreeMap<&str, Option<f64>> = BTreeMap::new();
    match outcome {
        Outcome::Class(c) => {
            let r = match key {
                Some(k) => c.groups.iter().find(|r| &r.group == k).expect(at),
                None => &c.overall,
            };
            ours.insert("count", Some(r.count as f64));
            ours.insert("selection_rate", Some(r.selection_rate));
            ours.insert("true_positive_rate", r.true_positive_rate);
            ours.insert("false_positive_rate", r.false_positive_rate);
            ours.insert("false_negative_rate", r.false_negative_rate);
            ours.insert("true_negative_rate", r.true_negative_rate);
            ours.insert("accuracy", r.accuracy);
        }
        Outcome::Regression(reg) => {
            let r = match key {
                Some(k) => reg.groups.iter().find(|r| &r.group == k).expect(at),
                None => &reg.overall,
            };
            ours.insert("count", Some(r.count as f64));
            ours.insert("mean_prediction", Some(r.mean_prediction));
            ours.insert("mean_absolute_error", r.mean_absolute_error);
            ours.insert("root_mean_squared_error", r.root_mean_squared_error);
        }
    }
    ours.insert("mean_score", mean_score);
    for (k, v) in fields {
        if k == "group" {
            continue;
        }
        let mine = *ours
            .get(k.as_str())
            .unwrap_or_else(|| panic!("{at}: we have no {k}"));
        same(&format!("{at} {k}"), mine, v, checked);
    }
}

#[test]
fn every_number_equals_fairlearns() {
    let expected = expected();
    assert!(expected["versions"]["fairlearn"].is_string());
    let mut checked = 0;
    let both = vec!["sex".to_owned(), "age_band".to_owned()];
    for case in expected["cases"].as_array().unwrap() {
        let groups = strings(&case["groups"]);
        // The grouping as audited on its own columns...
        let report = audit_case(case, &groups);
        let cols: Vec<&str> = groups.iter().map(String::as_str).collect();
        check_case(
            case,
            report.grouping(&cols).expect("grouping"),
            &mut checked,
        );
        // ...and as one of the groupings of an audit by both columns.
        if case["source"] == "csv" {
            let report = audit_case(case, &both);
            check_case(
                case,
                report.grouping(&cols).expect("grouping"),
                &mut checked,
            );
        }
    }
    assert!(checked > 1800, "only {checked} numbers compared");
}

#[test]
fn zero_denominators_and_empty_cells_are_noted() {
    let expected = expected();
    let case = &expected["cases"][0];
    let both = vec!["sex".to_owned(), "age_band".to_owned()];
    let report = audit_case(case, &both);
    let text = report.notes.join("\n");
    assert!(
        text.contains("1 combination(s) have no rows (X × 65+)"),
        "{text}"
    );
    assert!(text.contains("no positive labels in X × 18-29"), "{text}");
    assert!(text.contains("no negative labels in X × 30-44"), "{text}");
}

/// The data from the fixture, audited with bootstrap intervals and thresholds.
fn fixture_report(bootstrap: Option<BootstrapOptions>) -> Report {
    let columns = Columns {
        groups: vec!["sex".into(), "age_band".into()],
        prediction: "approved".into(),
        label: Some("repaid".into()),
        score: Some("score".into()),
    };
    let file = std::fs::File::open(format!("{FIXTURE}/data.csv")).unwrap();
    let d = read_csv(file, &columns).unwrap();
    d.audit(&AuditOptions {
        bootstrap,
        ..AuditOptions::default()
    })
    .unwrap()
}

#[test]
fn bootstrap_intervals_are_seeded_and_bracket_the_estimate() {
    let opts = |seed, threads| BootstrapOptions {
        resamples: 200,
        seed,
        confidence: 0.9,
        threads: Some(threads),
    };
    let a = fixture_report(Some(opts(7, 1)));
    let b = fixture_report(Some(opts(7, 3)));
    let c = fixture_report(Some(opts(8, 2)));
    assert_eq!(a, b, "the thread count changed the intervals");
    assert_ne!(a, c, "the seed did not change the intervals");
    let g = a.grouping(&["sex"]).unwrap();
    let dp = g.outcomes[0]
        .aggregate(Metric::DemographicParityDifference)
        .unwrap();
    let i = dp.interval.expect("interval");
    let v = dp.value.unwrap();
    assert!(i.low < v && v < i.high, "{i:?} around {v}");
    assert_eq!(i.resamples, 200);
    // Intervals are the only thing the bootstrap adds.
    let mut plain = a.clone();
    plain.bootstrap = None;
    for g in &mut plain.groupings {
        for o in &mut g.outcomes {
            match o {
                Outcome::Class(c) => c.aggregates.iter_mut().for_each(|a| a.interval = None),
                Outcome::Regression(r) => r.aggregates.iter_mut().for_each(|a| a.interval = None),
            }
        }
    }
    assert_eq!(plain, fixture_report(None));
}

#[test]
fn thresholds_turn_into_violations() {
    let report = fixture_report(None);
    let t = Thresholds::from_toml_str(
        "max_demographic_parity_difference = 0.31\nmin_equalized_odds_ratio = 0.0\n",
    )
    .unwrap();
    let v = t.check(&report);
    // DP difference: by sex 0.300, by age band 0.232, by the intersection 0.561.
    let names: Vec<String> = v.iter().map(|v| v.grouping.join(" × ")).collect();
    assert_eq!(names, vec!["sex × age_band"], "{v:?}");
    assert_eq!(v[0].metric, Metric::DemographicParityDifference);
    assert!(v[0].to_string().starts_with(
        "demographic_parity_difference by sex × age_band (class 1) is 0.5608, above the maximum 0.31"
    ));
    let single = Thresholds {
        scope: rapport_govern::fairness::Scope::Single,
        ..t.clone()
    };
    assert!(single.check(&report).is_empty());
}

#[test]
fn reports_read_back_from_json() {
    let report = fixture_report(Some(BootstrapOptions {
        resamples: 20,
        ..BootstrapOptions::default()
    }));
    let json = serde_json::to_string(&report).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back.groupings.len(), 3);
    assert_eq!(back.notes, report.notes);
    let (a, b) = (&report.groupings[2], &back.groupings[2]);
    assert_eq!(a.groups.len(), b.groups.len());
    assert_eq!(a.empty_groups, b.empty_groups);
    for (x, y) in a.outcomes[0]
        .aggregates()
        .iter()
        .zip(b.outcomes[0].aggregates())
    {
        assert_eq!(x.metric, y.metric);
        assert!((x.value.unwrap() - y.value.unwrap()).abs() < 1e-15);
        assert!(y.interval.is_some());
    }
}

#[test]
fn the_report_reads_as_a_table() {
    let text = fixture_report(None).to_string();
    assert!(text.starts_with(
        "Fairness audit of 4000 rows: binary, positive outcome \"1\"; prediction \"approved\", \
         label \"repaid\", score \"score\""
    ));
    assert!(text.contains("\nBy sex × age_band\n"), "{text}");
    assert!(text.contains("  no rows: X × 65+"), "{text}");
    assert!(text.contains("demographic parity"), "{text}");
}

// ---- invariants ------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Synthetic {
    rows: Vec<(String, String, u8, u8, f64)>,
}

fn synthetic() -> impl Strategy<Value = Synthetic> {
    prop::collection::vec((0..3u8, 0..3u8, 0..2u8, 0..2u8, 0.0..100.0f64), 1..120).prop_map(|v| {
        Synthetic {
            rows: v
                .into_iter()
                .map(|(a, b, p, l, y)| (format!("a{a}"), format!("b{b}"), p, l, y))
                .collect(),
        }
    })
}

fn build(rows: &[(String, String, u8, u8, f64)], groups: &[&str], regression: bool) -> Dataset {
    let columns = Columns {
        groups: groups.iter().map(|s| (*s).to_owned()).collect(),
        prediction: "p".into(),
        label: Some("l".into()),
        score: None,
    };
    let mut b = DatasetBuilder::new(columns).unwrap();
    for (a, bb, p, l, y) in rows {
        let g: Vec<String> = groups
            .iter()
            .map(|c| match *c {
                "a" => a.clone(),
                "b" => bb.clone(),
                _ => "same".to_owned(),
            })
            .collect();
        let (pred, label) = if regression {
            (Value::Number(*y), Value::Number(*y * 0.9 + f64::from(*l)))
        } else {
            (Value::Number(f64::from(*p)), Value::Number(f64::from(*l)))
        };
        b.push(&Row {
            groups: g,
            prediction: pred,
            label: Some(label),
            score: None,
        })
        .unwrap();
    }
    b.finish().unwrap()
}

fn binary() -> AuditOptions {
    AuditOptions {
        task: Some(TaskKind::Binary),
        positive: Some(Value::Number(1.0)),
        bootstrap: None,
    }
}

fn regression() -> AuditOptions {
    AuditOptions {
        task: Some(TaskKind::Regression),
        ..AuditOptions::default()
    }
}

fn aggregates(g: &GroupingReport) -> Vec<(Metric, Option<f64>)> {
    g.outcomes
        .iter()
        .flat_map(|o| o.aggregates().iter().map(|a| (a.metric, a.value)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn classification_differences_and_ratios_are_within_0_and_1(s in synthetic()) {
        let report = build(&s.rows, &["a", "b"], false).audit(&binary()).unwrap();
        for g in &report.groupings {
            for (m, v) in aggregates(g) {
                if let Some(v) = v {
                    prop_assert!((0.0..=1.0).contains(&v), "{} = {}", m.as_str(), v);
                }
            }
        }
    }

    #[test]
    fn perfect_parity_gives_difference_0_and_ratio_1(
        block in prop::collection::vec((0..2u8, 0..2u8), 1..20),
        groups in 1..5usize,
    ) {
        // Every group gets the same block of (prediction, label) rows.
        let rows: Vec<_> = (0..groups)
            .flat_map(|g| block.iter().map(move |&(p, l)| (format!("a{g}"), "b".to_owned(), p, l, 0.0)))
            .collect();
        let report = build(&rows, &["a"], false).audit(&binary()).unwrap();
        for (m, v) in aggregates(&report.groupings[0]) {
            if m.is_ratio() {
                // Undefined only when every group's rate is 0.
                prop_assert!(v.is_none() || v == Some(1.0), "{} = {:?}", m.as_str(), v);
            } else {
                prop_assert_eq!(v, Some(0.0), "{}", m.as_str());
            }
        }
    }

    #[test]
    fn permuting_rows_changes_nothing(s in synthetic(), seed in any::<u64>()) {
        let mut shuffled = s.rows.clone();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let a = build(&s.rows, &["a", "b"], false).audit(&binary()).unwrap();
        let b = build(&shuffled, &["a", "b"], false).audit(&binary()).unwrap();
        prop_assert_eq!(&a, &b);
        // Sums of floats may round differently in another order.
        let a = build(&s.rows, &["a", "b"], true).audit(&regression()).unwrap();
        let b = build(&shuffled, &["a", "b"], true).audit(&regression()).unwrap();
        for (ga, gb) in a.groupings.iter().zip(&b.groupings) {
            for ((ma, va), (mb, vb)) in aggregates(ga).into_iter().zip(aggregates(gb)) {
                prop_assert_eq!(ma, mb);
                match (va, vb) {
                    (Some(x), Some(y)) => prop_assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0)),
                    (x, y) => prop_assert_eq!(x, y),
                }
            }
        }
    }

    #[test]
    fn intersecting_with_one_group_is_the_group_alone(s in synthetic()) {
        for (task, regression) in [(binary(), false), (self::regression(), true)] {
            let alone = build(&s.rows, &["a"], regression).audit(&task).unwrap();
            let with = build(&s.rows, &["a", "constant"], regression).audit(&task).unwrap();
            let a = &alone.groupings[0];
            let i = with.grouping(&["a", "constant"]).unwrap();
            prop_assert_eq!(aggregates(a), aggregates(i));
            prop_assert_eq!(a.groups.len(), i.groups.len());
            for (x, y) in a.groups.iter().zip(&i.groups) {
                prop_assert_eq!(x.count, y.count);
                prop_assert_eq!(&x.group[0], &y.group[0]);
            }
        }
    }
}

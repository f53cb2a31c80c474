//! Integration tests of rapport-predict: exact explanations against the Shapley definition,
//! training and the model file's guarantees, CLV fitting.

use proptest::prelude::*;
use rapport_core::error::Coded;
use rapport_predict::data::{Gap, Table};
use rapport_predict::shap::{add_contributions, brute_force_contributions, expected_value};
use rapport_predict::tree::{Node, Tree};
use rapport_predict::{Classifier, TrainOptions};

/// A random tree of up to `depth` levels over `n_features` features (features repeat along
/// paths), with random covers and missing-value directions.
fn random_tree(n_features: usize, depth: usize) -> impl Strategy<Value = Tree> {
    let leaf =
        (-3.0f64..3.0, 0.5f64..50.0).prop_map(|(v, c)| vec![Node::Leaf { value: v, cover: c }]);
    leaf.prop_recursive(depth as u32, 64, 2, move |inner| {
        (
            inner.clone(),
            inner,
            0..n_features,
            -1.0f64..1.0,
            any::<bool>(),
        )
            .prop_map(move |(l, r, feature, threshold, missing_left)| {
                // Re-index: parent 0, left subtree from 1, right subtree after it.
                let shift = |nodes: &[Node], by: usize| -> Vec<Node> {
                    nodes
                        .iter()
                        .map(|n| match n.clone() {
                            Node::Split {
                                feature,
                                threshold,
                                left,
                                right,
                                missing,
                                cover,
                            } => Node::Split {
                                feature,
                                threshold,
                                left: left + by,
                                right: right + by,
                                missing: missing + by,
                                cover,
                            },
                            leaf => leaf,
                        })
                        .collect()
                };
                let (left, right) = (1, 1 + l.len());
                let cover = l[0].cover() + r[0].cover();
                let mut nodes = vec![Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                    missing: if missing_left { left } else { right },
                    cover,
                }];
                nodes.extend(shift(&l, 1));
                nodes.extend(shift(&r, 1 + l.len()));
                nodes
            })
    })
    .prop_map(move |nodes| Tree::new(nodes, n_features).expect("a generated tree is valid"))
}

fn random_row(n_features: usize) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(
        prop_oneof![4 => -1.2f64..1.2, 1 => Just(f64::NAN)],
        n_features,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The fast contributions equal the Shapley values computed from their definition (every
    /// subset of features), and add up with the expected value to the tree's prediction.
    #[test]
    fn tree_shap_equals_brute_force_shapley(tree in random_tree(6, 5), row in random_row(6)) {
        let mut fast = vec![0.0; 6];
        add_contributions(&tree, &row, &mut fast);
        let slow = brute_force_contributions(&tree, &row, 6);
        for f in 0..6 {
            prop_assert!((fast[f] - slow[f]).abs() < 1e-9, "feature {}: {} vs {}", f, fast[f], slow[f]);
        }
        let total = expected_value(&tree) + fast.iter().sum::<f64>();
        prop_assert!((total - tree.predict(&row)).abs() < 1e-9);
    }
}

#[test]
fn a_hand_checked_tree() {
    // x0 < 0 ? (x1 < 0 ? 1 : 3) : 5, covers 1:1 at the root and the left split.
    let tree = Tree::new(
        vec![
            Node::Split {
                feature: 0,
                threshold: 0.0,
                left: 1,
                right: 2,
                missing: 1,
                cover: 4.0,
            },
            Node::Split {
                feature: 1,
                threshold: 0.0,
                left: 3,
                right: 4,
                missing: 3,
                cover: 2.0,
            },
            Node::Leaf {
                value: 5.0,
                cover: 2.0,
            },
            Node::Leaf {
                value: 1.0,
                cover: 1.0,
            },
            Node::Leaf {
                value: 3.0,
                cover: 1.0,
            },
        ],
        2,
    )
    .unwrap();
    // E = (1 + 3) / 4 + 5 / 2 = 3.5. For x = (-1, -1): f = 1.
    // v({0}) = 2, v({1}) = (1 + 5) / 2 = 3, v({0,1}) = 1, v({}) = 3.5.
    // phi0 = ((2 - 3.5) + (1 - 3)) / 2 = -1.75; phi1 = ((3 - 3.5) + (1 - 2)) / 2 = -0.75.
    let mut phi = vec![0.0; 2];
    add_contributions(&tree, &[-1.0, -1.0], &mut phi);
    assert!((expected_value(&tree) - 3.5).abs() < 1e-12);
    assert!(
        (phi[0] + 1.75).abs() < 1e-12 && (phi[1] + 0.75).abs() < 1e-12,
        "{phi:?}"
    );
}

#[test]
fn invalid_trees_are_refused() {
    let leaf = Node::Leaf {
        value: 1.0,
        cover: 1.0,
    };
    let cyclic = vec![
        Node::Split {
            feature: 0,
            threshold: 0.0,
            left: 0,
            right: 1,
            missing: 1,
            cover: 1.0,
        },
        leaf.clone(),
    ];
    assert!(Tree::new(cyclic, 1).is_err());
    let shared = vec![
        Node::Split {
            feature: 0,
            threshold: 0.0,
            left: 1,
            right: 2,
            missing: 1,
            cover: 1.0,
        },
        Node::Split {
            feature: 0,
            threshold: 0.0,
            left: 2,
            right: 3,
            missing: 2,
            cover: 1.0,
        },
        leaf.clone(),
        leaf.clone(),
    ];
    assert!(Tree::new(shared, 1).is_err());
    let out_of_range = vec![
        Node::Split {
            feature: 3,
            threshold: 0.0,
            left: 1,
            right: 2,
            missing: 1,
            cover: 1.0,
        },
        leaf.clone(),
        leaf,
    ];
    assert!(Tree::new(out_of_range, 2).is_err());
}

/// A churn-like table: tenure, monthly charge, a plan category, support calls with gaps.
fn synthetic_csv(n: usize, seed: u64) -> String {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut s = String::from("customer,tenure,charge,plan,calls,churned\n");
    for i in 0..n {
        let tenure: f64 = rng.gen_range(1.0..72.0);
        let charge: f64 = rng.gen_range(20.0..120.0);
        let plan = ["basic", "plus", "pro"][rng.gen_range(0..3)];
        let calls: u32 = rng.gen_range(0..8);
        let z = -0.05 * tenure + 0.02 * charge + calls as f64 * 0.4 - 1.0
            + if plan == "basic" { 0.8 } else { 0.0 };
        let churned = rng.gen::<f64>() < 1.0 / (1.0 + (-z).exp());
        let calls = if rng.gen::<f64>() < 0.15 {
            String::new()
        } else {
            calls.to_string()
        };
        s.push_str(&format!(
            "c{i},{tenure:.1},{charge:.2},{plan},{calls},{}\n",
            churned as u8
        ));
    }
    s
}

fn table(text: &str) -> Table {
    Table::from_reader(text.as_bytes(), "test.csv").unwrap()
}

#[test]
fn trained_model_explanations_are_exact_and_survive_a_round_trip() {
    let train = table(&synthetic_csv(800, 7));
    let test = table(&synthetic_csv(300, 8));
    // The default (linear part and whatever trees cross-validation keeps), and trees alone.
    for linear_l2 in [Some(1.0), None] {
        let mut opts = TrainOptions::new("churned");
        opts.id_column = Some("customer".into());
        opts.params.iterations = 80;
        opts.params.linear_l2 = linear_l2;
        let model = Classifier::train(&train, &opts).unwrap();
        assert_eq!(model.features.len(), 4, "id and label are not features");
        assert_eq!(model.linear.is_some(), linear_l2.is_some());
        if linear_l2.is_none() {
            assert!(model.training.trees > 0);
        }

        let enc = model.encode(&test).unwrap();
        let p: Vec<f64> = (0..enc.rows())
            .map(|r| model.probability(enc.row(r)))
            .collect();
        let y: Vec<bool> = test.rows.iter().map(|r| r[5] == "1").collect();
        let auc = rapport_predict::metrics::roc_auc(&y, &p).unwrap();
        assert!(auc > 0.7, "the model learned the signal (AUC {auc})");
        for (r, pr) in p.iter().enumerate() {
            let e = model.explain(&test, &enc, r);
            let total =
                e.base_log_odds + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
            assert!(
                (total - e.log_odds).abs() < 1e-9,
                "row {r}: {total} vs {}",
                e.log_odds
            );
            assert!((e.probability - pr).abs() < 1e-12);
        }

        let reloaded = Classifier::from_json(&model.to_json(), "m.json").unwrap();
        assert_eq!(reloaded, model);
    }
}

#[test]
fn features_missing_at_scoring_time_are_handled_and_said() {
    let train = table(&synthetic_csv(400, 3));
    let mut opts = TrainOptions::new("churned");
    opts.params.iterations = 30;
    let model = Classifier::train(&train, &opts).unwrap();
    // No `calls` column, and an unseen plan.
    let test = table("customer,tenure,charge,plan\nx,12,80,enterprise\n");
    let enc = model.encode(&test).unwrap();
    assert_eq!(enc.absent, vec!["calls".to_string()]);
    let e = model.explain(&test, &enc, 0);
    assert!(e.probability > 0.0 && e.probability < 1.0);
    assert!(e
        .gaps
        .iter()
        .any(|g| g.feature == "calls" && g.gap == Gap::ColumnAbsent));
    assert!(e.gaps.iter().any(|g| g.feature == "plan"
        && g.gap
            == Gap::UnknownCategory {
                value: "enterprise".into()
            }));
    // A feature with no value can still move the prediction (the trees learned a direction
    // for missing values), and the sum stays exact.
    let total = e.base_log_odds + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
    assert!((total - e.log_odds).abs() < 1e-9);
}

#[test]
fn bad_training_files_get_clear_errors() {
    let opts = TrainOptions::new("y");
    let constant = table(&format!("x,y\n{}", "1,1\n".repeat(30)));
    let e = Classifier::train(&constant, &opts).unwrap_err();
    assert_eq!(e.code(), "label_constant", "{e}");
    let negatives = table(&format!("x,y\n{}", "1,0\n".repeat(30)));
    let e = Classifier::train(&negatives, &opts).unwrap_err();
    assert_eq!(e.code(), "label_no_positives", "{e}");
    assert!(e.to_string().contains("no model was written"));
    let three = table("x,y\n1,a\n2,b\n3,c\n");
    assert_eq!(
        Classifier::train(&three, &opts).unwrap_err().code(),
        "label_not_binary"
    );
    let few = table(&format!("x,y\n{}{}", "1,1\n".repeat(3), "2,0\n".repeat(30)));
    assert_eq!(
        Classifier::train(&few, &opts).unwrap_err().code(),
        "too_few_rows"
    );
    let gap = table("x,y\n1,1\n2,\n");
    let e = Classifier::train(&gap, &opts).unwrap_err();
    assert_eq!(e.code(), "label_missing");
    assert!(e.to_string().contains("line 3"), "{e}");
    let e = Classifier::train(&table("x,z\n1,1\n"), &opts).unwrap_err();
    assert_eq!(e.code(), "column_missing");
}

#[test]
fn model_files_of_another_version_or_task_are_refused() {
    let train = table(&synthetic_csv(300, 5));
    let mut opts = TrainOptions::new("churned");
    opts.params.iterations = 10;
    let model = Classifier::train(&train, &opts).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&model.to_json()).unwrap();
    v["version"] = 3.into();
    let e = Classifier::from_json(&v.to_string(), "m.json").unwrap_err();
    assert_eq!(e.code(), "model_version_unsupported");
    assert!(e.to_string().contains("version 3"), "{e}");
    v["version"] = 0.into();
    let e = Classifier::from_json(&v.to_string(), "m.json").unwrap_err();
    assert_eq!(e.code(), "model_version_unsupported");
    v["version"] = 2.into();
    v["task"] = "regression".into();
    let e = Classifier::from_json(&v.to_string(), "m.json").unwrap_err();
    assert_eq!(e.code(), "model_task_mismatch");
    assert!(e.to_string().contains("regression"), "{e}");
    let e = Classifier::from_json("{\"hello\": 1}", "m.json").unwrap_err();
    assert_eq!(e.code(), "model_invalid");
}

/// A version-1 model file committed with the crate keeps loading and scoring.
#[test]
fn the_version_1_fixture_still_loads() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model-v1.json");
    let model = Classifier::load(&path).unwrap();
    assert_eq!(model.version, 1);
    let test = table("customer,tenure,charge,plan,calls\nx,12,80,basic,3\n");
    let enc = model.encode(&test).unwrap();
    let p = model.probability(enc.row(0));
    assert!(p > 0.0 && p < 1.0);
}

/// The version-1 fixture (trees only, no linear part) still explains exactly.
#[test]
fn the_version_1_fixture_explains_exactly() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model-v1.json");
    let model = Classifier::load(&path).unwrap();
    assert!(model.linear.is_none() && model.training.selection.is_none());
    assert_eq!(model.training.params.linear_l2, None);
    let test = table(&synthetic_csv(50, 11));
    let enc = model.encode(&test).unwrap();
    for r in 0..enc.rows() {
        let e = model.explain(&test, &enc, r);
        let total = e.base_log_odds + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
        assert!((total - e.log_odds).abs() < 1e-9);
    }
}

/// A version-2 model file (linear part, trees, cross-validation summary) committed with the
/// crate keeps loading, scoring the same and explaining exactly.
#[test]
fn the_version_2_fixture_still_loads() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model-v2.json");
    let model = Classifier::load(&path).unwrap();
    assert_eq!(model.version, 2);
    let linear = model.linear.as_ref().expect("a linear part");
    assert!(!linear.terms.is_empty());
    let selection = model
        .training
        .selection
        .as_ref()
        .expect("a selection summary");
    assert_eq!(selection.trees, model.booster.trees.len());
    let test = table(&synthetic_csv(50, 12));
    let enc = model.encode(&test).unwrap();
    for r in 0..enc.rows() {
        let e = model.explain(&test, &enc, r);
        let total = e.base_log_odds + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
        assert!((total - e.log_odds).abs() < 1e-9);
        assert!(e.probability > 0.0 && e.probability < 1.0);
    }
}

/// Training reports what cross-validation compared and fits what it chose; each feature's
/// contribution is its linear terms plus its trees' TreeSHAP values, exactly.
#[test]
fn cross_validation_chooses_among_the_candidates_and_contributions_split_exactly() {
    let train = table(&synthetic_csv(600, 21));
    let mut opts = TrainOptions::new("churned");
    opts.id_column = Some("customer".into());
    opts.params.iterations = 60;
    let model = Classifier::train(&train, &opts).unwrap();
    let s = model.training.selection.clone().expect("a selection");
    assert_eq!(s.folds, 5);
    let depths: Vec<usize> = s.candidates.iter().map(|c| c.depth).collect();
    assert_eq!(depths, vec![0, 1, 2, 3]);
    let best = s
        .candidates
        .iter()
        .map(|c| c.roc_auc)
        .fold(f64::NEG_INFINITY, f64::max);
    let chosen = s.candidates.iter().find(|c| c.depth == s.depth).unwrap();
    assert_eq!(chosen.roc_auc, best);
    assert_eq!(model.booster.trees.len(), s.trees);
    assert!(s.trees <= 60);
    let linear = model.linear.as_ref().expect("a linear part by default");
    // plan is categorical: one indicator per plan; calls has gaps: a missing indicator.
    assert!(linear
        .terms
        .iter()
        .any(|t| matches!(t.kind, rapport_predict::linear::TermKind::Missing)));

    let test = table(&synthetic_csv(40, 22));
    let enc = model.encode(&test).unwrap();
    for r in 0..enc.rows() {
        let row = enc.row(r);
        let mut trees = vec![0.0; 4];
        for t in &model.booster.trees {
            add_contributions(t, row, &mut trees);
        }
        let mut lin = vec![0.0; 4];
        linear.add_contributions(row, &mut lin);
        let phi = model.contributions(row);
        for f in 0..4 {
            assert!((phi[f] - trees[f] - lin[f]).abs() < 1e-12);
        }
        let total = model.expected_margin() + phi.iter().sum::<f64>();
        assert!((total - model.margin(row)).abs() < 1e-9);
    }

    // Without a linear part the trees start from the training log-odds.
    opts.params.linear_l2 = None;
    let trees_only = Classifier::train(&train, &opts).unwrap();
    assert!(trees_only.linear.is_none());
    let reloaded = Classifier::from_json(&trees_only.to_json(), "m.json").unwrap();
    assert_eq!(reloaded, trees_only);
}

/// Where the signal is additive and linear in the features, the chosen model ranks about as
/// well as the true log-odds do.
#[test]
fn a_linear_signal_is_learned_well() {
    let train = table(&synthetic_csv(1500, 31));
    let test = table(&synthetic_csv(1000, 32));
    let mut opts = TrainOptions::new("churned");
    opts.id_column = Some("customer".into());
    let model = Classifier::train(&train, &opts).unwrap();
    let enc = model.encode(&test).unwrap();
    let p: Vec<f64> = (0..enc.rows())
        .map(|r| model.probability(enc.row(r)))
        .collect();
    let y: Vec<bool> = test.rows.iter().map(|r| r[5] == "1").collect();
    // The generating log-odds (with the missing calls at their mean, 3.5).
    let truth: Vec<f64> = test
        .rows
        .iter()
        .map(|r| {
            let tenure: f64 = r[1].parse().unwrap();
            let charge: f64 = r[2].parse().unwrap();
            let calls: f64 = r[4].parse().unwrap_or(3.5);
            -0.05 * tenure + 0.02 * charge + calls * 0.4 + if r[3] == "basic" { 0.8 } else { 0.0 }
        })
        .collect();
    let ours = rapport_predict::metrics::roc_auc(&y, &p).unwrap();
    let best = rapport_predict::metrics::roc_auc(&y, &truth).unwrap();
    assert!(ours > best - 0.02, "{ours} vs the true log-odds' {best}");
}

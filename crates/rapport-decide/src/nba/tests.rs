use super::*;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

const CATALOG: &str = r#"
[traits]
plan = "string"
churn_risk = "number"

[context]
reason = "string"

[levers]
retention = 2.0
growth = 1.0

[contact_policy]
suppress_after_rejections = 2
suppression_period = "30d"
[[contact_policy.cap]]
channel = "email"
max = 2
period = "7d"

[control]
rate = 0.0

[[action]]
id = "fiber_discount"
kind = "retention"
title = "20% off your fiber plan"
value = 100
lever = "retention"
eligibility = ['plan == "fiber"']
applicability = ["churn_risk > 0.4"]
because = "you may be thinking of leaving"
[[action.weight]]
when = 'context.reason == "cancel"'
factor = 3.0

[[action]]
id = "speed_upgrade"
kind = "upsell"
value = 50
lever = "growth"
suitability = ["support_contacts_30d < 2"]

[[action]]
id = "apology_credit"
kind = "service_recovery"
value = 30
applicability = ["support_contacts_30d >= 2"]

[[action]]
id = "app_tips"
kind = "education"
channels = ["app"]
value = 5

[[action]]
id = "nothing"
kind = "do_nothing"
value = 1
"#;

fn values(pairs: Value) -> Values {
    let catalog = Catalog::parse(CATALOG).expect("catalog");
    let mut v = Values::default();
    for (k, x) in pairs.as_object().expect("object") {
        v.present.insert(k.clone(), x.clone());
    }
    let traits = serde_json::Map::new();
    let with = v.with_traits(&catalog, &traits);
    // Traits given in `pairs` win over "missing".
    let mut out = with;
    for (k, x) in pairs.as_object().expect("object") {
        out.present.insert(k.clone(), x.clone());
        out.missing.remove(k);
    }
    out
}

/// Outcome counts so large that every draw is its posterior mean, to make rankings exact.
fn certain(rates: &[(&str, f64)]) -> BTreeMap<String, Counts> {
    rates
        .iter()
        .map(|(id, p)| {
            let n = 10_000_000.0;
            (
                (*id).to_owned(),
                Counts {
                    successes: (p * n) as u64,
                    failures: ((1.0 - p) * n) as u64,
                },
            )
        })
        .collect()
}

fn run(
    catalog: &Catalog,
    values: &Values,
    counts: &BTreeMap<String, Counts>,
    history: &[Contact],
    channel: &str,
    limit: usize,
) -> Arbitration {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    arbitrate(
        catalog,
        &Request {
            profile_id: "prof_1",
            channel,
            values,
            counts,
            history,
            now: DateTime::<Utc>::UNIX_EPOCH + Duration::days(1000),
            limit,
            show: usize::MAX,
        },
        &mut rng,
        |_| Ok(()),
    )
}

#[test]
fn actions_are_ranked_with_their_explanations_and_the_rest_say_why_not() {
    let catalog = Catalog::parse(CATALOG).expect("catalog");
    let v = values(
        json!({"plan": "fiber", "churn_risk": 0.7, "support_contacts_30d": 0, "context.reason": "cancel"}),
    );
    let counts = certain(&[
        ("fiber_discount", 0.1),
        ("speed_upgrade", 0.3),
        ("nothing", 0.5),
    ]);
    let a = run(&catalog, &v, &counts, &[], "web", 3);
    let ids: Vec<&str> = a.ranked.iter().map(|r| r.action_id.as_str()).collect();
    // 0.1 × 3 × 100 × 2 = 60 > 0.3 × 50 × 1 = 15 > 0.5 × 1 = 0.5
    assert_eq!(ids, ["fiber_discount", "speed_upgrade", "nothing"]);
    let top = &a.ranked[0];
    assert!((top.priority - 60.0).abs() < 0.1, "{}", top.priority);
    assert_eq!(top.parts.context_weight, 3.0);
    assert_eq!(top.parts.lever_weight, 2.0);
    assert_eq!(top.rules.len(), 2);
    assert_eq!(top.rules[0].rule, "plan == \"fiber\"");
    assert_eq!(top.rules[0].values["plan"], "\"fiber\"");
    assert!(top.offered && a.ranked[1].offered && !a.ranked[2].offered);
    assert_eq!(
        customer_explanation(top),
        "We suggested 20% off your fiber plan because you may be thinking of leaving."
    );
    let why: BTreeMap<&str, (Stage, &str)> = a
        .filtered
        .iter()
        .map(|f| (f.action_id.as_str(), (f.stage, f.reason.as_str())))
        .collect();
    assert_eq!(why["apology_credit"].0, Stage::Applicability);
    assert!(
        why["apology_credit"].1.contains("support_contacts_30d = 0"),
        "{why:?}"
    );
    assert_eq!(why["app_tips"].0, Stage::Channel);
}

#[test]
fn a_missing_value_fails_its_rule_and_says_so() {
    let catalog = Catalog::parse(CATALOG).expect("catalog");
    let v = values(json!({"plan": "fiber", "support_contacts_30d": 0}));
    let a = run(&catalog, &v, &BTreeMap::new(), &[], "web", 3);
    let f = a
        .filtered
        .iter()
        .find(|f| f.action_id == "fiber_discount")
        .expect("filtered");
    assert_eq!(f.stage, Stage::Applicability);
    assert!(f.reason.contains("churn_risk is missing"), "{}", f.reason);
    assert_eq!(f.line, Some(f.line.unwrap()));
}

#[test]
fn consent_refusals_filter_with_their_reason() {
    let catalog = Catalog::parse(CATALOG).expect("catalog");
    let v = values(json!({"plan": "fiber", "churn_risk": 0.9, "support_contacts_30d": 0}));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let a = arbitrate(
        &catalog,
        &Request {
            profile_id: "p",
            channel: "email",
            values: &v,
            counts: &BTreeMap::new(),
            history: &[],
            now: Utc::now(),
            limit: 1,
            show: usize::MAX,
        },
        &mut rng,
        |action| {
            if action
                .purposes_on("email")
                .iter()
                .any(|p| p.as_str() == "marketing_email")
            {
                Err((
                    Stage::Consent,
                    "consent for marketing_email was withdrawn".into(),
                ))
            } else {
                Ok(())
            }
        },
    );
    let refused: Vec<&str> = a
        .filtered
        .iter()
        .filter(|f| f.stage == Stage::Consent)
        .map(|f| f.action_id.as_str())
        .collect();
    assert_eq!(refused, ["fiber_discount", "speed_upgrade"]);
    assert!(a.ranked.iter().all(|r| !r.kind.promotional()));
}

#[test]
fn rejected_actions_are_suppressed_after_n_rejections() {
    let catalog = Catalog::parse(CATALOG).expect("catalog");
    let v = values(json!({"plan": "fiber", "churn_risk": 0.9, "support_contacts_30d": 0}));
    let now = DateTime::<Utc>::UNIX_EPOCH + Duration::days(1000);
    let rejection = |days: i64| Contact {
        decision_id: format!("d{days}"),
        action_id: "fiber_discount".into(),
        channel: "web".into(),
        at: now - Duration::days(days),
        outcome: Some(Outcome::Rejected),
    };
    let once = run(&catalog, &v, &BTreeMap::new(), &[rejection(1)], "web", 3);
    assert!(once.ranked.iter().any(|r| r.action_id == "fiber_discount"));
    // The second rejection is older than the 30-day period: it no longer counts.
    let old = run(
        &catalog,
        &v,
        &BTreeMap::new(),
        &[rejection(1), rejection(40)],
        "web",
        3,
    );
    assert!(old.ranked.iter().any(|r| r.action_id == "fiber_discount"));
    let twice = run(
        &catalog,
        &v,
        &BTreeMap::new(),
        &[rejection(1), rejection(2)],
        "web",
        3,
    );
    let f = twice
        .filtered
        .iter()
        .find(|f| f.action_id == "fiber_discount")
        .expect("suppressed");
    assert_eq!(f.stage, Stage::Suppressed);
}

#[test]
fn doing_nothing_first_offers_nothing_else() {
    let catalog = Catalog::parse(CATALOG).expect("catalog");
    let v = values(json!({"plan": "copper", "support_contacts_30d": 0}));
    let counts = certain(&[("speed_upgrade", 0.001), ("nothing", 0.9)]);
    let a = run(&catalog, &v, &counts, &[], "web", 3);
    assert_eq!(a.ranked[0].action_id, "nothing");
    assert!(a.ranked[0].offered);
    assert!(a.ranked[1..].iter().all(|r| !r.offered));
}

#[test]
fn the_control_group_share_is_near_its_rate_and_stable() {
    let control = ControlGroup {
        rate: 0.02,
        ..ControlGroup::default()
    };
    let n = 100_000;
    let inside = (0..n)
        .filter(|i| in_control_group(&control, &format!("prof_{i:08}")))
        .count();
    let share = inside as f64 / n as f64;
    // Binomial standard deviation at n = 100k, p = 0.02 is 0.00044; allow about 5 of them.
    assert!((share - 0.02).abs() < 0.0025, "share {share}");
    for i in 0..100 {
        let id = format!("prof_{i}");
        assert_eq!(
            in_control_group(&control, &id),
            in_control_group(&control, &id)
        );
    }
    let none = ControlGroup {
        rate: 0.0,
        ..ControlGroup::default()
    };
    assert!(!(0..1000).any(|i| in_control_group(&none, &format!("p{i}"))));
}

#[test]
fn control_customers_get_nothing_or_one_random_flagged_action() {
    let mut catalog = Catalog::parse(CATALOG).expect("catalog");
    catalog.control.rate = 0.5;
    let v = values(json!({"plan": "fiber", "churn_risk": 0.9, "support_contacts_30d": 0}));
    let id = (0..)
        .map(|i| format!("prof_{i}"))
        .find(|id| in_control_group(&catalog.control, id))
        .expect("someone is in the group");
    let ask = |catalog: &Catalog| {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        arbitrate(
            catalog,
            &Request {
                profile_id: &id,
                channel: "web",
                values: &v,
                counts: &BTreeMap::new(),
                history: &[],
                now: Utc::now(),
                limit: 3,
                show: usize::MAX,
            },
            &mut rng,
            |_| Ok(()),
        )
    };
    let nothing = ask(&catalog);
    assert!(nothing.control_group);
    assert_eq!(nothing.offered().count(), 0);
    catalog.control.mode = ControlMode::Random;
    let random = ask(&catalog);
    let offered: Vec<&Ranked> = random.offered().collect();
    assert_eq!(offered.len(), 1);
    assert!(offered[0].control && offered[0].kind != ActionKind::DoNothing);
}

proptest! {
    #[test]
    fn priority_rises_with_value(
        p in 0.0f64..1.0, cw in 0.0f64..10.0, lever in 0.01f64..10.0,
        v1 in 0.0f64..1e6, dv in 0.0f64..1e6,
    ) {
        prop_assert!(priority(p, cw, v1, lever) <= priority(p, cw, v1 + dv, lever));
    }

    #[test]
    fn raising_an_actions_value_never_lowers_its_rank(seed in 0u64..1000, boost in 1.0f64..50.0) {
        let catalog = Catalog::parse(CATALOG).expect("catalog");
        let v = values(json!({"plan": "fiber", "churn_risk": 0.9, "support_contacts_30d": 0}));
        let rank = |catalog: &Catalog| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let a = arbitrate(catalog, &Request {
                profile_id: "p", channel: "web", values: &v, counts: &BTreeMap::new(),
                history: &[], now: Utc::now(), limit: 5, show: usize::MAX,
            }, &mut rng, |_| Ok(()));
            a.ranked.iter().position(|r| r.action_id == "speed_upgrade").expect("ranked")
        };
        let before = rank(&catalog);
        let mut richer = catalog.clone();
        let i = richer.actions.iter().position(|a| a.id == "speed_upgrade").expect("action");
        richer.actions[i].value *= boost;
        prop_assert!(rank(&richer) <= before);
    }

    #[test]
    fn contact_caps_are_never_exceeded(
        steps in proptest::collection::vec((0i64..(48 * 60), 1usize..4), 1..60),
        max in 0u32..4, period_h in 1i64..200,
    ) {
        let mut catalog = Catalog::parse(CATALOG).expect("catalog");
        catalog.contact.caps = vec![catalog::ContactCap {
            channel: "web".into(), max, period: Duration::hours(period_h), period_text: format!("{period_h}h"),
        }];
        catalog.contact.suppress_after_rejections = None;
        let v = values(json!({"plan": "fiber", "churn_risk": 0.9, "support_contacts_30d": 5}));
        let counts = certain(&[("nothing", 0.0)]);
        let mut now = DateTime::<Utc>::UNIX_EPOCH;
        let mut history: Vec<Contact> = Vec::new();
        for (n, (gap_min, limit)) in steps.into_iter().enumerate() {
            now += Duration::minutes(gap_min);
            let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
            let a = arbitrate(&catalog, &Request {
                profile_id: "p", channel: "web", values: &v, counts: &counts,
                history: &history, now, limit, show: usize::MAX,
            }, &mut rng, |_| Ok(()));
            for r in a.offered() {
                history.extend(contact_of(&format!("d{n}"), r, "web", now));
            }
            for c in &history {
                let window = history.iter().filter(|h| h.at > c.at - Duration::hours(period_h) && h.at <= c.at).count();
                prop_assert!(window <= max as usize, "{window} contacts within {period_h}h, cap {max}");
            }
        }
    }
}

#[test]
fn only_the_best_ranked_actions_are_written_out_and_every_action_is_counted() {
    let catalog = Catalog::parse(CATALOG).expect("catalog");
    let v = values(json!({"plan": "fiber", "churn_risk": 0.9, "support_contacts_30d": 0}));
    let counts = certain(&[
        ("fiber_discount", 0.5),
        ("speed_upgrade", 0.4),
        ("nothing", 0.01),
    ]);
    let ask = |show: usize, limit: usize| {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        arbitrate(
            &catalog,
            &Request {
                profile_id: "prof_1",
                channel: "web",
                values: &v,
                counts: &counts,
                history: &[],
                now: Utc::now(),
                limit,
                show,
            },
            &mut rng,
            |_| Ok(()),
        )
    };
    let all = ask(usize::MAX, 1);
    assert_eq!(all.ranked_total, all.ranked.len());
    assert_eq!(all.ranked.len(), 3, "{:?}", all.ranked);
    let one = ask(1, 1);
    assert_eq!(one.ranked_total, 3);
    assert_eq!(one.ranked, all.ranked[..1].to_vec());
    assert_eq!(one.filtered, all.filtered);
    // An offered action is written out even past `show`, with the values its rules read.
    let two = ask(1, 2);
    assert_eq!(two.ranked.len(), 2);
    assert!(two.ranked.iter().all(|r| r.offered));
    assert_eq!(two.ranked[1].action_id, "speed_upgrade");
    assert_eq!((two.ranked[0].rank, two.ranked[1].rank), (1, 2));
    assert_eq!(
        two.ranked[1].rules[0]
            .values
            .get("support_contacts_30d")
            .map(String::as_str),
        Some("0")
    );
    // Rules of actions that are listed but not offered carry no values.
    assert!(all.ranked[1].rules.iter().all(|c| c.values.is_empty()));
}

#[test]
fn rules_with_the_same_text_share_one_key() {
    let text = format!(
        "{CATALOG}\n[[action]]\nid = \"fiber_tips\"\nkind = \"education\"\nvalue = 3\neligibility = ['plan == \"fiber\"']\napplicability = [\"support_contacts_30d >= 2\"]\n"
    );
    let c = Catalog::parse(&text).expect("catalog");
    let all: Vec<&Rule> = c
        .actions
        .iter()
        .flat_map(|a| {
            a.eligibility
                .iter()
                .chain(&a.applicability)
                .chain(&a.suitability)
                .chain(a.weights.iter().map(|w| &w.rule))
        })
        .collect();
    let texts: std::collections::BTreeSet<&str> = all.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(c.distinct_rules, texts.len());
    assert!(all.len() > texts.len(), "the test catalog repeats a rule");
    for x in &all {
        assert!(x.key < c.distinct_rules);
        for y in &all {
            assert_eq!(x.text == y.text, x.key == y.key, "{} / {}", x.text, y.text);
        }
    }
}

use super::*;
use proptest::prelude::*;
use rand::Rng;

/// Draws a level index 1..=k from a distribution over levels 1..=k.
fn draw(rng: &mut ChaCha8Rng, dist: &[f64]) -> u8 {
    let x: f64 = rng.gen();
    let mut acc = 0.0;
    for (i, p) in dist.iter().enumerate().skip(1) {
        acc += p;
        if x < acc {
            return i as u8;
        }
    }
    (dist.len() - 1) as u8
}

fn synthetic(truth: &EmParams, n: usize, seed: u64) -> Vec<(Vec<u8>, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut patterns: HashMap<Vec<u8>, f64> = HashMap::new();
    for _ in 0..n {
        let is_match = rng.gen::<f64>() < truth.lambda;
        let dists = if is_match { &truth.m } else { &truth.u };
        let v: Vec<u8> = dists.iter().map(|d| draw(&mut rng, d)).collect();
        *patterns.entry(v).or_insert(0.0) += 1.0;
    }
    patterns.into_iter().collect()
}

fn truth() -> EmParams {
    EmParams {
        lambda: 0.2,
        m: vec![
            vec![0.0, 0.85, 0.1, 0.05],
            vec![0.0, 0.7, 0.2, 0.1],
            vec![0.0, 0.9, 0.1],
            vec![0.0, 0.6, 0.3, 0.1],
        ],
        u: vec![
            vec![0.0, 0.02, 0.08, 0.9],
            vec![0.0, 0.05, 0.15, 0.8],
            vec![0.0, 0.1, 0.9],
            vec![0.0, 0.01, 0.09, 0.9],
        ],
    }
}

fn max_abs_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f64::max)
}

#[test]
fn em_recovers_known_parameters() {
    let t = truth();
    let patterns = synthetic(&t, 60_000, 7);
    let init = EmParams {
        lambda: 0.05,
        m: t.m.iter().map(|v| prior_m(v.len() - 2)).collect(),
        u: t.u
            .iter()
            .map(|v| {
                let k = v.len() - 1;
                std::iter::once(0.0)
                    .chain(std::iter::repeat_n(1.0 / k as f64, k))
                    .collect()
            })
            .collect(),
    };
    let r = expectation_maximisation(&patterns, init, false, 500, 1e-8);
    assert!(
        r.converged,
        "EM did not converge in {} iterations",
        r.iterations
    );
    assert!(
        (r.params.lambda - t.lambda).abs() < 0.02,
        "lambda {}",
        r.params.lambda
    );
    assert!(max_abs_diff(&r.params.m, &t.m) < 0.03, "m {:?}", r.params.m);
    assert!(max_abs_diff(&r.params.u, &t.u) < 0.03, "u {:?}", r.params.u);
}

#[test]
fn em_with_fixed_u_recovers_m_and_lambda() {
    let t = truth();
    let patterns = synthetic(&t, 30_000, 11);
    let init = EmParams {
        lambda: 0.5,
        m: t.m.iter().map(|v| prior_m(v.len() - 2)).collect(),
        u: t.u.clone(),
    };
    let r = expectation_maximisation(&patterns, init, true, 500, 1e-8);
    assert!((r.params.lambda - t.lambda).abs() < 0.02);
    assert!(max_abs_diff(&r.params.m, &t.m) < 0.03);
    assert_eq!(r.params.u, t.u);
}

/// Patterns drawn from three classes: match (m, share `lambda`), household (h, share
/// `share`) and other non-match (u).
fn synthetic_households(
    truth: &EmParams,
    h: &[Vec<f64>],
    share: f64,
    n: usize,
    seed: u64,
) -> Vec<(Vec<u8>, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut patterns: HashMap<Vec<u8>, f64> = HashMap::new();
    for _ in 0..n {
        let x: f64 = rng.gen();
        let dists = if x < truth.lambda {
            &truth.m
        } else if x < truth.lambda + share {
            h
        } else {
            &truth.u
        };
        let v: Vec<u8> = dists.iter().map(|d| draw(&mut rng, d)).collect();
        *patterns.entry(v).or_insert(0.0) += 1.0;
    }
    patterns.into_iter().collect()
}

#[test]
fn em_with_household_separates_households_from_matches() {
    // Comparisons 0 and 1 tell people apart (first name, birth date); 2 and 3 are shared by a
    // household (address, phone), so household pairs agree on them as matches do.
    let t = truth();
    let h = vec![
        t.u[0].clone(),
        t.u[1].clone(),
        vec![0.0, 0.95, 0.05],
        vec![0.0, 0.9, 0.08, 0.02],
    ];
    let share = 0.25;
    let patterns = synthetic_households(&t, &h, share, 80_000, 5);
    let init = EmParams {
        lambda: 0.1,
        m: t.m.iter().map(|v| prior_m(v.len() - 2)).collect(),
        u: t.u.clone(),
    };
    let h_init = vec![t.u[0].clone(), t.u[1].clone(), prior_m(1), prior_m(2)];
    let (r, hh) = em_with_household(
        &patterns,
        init.clone(),
        HouseholdEm {
            share: 0.1,
            h: h_init,
            free: vec![false, false, true, true],
        },
        true,
        1000,
        1e-9,
    );
    assert!(r.converged, "{} iterations", r.iterations);
    assert!(
        (r.params.lambda - t.lambda).abs() < 0.02,
        "{}",
        r.params.lambda
    );
    assert!((hh.share - share).abs() < 0.02, "{}", hh.share);
    assert!(max_abs_diff(&r.params.m, &t.m) < 0.04, "m {:?}", r.params.m);
    assert!(max_abs_diff(&hh.h, &h) < 0.04, "h {:?}", hh.h);

    // The two-class model on the same patterns takes households for matches: a pattern that
    // agrees on the shared columns only gets a high posterior there and a low one here.
    let two = expectation_maximisation(&patterns, init, true, 1000, 1e-9).params;
    let household_like = [3u8, 3, 1, 1];
    let posterior2 = {
        let lm: f64 = two.lambda.ln()
            + household_like
                .iter()
                .enumerate()
                .map(|(c, &l)| two.m[c][l as usize].ln())
                .sum::<f64>();
        let lu: f64 = (1.0 - two.lambda).ln()
            + household_like
                .iter()
                .enumerate()
                .map(|(c, &l)| two.u[c][l as usize].ln())
                .sum::<f64>();
        1.0 / (1.0 + (lu - lm).exp())
    };
    let class = |p: &[Vec<f64>], prior: f64| {
        prior.ln()
            + household_like
                .iter()
                .enumerate()
                .map(|(c, &l)| p[c][l as usize].ln())
                .sum::<f64>()
    };
    let (lm, lh, lu) = (
        class(&r.params.m, r.params.lambda),
        class(&hh.h, hh.share),
        class(&r.params.u, 1.0 - r.params.lambda - hh.share),
    );
    let posterior3 = lm.exp() / (lm.exp() + lh.exp() + lu.exp());
    assert!(posterior2 > 0.5, "two-class posterior {posterior2}");
    assert!(posterior3 < 0.05, "three-class posterior {posterior3}");
}

#[test]
fn household_adjustment_is_minus_softplus() {
    for x in [-60.0, -5.0, 0.0, 3.0, 39.0, 41.0, 500.0] {
        let a = HouseholdParams::adjustment(x);
        let want = -(1.0 + f64::exp2(x)).log2();
        assert!(a <= 0.0);
        if x < 100.0 {
            assert!((a - want).abs() < 1e-9, "{x}: {a} vs {want}");
        } else {
            assert!((a + x).abs() < 1e-9);
        }
    }
}

#[test]
fn prior_m_sums_to_one() {
    for k in 1..6 {
        let m = prior_m(k);
        assert_eq!(m.len(), k + 2);
        assert!((m.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(m[1..=k].windows(2).all(|w| w[0] >= w[1]));
    }
}

fn model_from(m: Vec<Vec<f64>>, u: Vec<Vec<f64>>, lambda: f64) -> (MatchSettings, TrainedModel) {
    let comparisons = m
        .iter()
        .enumerate()
        .map(|(i, v)| Comparison {
            column: format!("c{i}"),
            preprocess: Preprocess::Clean,
            levels: (0..v.len() - 2)
                .map(|j| Level::JaroWinkler {
                    min: 0.9 - j as f64 * 0.1,
                })
                .collect(),
            term_frequency: false,
        })
        .collect();
    let settings = MatchSettings {
        blocking_rules: vec![],
        comparisons,
        training: Default::default(),
    };
    let tf = vec![false; m.len()];
    let p = EmParams { lambda, m, u };
    let model = TrainedModel::from_params(&settings, &p, lambda, (1, true), 0, &tf);
    (settings, model)
}

fn weight(model: &TrainedModel, levels: &[u8]) -> f64 {
    model.prior_weight()
        + levels
            .iter()
            .enumerate()
            .map(|(c, &l)| model.contribution_with_frequency(c, l, None))
            .sum::<f64>()
}

fn dist(k: usize) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(0.001f64..1.0, k).prop_map(|v| {
        let s: f64 = v.iter().sum();
        std::iter::once(0.0)
            .chain(v.into_iter().map(move |x| x / s))
            .collect()
    })
}

proptest! {
    #[test]
    fn probabilities_are_in_unit_interval(w in -2000.0f64..2000.0) {
        let p = probability_from_weight(w);
        prop_assert!((0.0..=1.0).contains(&p));
        prop_assert!(p.is_finite());
    }

    #[test]
    fn agreeing_more_never_lowers_the_weight(
        m in proptest::collection::vec(dist(3), 3),
        u in proptest::collection::vec(dist(3), 3),
        lambda in 0.0001f64..0.5,
        levels in proptest::collection::vec(0u8..=3, 3),
        field in 0usize..3,
    ) {
        let (_, model) = model_from(m, u, lambda);
        let before = weight(&model, &levels);
        let p = probability_from_weight(before);
        prop_assert!((0.0..=1.0).contains(&p));
        // Move one field to a stricter listed level (never to null).
        let current = levels[field];
        if current >= 2 {
            let mut better = levels.clone();
            better[field] = current - 1;
            prop_assert!(weight(&model, &better) >= before - 1e-12);
        }
    }
}

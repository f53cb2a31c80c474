//! Escalation risk of an open conversation: a logistic model over the customer's sentiment
//! trajectory, the urgency read from their messages, how long they have been waiting, and
//! their history. A pure function of its inputs, explained exactly: in log-odds the risk is a
//! base value plus one contribution per signal.
//!
//! Two sources of weights: [`EscalationModel::prior`], set by hand from what the signals mean
//! (worse and falling sentiment, urgency, waiting and repeated contact all raise the risk); it
//! is a reasoned starting point, not a measured one, and says so in its name. And
//! [`EscalationModel::fit`], which learns the weights from a workspace's own labelled
//! conversations (L2-penalised logistic regression by Newton's method).

use serde::{Deserialize, Serialize};

use crate::calibrate::sigmoid;
use crate::error::PredictError;

/// What is known about an open conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationInput {
    /// Sentiment of the customer's messages in order, each in [-1, 1].
    pub sentiment: Vec<f64>,
    /// Urgency of the conversation in [0, 1].
    pub urgency: f64,
    /// Minutes since the customer's last unanswered message.
    pub waiting_minutes: f64,
    /// The customer's other conversations in the last 30 days.
    pub recent_contacts: u32,
    /// Earlier conversations of theirs that were escalated.
    pub past_escalations: u32,
}

/// The signals the model weighs, in this order.
pub const SIGNALS: [&str; 6] = [
    "sentiment_now",
    "sentiment_drop",
    "urgency",
    "waiting",
    "recent_contacts",
    "past_escalations",
];

impl EscalationInput {
    /// Checks ranges; every problem is reported at once.
    pub fn check(&self) -> Result<(), PredictError> {
        let mut problems = Vec::new();
        if self.sentiment.iter().any(|s| !(-1.0..=1.0).contains(s)) {
            problems.push("every sentiment must be in [-1, 1]");
        }
        if !(0.0..=1.0).contains(&self.urgency) {
            problems.push("urgency must be in [0, 1]");
        }
        if !(self.waiting_minutes.is_finite() && self.waiting_minutes >= 0.0) {
            problems.push("waiting minutes must be a non-negative number");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PredictError::InvalidParameter(problems.join("; ")))
        }
    }

    /// The signal values: negated latest sentiment (0 when no message is read yet), the largest
    /// fall from an earlier message to a later one, urgency, log of waiting hours plus one,
    /// log of recent contacts plus one, and whether they were escalated before.
    pub fn signals(&self) -> [f64; 6] {
        let now = self.sentiment.last().copied().unwrap_or(0.0);
        let mut best = f64::NEG_INFINITY;
        let mut drop: f64 = 0.0;
        for &s in &self.sentiment {
            best = best.max(s);
            drop = drop.max(best - s);
        }
        [
            -now,
            drop,
            self.urgency,
            (self.waiting_minutes / 60.0).ln_1p(),
            (self.recent_contacts as f64).ln_1p(),
            (self.past_escalations > 0) as u8 as f64,
        ]
    }
}

/// A logistic escalation model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationModel {
    pub name: String,
    pub intercept: f64,
    pub weights: [f64; 6],
}

/// A risk with its explanation: `base_log_odds` plus the contributions is the log-odds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EscalationRisk {
    pub model: String,
    pub probability: f64,
    pub log_odds: f64,
    pub base_log_odds: f64,
    /// (signal, its value, its contribution to the log-odds), largest first.
    pub contributions: Vec<(String, f64, f64)>,
}

impl EscalationModel {
    /// Hand-set weights (see the module doc): a calm, unhurried first contact sits near 5%.
    pub fn prior() -> Self {
        EscalationModel {
            name: "escalation-prior@1".into(),
            intercept: -3.0,
            weights: [1.2, 1.5, 1.8, 0.6, 0.5, 0.7],
        }
    }

    /// The risk of one conversation. Contributions are measured from a conversation whose
    /// signals are all zero (neutral sentiment, no urgency, no wait, no history), so the base
    /// is the intercept.
    pub fn risk(&self, input: &EscalationInput) -> Result<EscalationRisk, PredictError> {
        input.check()?;
        let x = input.signals();
        let mut contributions: Vec<(String, f64, f64)> = SIGNALS
            .iter()
            .zip(x.iter().zip(&self.weights))
            .map(|(name, (v, w))| (name.to_string(), *v, v * w))
            .collect();
        let log_odds = self.intercept + contributions.iter().map(|c| c.2).sum::<f64>();
        contributions.sort_by(|a, b| b.2.abs().total_cmp(&a.2.abs()));
        Ok(EscalationRisk {
            model: self.name.clone(),
            probability: sigmoid(log_odds),
            log_odds,
            base_log_odds: self.intercept,
            contributions,
        })
    }

    /// Learns the weights from labelled conversations (`true` = escalated), with an L2 penalty
    /// `l2` on the weights (not the intercept).
    pub fn fit(
        examples: &[(EscalationInput, bool)],
        l2: f64,
        name: &str,
    ) -> Result<Self, PredictError> {
        let pos = examples.iter().filter(|e| e.1).count();
        if pos == 0 || pos == examples.len() {
            return Err(PredictError::TooFewRows {
                message: "escalation training needs escalated and non-escalated conversations"
                    .into(),
            });
        }
        for (input, _) in examples {
            input.check()?;
        }
        let xs: Vec<[f64; 7]> = examples
            .iter()
            .map(|(i, _)| {
                let s = i.signals();
                [1.0, s[0], s[1], s[2], s[3], s[4], s[5]]
            })
            .collect();
        let mut beta = [0.0; 7];
        for _ in 0..100 {
            let mut grad = [0.0; 7];
            let mut hess = [[0.0; 7]; 7];
            for (x, (_, y)) in xs.iter().zip(examples) {
                let z: f64 = x.iter().zip(&beta).map(|(a, b)| a * b).sum();
                let p = sigmoid(z);
                let w = p * (1.0 - p);
                for i in 0..7 {
                    grad[i] += (p - *y as u8 as f64) * x[i];
                    for j in 0..7 {
                        hess[i][j] += w * x[i] * x[j];
                    }
                }
            }
            for i in 1..7 {
                grad[i] += l2 * beta[i];
                hess[i][i] += l2;
            }
            for (i, row) in hess.iter_mut().enumerate() {
                row[i] += 1e-9;
            }
            let step = solve(hess, grad).ok_or_else(|| PredictError::FitFailed {
                model: "escalation".into(),
                message: "singular system".into(),
            })?;
            let mut size: f64 = 0.0;
            for i in 0..7 {
                beta[i] -= step[i];
                size = size.max(step[i].abs());
            }
            if size < 1e-10 {
                break;
            }
        }
        if beta.iter().any(|b| !b.is_finite()) {
            return Err(PredictError::FitFailed {
                model: "escalation".into(),
                message: "weights diverged".into(),
            });
        }
        Ok(EscalationModel {
            name: name.to_string(),
            intercept: beta[0],
            weights: [beta[1], beta[2], beta[3], beta[4], beta[5], beta[6]],
        })
    }
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> Option<[f64; N]> {
    for col in 0..N {
        let pivot = (col..N).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col];
        for row in col + 1..N {
            let f = a[row][col] / pivot_row[col];
            for (cell, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *cell -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; N];
    for i in (0..N).rev() {
        let s: f64 = (i + 1..N).map(|k| a[i][k] * x[k]).sum();
        x[i] = (b[i] - s) / a[i][i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn calm() -> EscalationInput {
        EscalationInput {
            sentiment: vec![0.0],
            urgency: 0.0,
            waiting_minutes: 0.0,
            recent_contacts: 0,
            past_escalations: 0,
        }
    }

    #[test]
    fn each_signal_raises_the_prior_risk_and_the_explanation_adds_up() {
        let m = EscalationModel::prior();
        let base = m.risk(&calm()).unwrap().probability;
        assert!((base - sigmoid(-3.0)).abs() < 1e-12);
        let worse = [
            EscalationInput {
                sentiment: vec![0.5, -0.6],
                ..calm()
            },
            EscalationInput {
                urgency: 0.9,
                ..calm()
            },
            EscalationInput {
                waiting_minutes: 240.0,
                ..calm()
            },
            EscalationInput {
                recent_contacts: 3,
                ..calm()
            },
            EscalationInput {
                past_escalations: 1,
                ..calm()
            },
        ];
        for input in worse {
            let r = m.risk(&input).unwrap();
            assert!(r.probability > base, "{input:?}");
            let total = r.base_log_odds + r.contributions.iter().map(|c| c.2).sum::<f64>();
            assert!((total - r.log_odds).abs() < 1e-12);
        }
    }

    #[test]
    fn the_drop_is_the_largest_fall_from_an_earlier_message() {
        let i = EscalationInput {
            sentiment: vec![0.2, 0.8, 0.1, 0.5, -0.4],
            ..calm()
        };
        let s = i.signals();
        assert!((s[1] - 1.2).abs() < 1e-12);
        assert!((s[0] - 0.4).abs() < 1e-12);
    }

    #[test]
    fn bad_inputs_are_refused_with_every_problem() {
        let i = EscalationInput {
            sentiment: vec![2.0],
            urgency: -1.0,
            ..calm()
        };
        let e = EscalationModel::prior().risk(&i).unwrap_err().to_string();
        assert!(e.contains("sentiment") && e.contains("urgency"), "{e}");
    }

    #[test]
    fn fitting_recovers_the_weights_that_generated_the_labels() {
        let truth = EscalationModel {
            name: "truth".into(),
            intercept: -2.0,
            weights: [1.0, 2.0, 1.5, 0.8, 0.4, 1.0],
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let examples: Vec<(EscalationInput, bool)> = (0..20_000)
            .map(|_| {
                let n = rng.gen_range(1..5);
                let input = EscalationInput {
                    sentiment: (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect(),
                    urgency: rng.gen_range(0.0..1.0),
                    waiting_minutes: rng.gen_range(0.0..600.0),
                    recent_contacts: rng.gen_range(0..6),
                    past_escalations: rng.gen_range(0..2),
                };
                let p = truth.risk(&input).unwrap().probability;
                let y = rng.gen::<f64>() < p;
                (input, y)
            })
            .collect();
        let fit = EscalationModel::fit(&examples, 1e-6, "fitted").unwrap();
        assert!((fit.intercept - truth.intercept).abs() < 0.25, "{fit:?}");
        for (w, t) in fit.weights.iter().zip(&truth.weights) {
            assert!((w - t).abs() < 0.25, "{fit:?}");
        }
    }
}

//! Customer lifetime value: the BG/NBD model of purchase frequency (Fader, Hardie and Lee,
//! 2005) and the Gamma-Gamma model of spend per purchase (Fader, Hardie and Lee, 2005, "RFM
//! and CLV"), both fitted by maximum likelihood on per-customer summaries of a transaction log.
//!
//! Time is counted in days. A customer's summary follows the usual convention: purchases on the
//! same day are one purchase (their amounts added); `frequency` is the number of purchase days
//! after the first, `recency` the days from the first to the last, `t` the days from the first
//! to the end of observation, and `monetary` the mean amount of the purchase days after the
//! first (0 when there are none).

use std::collections::BTreeMap;
use std::path::Path;

use libm::lgamma;
use serde::{Deserialize, Serialize};

use crate::error::PredictError;
use crate::optimize::minimize;

/// One line of a transaction log.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub customer: String,
    /// Days since 1970-01-01.
    pub day: i64,
    pub amount: f64,
}

/// Days since 1970-01-01 of a `YYYYMMDD` date, if it is a real date.
pub fn parse_yyyymmdd(s: &str) -> Option<i64> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = s[0..4].parse().ok()?;
    let m: u32 = s[4..6].parse().ok()?;
    let d: u32 = s[6..8].parse().ok()?;
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if d == 0 || d > days_in_month {
        return None;
    }
    // Days from civil date (proleptic Gregorian), shifting the year to start in March.
    let (y, m) = if m <= 2 { (y - 1, m + 12) } else { (y, m) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m as i64 - 3) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Reads the CDNOW layout: whitespace-separated customer id, date `YYYYMMDD`, quantity and
/// amount, one purchase a line. A first line that is a header is skipped; blank lines are
/// ignored; any other line that does not fit is an error naming it.
pub fn read_cdnow(path: &Path) -> Result<Vec<Transaction>, PredictError> {
    let text = std::fs::read_to_string(path).map_err(|e| PredictError::io(path, e))?;
    parse_cdnow(&text, &path.display().to_string())
}

pub fn parse_cdnow(text: &str, name: &str) -> Result<Vec<Transaction>, PredictError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let bad = |message: String| PredictError::InvalidTransaction {
            path: name.to_string(),
            line: i as u64 + 1,
            message,
        };
        if i == 0 && fields.len() >= 2 && parse_yyyymmdd(fields[1]).is_none() {
            continue; // a header line
        }
        if fields.len() != 4 {
            return Err(bad(format!(
                "expected 4 fields (customer, YYYYMMDD, quantity, amount), found {}",
                fields.len()
            )));
        }
        let day = parse_yyyymmdd(fields[1])
            .ok_or_else(|| bad(format!("{:?} is not a date YYYYMMDD", fields[1])))?;
        fields[2]
            .parse::<f64>()
            .ok()
            .filter(|q| q.is_finite() && *q >= 0.0)
            .ok_or_else(|| {
                bad(format!(
                    "quantity {:?} is not a non-negative number",
                    fields[2]
                ))
            })?;
        let amount = fields[3]
            .parse::<f64>()
            .ok()
            .filter(|a| a.is_finite() && *a >= 0.0)
            .ok_or_else(|| {
                bad(format!(
                    "amount {:?} is not a non-negative number",
                    fields[3]
                ))
            })?;
        out.push(Transaction {
            customer: fields[0].to_string(),
            day,
            amount,
        });
    }
    if out.is_empty() {
        return Err(PredictError::InvalidTransaction {
            path: name.to_string(),
            line: 0,
            message: "no transactions".into(),
        });
    }
    Ok(out)
}

/// A customer's purchase history reduced to what the models read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerSummary {
    pub customer: String,
    pub frequency: f64,
    pub recency: f64,
    pub t: f64,
    pub monetary: f64,
}

/// Summaries per customer (sorted by id), observed up to `end` (default: the last day of the
/// log). Purchases after `end` are ignored.
pub fn summarize(tx: &[Transaction], end: Option<i64>) -> Vec<CustomerSummary> {
    let end = end.unwrap_or_else(|| tx.iter().map(|t| t.day).max().unwrap_or(0));
    let mut by_customer: BTreeMap<&str, BTreeMap<i64, f64>> = BTreeMap::new();
    for t in tx.iter().filter(|t| t.day <= end) {
        *by_customer
            .entry(&t.customer)
            .or_default()
            .entry(t.day)
            .or_insert(0.0) += t.amount;
    }
    by_customer
        .into_iter()
        .map(|(customer, days)| {
            let first = *days.keys().next().expect("a customer has a purchase");
            let last = *days.keys().next_back().expect("a customer has a purchase");
            let repeat: Vec<f64> = days.values().skip(1).copied().collect();
            CustomerSummary {
                customer: customer.to_string(),
                frequency: repeat.len() as f64,
                recency: (last - first) as f64,
                t: (end - first) as f64,
                monetary: if repeat.is_empty() {
                    0.0
                } else {
                    repeat.iter().sum::<f64>() / repeat.len() as f64
                },
            }
        })
        .collect()
}

/// BG/NBD parameters: purchase rates are Gamma(r, alpha) across customers (alpha in days),
/// the chance of dropping out after each purchase is Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

impl BgNbd {
    /// Log-likelihood of one customer's (frequency, recency, T).
    pub fn log_likelihood(&self, x: f64, t_x: f64, t: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let a1 = lgamma(r + x) - lgamma(r) + r * alpha.ln();
        let a2 = lgamma(a + b) + lgamma(b + x) - lgamma(b) - lgamma(a + b + x);
        let a3 = -(r + x) * (alpha + t).ln();
        if x > 0.0 {
            let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + t_x).ln();
            let hi = a3.max(a4);
            a1 + a2 + hi + ((a3 - hi).exp() + (a4 - hi).exp()).ln()
        } else {
            a1 + a2 + a3
        }
    }

    /// Fits by maximum likelihood over customers with positive `t`. Time is rescaled so the
    /// longest observation is 10 units while fitting (better conditioned), then alpha is
    /// scaled back to days.
    pub fn fit(customers: &[CustomerSummary]) -> Result<(BgNbd, f64), PredictError> {
        let rows: Vec<&CustomerSummary> = customers.iter().filter(|c| c.t > 0.0).collect();
        if rows.is_empty() {
            return Err(PredictError::FitFailed {
                model: "BG/NBD".into(),
                message: "no customer was observed for more than a day".into(),
            });
        }
        let scale = 10.0 / rows.iter().map(|c| c.t).fold(0.0, f64::max);
        let n = rows.len() as f64;
        let nll = |p: &[f64]| -> f64 {
            let m = BgNbd {
                r: p[0].exp(),
                alpha: p[1].exp(),
                a: p[2].exp(),
                b: p[3].exp(),
            };
            -rows
                .iter()
                .map(|c| m.log_likelihood(c.frequency, c.recency * scale, c.t * scale))
                .sum::<f64>()
                / n
        };
        let (p, f) = minimize(nll, &[0.1; 4], 0.5);
        let fitted = BgNbd {
            r: p[0].exp(),
            alpha: p[1].exp() / scale,
            a: p[2].exp(),
            b: p[3].exp(),
        };
        if !(f.is_finite()
            && [fitted.r, fitted.alpha, fitted.a, fitted.b]
                .iter()
                .all(|v| v.is_finite() && *v > 0.0))
        {
            return Err(PredictError::FitFailed {
                model: "BG/NBD".into(),
                message: format!("the likelihood ended at {f} with {fitted:?}"),
            });
        }
        Ok((fitted, -f * n))
    }

    /// Expected purchases in the next `horizon` days of a customer with this history.
    pub fn expected_purchases(&self, horizon: f64, x: f64, t_x: f64, t: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let hyp = hyp2f1(
            r + x,
            b + x,
            a + b + x - 1.0,
            horizon / (alpha + t + horizon),
        );
        let first = (a + b + x - 1.0) / (a - 1.0);
        let second = 1.0 - hyp * ((alpha + t) / (alpha + t + horizon)).powf(r + x);
        let denom = if x > 0.0 {
            1.0 + (a / (b + x - 1.0)) * ((alpha + t) / (alpha + t_x)).powf(r + x)
        } else {
            1.0
        };
        first * second / denom
    }
}

/// Gauss hypergeometric function 2F1(a, b; c; z) by its power series, for 0 <= z < 1.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 0..1_000_000 {
        let k = n as f64;
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        if term.abs() <= 1e-17 * sum.abs() {
            break;
        }
    }
    sum
}

/// Gamma-Gamma parameters: a customer's mean spend per purchase has scale drawn from
/// Gamma(q, v), each purchase being Gamma(p, scale).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

impl GammaGamma {
    /// Log-likelihood of one customer's mean spend `m` over `x` purchases.
    pub fn log_likelihood(&self, x: f64, m: f64) -> f64 {
        let GammaGamma { p, q, v } = *self;
        lgamma(p * x + q) - lgamma(p * x) - lgamma(q)
            + q * v.ln()
            + (p * x - 1.0) * m.ln()
            + p * x * x.ln()
            - (p * x + q) * (x * m + v).ln()
    }

    /// Fits by maximum likelihood over customers with at least one repeat purchase and a
    /// positive mean spend (the others carry no information on spend).
    pub fn fit(customers: &[CustomerSummary]) -> Result<(GammaGamma, f64, usize), PredictError> {
        let rows: Vec<&CustomerSummary> = customers
            .iter()
            .filter(|c| c.frequency > 0.0 && c.monetary > 0.0)
            .collect();
        if rows.len() < 2 {
            return Err(PredictError::FitFailed {
                model: "Gamma-Gamma".into(),
                message: "fewer than two customers with a repeat purchase of positive value".into(),
            });
        }
        let n = rows.len() as f64;
        let nll = |p: &[f64]| -> f64 {
            let m = GammaGamma {
                p: p[0].exp(),
                q: p[1].exp(),
                v: p[2].exp(),
            };
            -rows
                .iter()
                .map(|c| m.log_likelihood(c.frequency, c.monetary))
                .sum::<f64>()
                / n
        };
        let (p, f) = minimize(nll, &[0.1; 3], 0.5);
        let fitted = GammaGamma {
            p: p[0].exp(),
            q: p[1].exp(),
            v: p[2].exp(),
        };
        if !(f.is_finite()
            && [fitted.p, fitted.q, fitted.v]
                .iter()
                .all(|v| v.is_finite() && *v > 0.0))
        {
            return Err(PredictError::FitFailed {
                model: "Gamma-Gamma".into(),
                message: format!("the likelihood ended at {f} with {fitted:?}"),
            });
        }
        Ok((fitted, -f * n, rows.len()))
    }

    /// Expected mean spend per purchase of a customer with `x` repeat purchases of mean `m`
    /// (the population mean when `x` is 0). Defined for q > 1.
    pub fn expected_average_value(&self, x: f64, m: f64) -> Option<f64> {
        let GammaGamma { p, q, v } = *self;
        (q > 1.0).then(|| p * (v + x * m) / (p * x + q - 1.0))
    }
}

/// One customer's expectations over a horizon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerValue {
    #[serde(flatten)]
    pub summary: CustomerSummary,
    pub expected_purchases: f64,
    pub expected_average_value: Option<f64>,
    /// Expected purchases times expected value per purchase, undiscounted.
    pub expected_value: Option<f64>,
}

/// Both models fitted on one log.
#[derive(Debug, Clone, Serialize)]
pub struct ClvFit {
    pub customers: usize,
    pub transactions: usize,
    pub bgnbd: BgNbd,
    pub bgnbd_log_likelihood: f64,
    pub gamma_gamma: GammaGamma,
    pub gamma_gamma_log_likelihood: f64,
    pub gamma_gamma_customers: usize,
    pub horizon_days: f64,
    pub values: Vec<CustomerValue>,
}

/// Summarises `tx`, fits both models and computes every customer's expectations.
pub fn fit(
    tx: &[Transaction],
    end: Option<i64>,
    horizon_days: f64,
) -> Result<ClvFit, PredictError> {
    if !(horizon_days.is_finite() && horizon_days > 0.0) {
        return Err(PredictError::InvalidParameter(
            "the horizon must be a positive number of days".into(),
        ));
    }
    let summaries = summarize(tx, end);
    let (bg, bg_ll) = BgNbd::fit(&summaries)?;
    let (gg, gg_ll, gg_n) = GammaGamma::fit(&summaries)?;
    let values = summaries
        .into_iter()
        .map(|s| {
            let purchases = bg.expected_purchases(horizon_days, s.frequency, s.recency, s.t);
            let avg = gg.expected_average_value(s.frequency, s.monetary);
            CustomerValue {
                expected_purchases: purchases,
                expected_average_value: avg,
                expected_value: avg.map(|a| a * purchases),
                summary: s,
            }
        })
        .collect::<Vec<_>>();
    Ok(ClvFit {
        customers: values.len(),
        transactions: tx.len(),
        bgnbd: bg,
        bgnbd_log_likelihood: bg_ll,
        gamma_gamma: gg,
        gamma_gamma_log_likelihood: gg_ll,
        gamma_gamma_customers: gg_n,
        horizon_days,
        values,
    })
}

/// The model format [`ClvModel`] writes; older formats keep loading.
pub const CLV_FORMAT: u32 = 1;

/// The four inputs a customer's value depends on, in the order explanations list them.
pub const CLV_INPUTS: [&str; 4] = [
    "repeat_purchases",
    "days_first_to_last",
    "days_since_first",
    "average_spend",
];

/// Both fitted models as a workspace stores them, with the horizon values are computed over
/// and the reference customer explanations compare against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvModel {
    pub format: u32,
    pub bgnbd: BgNbd,
    pub gamma_gamma: GammaGamma,
    pub horizon_days: f64,
    /// The mean summary of the customers it was fitted on: the "typical customer" whose value
    /// explanations start from.
    pub reference: CustomerSummary,
}

/// One input's share of the difference between a customer's value and the reference's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClvContribution {
    pub input: &'static str,
    pub value: f64,
    pub reference: f64,
    /// In money over the horizon; the contributions add up to value minus reference value.
    pub contribution: f64,
}

/// A customer's value with the reasons for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClvExplanation {
    pub value: CustomerValue,
    pub reference_value: f64,
    pub contributions: Vec<ClvContribution>,
}

impl ClvModel {
    /// Fits both models on the summaries (see [`BgNbd::fit`] and [`GammaGamma::fit`]).
    pub fn fit(summaries: &[CustomerSummary], horizon_days: f64) -> Result<ClvModel, PredictError> {
        if !(horizon_days.is_finite() && horizon_days > 0.0) {
            return Err(PredictError::InvalidParameter(
                "the horizon must be a positive number of days".into(),
            ));
        }
        let (bgnbd, _) = BgNbd::fit(summaries)?;
        let (gamma_gamma, _, _) = GammaGamma::fit(summaries)?;
        if gamma_gamma.q <= 1.0 {
            return Err(PredictError::FitFailed {
                model: "Gamma-Gamma".into(),
                message: format!(
                    "q = {:.3} leaves the mean spend undefined (needs q > 1)",
                    gamma_gamma.q
                ),
            });
        }
        let n = summaries.len().max(1) as f64;
        let mean = |f: &dyn Fn(&CustomerSummary) -> f64| summaries.iter().map(f).sum::<f64>() / n;
        let repeaters: Vec<&CustomerSummary> =
            summaries.iter().filter(|s| s.frequency > 0.0).collect();
        let reference = CustomerSummary {
            customer: "reference".into(),
            frequency: mean(&|s| s.frequency),
            recency: mean(&|s| s.recency),
            t: mean(&|s| s.t),
            monetary: if repeaters.is_empty() {
                0.0
            } else {
                repeaters.iter().map(|s| s.monetary).sum::<f64>() / repeaters.len() as f64
            },
        };
        Ok(ClvModel {
            format: CLV_FORMAT,
            bgnbd,
            gamma_gamma,
            horizon_days,
            reference,
        })
    }

    /// Reads a stored model, refusing formats this build does not know.
    pub fn from_json(body: &str) -> Result<ClvModel, PredictError> {
        let m: ClvModel = serde_json::from_str(body).map_err(|e| PredictError::ModelInvalid {
            path: "lifetime-value model".into(),
            message: e.to_string(),
        })?;
        if m.format == 0 || m.format > CLV_FORMAT {
            return Err(PredictError::ModelVersion {
                path: "lifetime-value model".into(),
                found: u64::from(m.format),
                supported: CLV_FORMAT,
            });
        }
        Ok(m)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a model serialises")
    }

    /// Expected value over the horizon of a customer with this summary, as a plain number.
    fn value_of(&self, x: f64, t_x: f64, t: f64, m: f64) -> f64 {
        // A recency beyond the observation is impossible; keep the mixed inputs of an
        // explanation's coalitions inside the model's domain.
        let t_x = t_x.min(t);
        let purchases = self.bgnbd.expected_purchases(self.horizon_days, x, t_x, t);
        let spend = self.gamma_gamma.expected_average_value(x, m).unwrap_or(0.0);
        purchases * spend
    }

    /// A customer's expected purchases, spend and value over the horizon.
    pub fn value(&self, s: &CustomerSummary) -> CustomerValue {
        let purchases =
            self.bgnbd
                .expected_purchases(self.horizon_days, s.frequency, s.recency, s.t);
        let avg = self
            .gamma_gamma
            .expected_average_value(s.frequency, s.monetary);
        CustomerValue {
            summary: s.clone(),
            expected_purchases: purchases,
            expected_average_value: avg,
            expected_value: avg.map(|a| a * purchases),
        }
    }

    /// The value with exact Shapley contributions of the four inputs against the reference
    /// customer: each input's average effect, over every order of switching the reference's
    /// inputs to the customer's, on the value. They add up to the customer's value minus the
    /// reference's.
    pub fn explain(&self, s: &CustomerSummary) -> ClvExplanation {
        let own = [s.frequency, s.recency, s.t, s.monetary];
        let r = &self.reference;
        let base = [r.frequency, r.recency, r.t, r.monetary];
        let at = |mask: u8| {
            let pick = |i: usize| {
                if mask & (1 << i) != 0 {
                    own[i]
                } else {
                    base[i]
                }
            };
            self.value_of(pick(0), pick(1), pick(2), pick(3))
        };
        let values: Vec<f64> = (0..16u8).map(at).collect();
        // Shapley weights for 4 players: |S|! (n - |S| - 1)! / n!.
        let weight = |size: u32| match size {
            0 | 3 => 6.0 / 24.0,
            _ => 2.0 / 24.0,
        };
        let contributions = (0..4)
            .map(|i| {
                let bit = 1u8 << i;
                let c: f64 = (0..16u8)
                    .filter(|m| m & bit == 0)
                    .map(|m| {
                        weight(m.count_ones()) * (values[(m | bit) as usize] - values[m as usize])
                    })
                    .sum();
                ClvContribution {
                    input: CLV_INPUTS[i],
                    value: own[i],
                    reference: base[i],
                    contribution: c,
                }
            })
            .collect();
        ClvExplanation {
            value: self.value(s),
            reference_value: values[0],
            contributions,
        }
    }
}

/// How well a model fitted on the older part of a log predicted the purchases of the newest
/// `holdout_days` that it did not see.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClvEvaluation {
    pub customers: usize,
    pub holdout_days: f64,
    pub actual_purchases: f64,
    pub predicted_purchases: f64,
    /// Mean absolute error of purchases per customer in the holdout.
    pub mae: f64,
    /// The same for the naive forecast: each customer's past purchase rate kept up.
    pub naive_mae: f64,
    /// Pearson correlation of predicted and actual purchases per customer.
    pub correlation: Option<f64>,
}

/// Fits on purchases up to `end - holdout_days` and compares each customer's expected
/// purchases in the holdout with what they bought then (purchase days, as the model counts).
pub fn evaluate_holdout(
    tx: &[Transaction],
    end: i64,
    holdout_days: i64,
) -> Result<ClvEvaluation, PredictError> {
    if holdout_days < 1 {
        return Err(PredictError::InvalidParameter(
            "the holdout must be at least one day".into(),
        ));
    }
    let cut = end - holdout_days;
    let calibration = summarize(tx, Some(cut));
    let (bg, _) = BgNbd::fit(&calibration)?;
    let mut bought: BTreeMap<&str, std::collections::BTreeSet<i64>> = BTreeMap::new();
    for t in tx.iter().filter(|t| t.day > cut && t.day <= end) {
        bought.entry(&t.customer).or_default().insert(t.day);
    }
    let h = holdout_days as f64;
    let (mut actual, mut predicted, mut err, mut naive) = (0.0, 0.0, 0.0, 0.0);
    let mut pairs = Vec::with_capacity(calibration.len());
    for c in calibration.iter().filter(|c| c.t > 0.0) {
        let y = bought.get(c.customer.as_str()).map_or(0, |d| d.len()) as f64;
        let p = bg.expected_purchases(h, c.frequency, c.recency, c.t);
        let rate = c.frequency / c.t;
        actual += y;
        predicted += p;
        err += (p - y).abs();
        naive += (rate * h - y).abs();
        pairs.push((p, y));
    }
    let n = pairs.len();
    if n == 0 {
        return Err(PredictError::FitFailed {
            model: "BG/NBD".into(),
            message: "no customer was observed before the holdout".into(),
        });
    }
    Ok(ClvEvaluation {
        customers: n,
        holdout_days: h,
        actual_purchases: actual,
        predicted_purchases: predicted,
        mae: err / n as f64,
        naive_mae: naive / n as f64,
        correlation: pearson(&pairs),
    })
}

fn pearson(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len() as f64;
    let (mx, my) = pairs
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx).powi(2);
        syy += (y - my).powi(2);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> Vec<Transaction> {
        // A seeded synthetic shop: customers buy at their own rate until they drop out.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut tx = Vec::new();
        for c in 0..600 {
            let first = rng.gen_range(0..200i64);
            let rate = rng.gen_range(0.005..0.08);
            let spend = rng.gen_range(10.0..120.0);
            let mut day = first;
            tx.push(Transaction {
                customer: format!("c{c}"),
                day,
                amount: spend,
            });
            loop {
                day += (-(1.0f64 - rng.gen::<f64>()).ln() / rate).ceil() as i64;
                if day > 400 || rng.gen::<f64>() < 0.15 {
                    break;
                }
                tx.push(Transaction {
                    customer: format!("c{c}"),
                    day,
                    amount: spend * rng.gen_range(0.7..1.3),
                });
            }
        }
        tx
    }

    #[test]
    fn explanations_add_up_to_the_difference_from_the_reference() {
        let s = summarize(&shop(), Some(400));
        let m = ClvModel::fit(&s, 365.0).unwrap();
        for c in s.iter().take(50) {
            let e = m.explain(c);
            let total: f64 = e.contributions.iter().map(|c| c.contribution).sum();
            let v = e.value.expected_value.unwrap();
            assert!(
                (e.reference_value + total - v).abs() < 1e-6 * v.abs().max(1.0),
                "{e:?}"
            );
        }
        // More repeat purchases, recently, is worth more than none.
        let loyal = CustomerSummary {
            customer: "a".into(),
            frequency: 8.0,
            recency: 190.0,
            t: 200.0,
            monetary: 50.0,
        };
        let gone = CustomerSummary {
            customer: "b".into(),
            frequency: 8.0,
            recency: 20.0,
            t: 200.0,
            monetary: 50.0,
        };
        assert!(m.value(&loyal).expected_value > m.value(&gone).expected_value);
        let e = m.explain(&gone);
        let rec = e
            .contributions
            .iter()
            .find(|c| c.input == "days_first_to_last")
            .unwrap();
        assert!(rec.contribution < 0.0, "{e:?}");
    }

    #[test]
    fn the_stored_model_round_trips_and_unknown_formats_are_refused() {
        let s = summarize(&shop(), Some(400));
        let m = ClvModel::fit(&s, 90.0).unwrap();
        let back = ClvModel::from_json(&m.to_json()).unwrap();
        assert_eq!(back, m);
        let newer = m.to_json().replace("\"format\":1", "\"format\":99");
        assert!(ClvModel::from_json(&newer).is_err());
    }

    #[test]
    fn the_holdout_forecast_beats_keeping_past_rates() {
        let e = evaluate_holdout(&shop(), 400, 60).unwrap();
        assert!(e.customers > 400);
        assert!(e.mae < e.naive_mae, "{e:?}");
        assert!(e.correlation.unwrap() > 0.3, "{e:?}");
        assert!(
            (e.predicted_purchases / e.actual_purchases - 1.0).abs() < 0.35,
            "{e:?}"
        );
    }

    #[test]
    fn dates_count_days_from_the_epoch() {
        assert_eq!(parse_yyyymmdd("19700101"), Some(0));
        assert_eq!(parse_yyyymmdd("19970101"), Some(9862));
        assert_eq!(parse_yyyymmdd("20000301"), Some(11017));
        assert_eq!(parse_yyyymmdd("19970230"), None);
        assert_eq!(parse_yyyymmdd("1997011"), None);
    }

    #[test]
    fn summaries_merge_same_day_purchases_and_skip_the_first() {
        let text = "id date qty amount\n1 19970101 1 10\n1 19970101 2 5\n1 19970111 1 20\n1 19970121 1 40\n2 19970115 1 7\n";
        let tx = parse_cdnow(text, "t").unwrap();
        let s = summarize(&tx, None);
        assert_eq!(s[0].frequency, 2.0);
        assert_eq!(s[0].recency, 20.0);
        assert_eq!(s[0].t, 20.0);
        assert_eq!(s[0].monetary, 30.0);
        assert_eq!((s[1].frequency, s[1].t, s[1].monetary), (0.0, 6.0, 0.0));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse_cdnow("1 19970101 1 10\n2 1997-01-02 1 3\n", "t").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = parse_cdnow("1 19970101 1 -3\n", "t").unwrap_err();
        assert!(e.to_string().contains("amount"), "{e}");
    }

    #[test]
    fn hypergeometric_series_matches_closed_forms() {
        // 2F1(1, 1; 2; z) = -ln(1 - z) / z
        let z = 0.6;
        assert!((hyp2f1(1.0, 1.0, 2.0, z) + (1.0f64 - z).ln() / z).abs() < 1e-12);
        // 2F1(a, b; b; z) = (1 - z)^-a
        assert!((hyp2f1(2.5, 1.3, 1.3, 0.3) - 0.7f64.powf(-2.5)).abs() < 1e-12);
    }

    /// A customer with no repeat purchase contributes the closed-form likelihood
    /// B(a, b)-ratio times the NBD term; check the log-likelihood against it.
    #[test]
    fn bgnbd_likelihood_of_a_one_time_buyer() {
        let m = BgNbd {
            r: 0.5,
            alpha: 3.0,
            a: 0.8,
            b: 2.0,
        };
        let t = 10.0;
        let expected = (m.alpha / (m.alpha + t)).powf(m.r);
        assert!((m.log_likelihood(0.0, 0.0, t) - expected.ln()).abs() < 1e-12);
    }
}

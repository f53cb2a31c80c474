//! Scoring one record against a handful of candidate records with a fixed, shipped model:
//! the path behind `POST /v1/match`, where there is no table to train on. The embedded
//! people model (`people_model.json`) holds comparisons and m/u-probabilities estimated by
//! EM on the synthetic benchmark population (`rapport bench match-data --records 100000
//! --seed 7`, settings `bench/splink/settings.toml`); the prior comes from the caller, as one
//! over the number of profiles a record could be.
//!
//! Values are read from Segment-style traits after standardisation: `firstName`,
//! `lastName` (or the first and last words of `name`), `email`, `phone`, `birthday`, and the
//! `address` object's `street` and `postalCode`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::data::Dataset;
use super::model::TrainedModel;
use super::model::{pair_levels, probability_from_weight, EmParams, PreparedTable, Segment};
use super::pipeline::FieldContribution;
use super::settings::{Comparison, Level, MatchSettings, Preprocess, TrainingSettings};

/// A record's matchable values by field name (`first_name`, `last_name`, `email`, `phone`,
/// `dob`, `address`, `postcode`).
pub type Fields = BTreeMap<String, String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShippedComparison {
    column: String,
    preprocess: Preprocess,
    levels: Vec<Level>,
    /// m per level: null first, the listed levels, `else` last.
    m: Vec<f64>,
    u: Vec<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShippedModel {
    name: String,
    version: String,
    source: String,
    comparisons: Vec<ShippedComparison>,
}

/// The score of one candidate, with each field's part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeScore {
    pub match_weight: f64,
    pub match_probability: f64,
    pub fields: Vec<FieldContribution>,
}

/// A fixed Fellegi-Sunter model for single records.
#[derive(Debug, Clone)]
pub struct PeopleModel {
    pub name: String,
    pub version: String,
    /// Where the parameters came from.
    pub source: String,
    settings: MatchSettings,
    model: TrainedModel,
}

impl PeopleModel {
    /// The model shipped in the crate.
    pub fn embedded() -> &'static PeopleModel {
        static MODEL: OnceLock<PeopleModel> = OnceLock::new();
        MODEL.get_or_init(|| {
            Self::from_json(include_str!("people_model.json"))
                .expect("the shipped people model is valid (checked by a test)")
        })
    }

    fn from_json(text: &str) -> Result<Self, String> {
        let shipped: ShippedModel = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut m = Vec::new();
        let mut u = Vec::new();
        let mut comparisons = Vec::new();
        for c in shipped.comparisons {
            if c.m.len() != c.levels.len() + 2 || c.u.len() != c.levels.len() + 2 {
                return Err(format!(
                    "{}: m and u need null, each level and else",
                    c.column
                ));
            }
            m.push(c.m);
            u.push(c.u);
            comparisons.push(Comparison {
                column: c.column,
                preprocess: c.preprocess,
                levels: c.levels,
                term_frequency: false,
            });
        }
        let settings = MatchSettings {
            blocking_rules: Vec::new(),
            comparisons,
            training: TrainingSettings::default(),
        };
        let columns: Vec<String> = settings
            .comparisons
            .iter()
            .map(|c| c.column.clone())
            .collect();
        settings.validate(&columns).map_err(|e| e.to_string())?;
        let n = settings.comparisons.len();
        let params = EmParams { lambda: 0.5, m, u };
        let model =
            TrainedModel::from_params(&settings, &params, 0.5, (0, true), 0, &vec![false; n]);
        Ok(Self {
            name: shipped.name,
            version: shipped.version,
            source: shipped.source,
            settings,
            model,
        })
    }

    /// The fields the model compares.
    pub fn columns(&self) -> Vec<String> {
        self.settings
            .comparisons
            .iter()
            .map(|c| c.column.clone())
            .collect()
    }

    /// Scores `probe` against each candidate, given the prior probability that the probe is
    /// any one given candidate. Results are in the candidates' order.
    pub fn score(&self, probe: &Fields, candidates: &[Fields], prior: f64) -> Vec<ProbeScore> {
        if candidates.is_empty() {
            return Vec::new();
        }
        let columns = self.columns();
        let records = std::iter::once(probe)
            .chain(candidates)
            .enumerate()
            .map(|(i, f)| super::data::Record {
                id: i.to_string(),
                values: columns.iter().map(|c| f.get(c).cloned()).collect(),
            })
            .collect();
        let Ok(data) = Dataset::new("probe", columns, records) else {
            // Ids are 0..n, so they are unique and every row has every column.
            return Vec::new();
        };
        let segments = |c: &str| {
            vec![Segment {
                column: data.column(c),
                len: data.len(),
            }]
        };
        let table = PreparedTable::new(&self.settings, &segments);
        let prior = prior.clamp(1e-12, 1.0 - 1e-12);
        let prior_weight = (prior / (1.0 - prior)).log2();
        let mut levels = vec![0u8; self.settings.comparisons.len()];
        (1..data.len())
            .map(|i| {
                pair_levels(&self.settings, &table, 0, i, &mut levels);
                let fields: Vec<FieldContribution> = self
                    .model
                    .comparisons
                    .iter()
                    .zip(&levels)
                    .map(|(c, &l)| FieldContribution {
                        column: c.column.clone(),
                        level: c.levels[l as usize].label.clone(),
                        log2_bayes_factor: c.levels[l as usize].log2_bayes_factor,
                    })
                    .collect();
                let match_weight =
                    prior_weight + fields.iter().map(|f| f.log2_bayes_factor).sum::<f64>();
                ProbeScore {
                    match_weight,
                    match_probability: probability_from_weight(match_weight),
                    fields,
                }
            })
            .collect()
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The matchable fields of a set of traits: the standardised value where there is one, the
/// raw value otherwise. Accepts Segment's camelCase names and snake_case ones.
pub fn fields_from_traits(standardized: &Map<String, Value>, raw: &Map<String, Value>) -> Fields {
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| text(standardized.get(*n)).or_else(|| text(raw.get(*n))))
    };
    let mut f = Fields::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            f.insert(k.to_owned(), v);
        }
    };
    let full = get(&["name"]);
    let words: Vec<&str> = full
        .as_deref()
        .map_or(Vec::new(), |n| n.split_whitespace().collect());
    put(
        "first_name",
        get(&["firstName", "first_name"])
            .or_else(|| (words.len() > 1).then(|| words[0].to_owned())),
    );
    put(
        "last_name",
        get(&["lastName", "last_name"])
            .or_else(|| (words.len() > 1).then(|| words[words.len() - 1].to_owned())),
    );
    put("email", get(&["email"]));
    put("phone", get(&["phone"]));
    put("dob", get(&["birthday", "dob", "date_of_birth"]));
    let address = |names: &[&str]| {
        let sub = |m: &Map<String, Value>| -> Option<String> {
            let a = m.get("address")?.as_object()?;
            names.iter().find_map(|n| text(a.get(*n)))
        };
        sub(standardized).or_else(|| sub(raw))
    };
    put("address", address(&["street", "line1", "street_address"]));
    put(
        "postcode",
        address(&["postalCode", "postal_code", "postcode", "zip"])
            .or_else(|| get(&["postcode", "zip"])),
    );
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        let m = v.as_object().cloned().unwrap_or_default();
        fields_from_traits(&Map::new(), &m)
    }

    #[test]
    fn the_shipped_model_loads_and_ranks_the_same_person_first() {
        let m = PeopleModel::embedded();
        assert_eq!(m.columns().len(), 7);
        let probe =
            fields(json!({"name": "Ada Lovelace", "email": "ada@x.io", "birthday": "1815-12-10"}));
        let same = fields(
            json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@x.io",
            "birthday": "1815-12-10", "phone": "+12025550143"}),
        );
        let typo =
            fields(json!({"firstName": "Adah", "lastName": "Lovelace", "birthday": "1815-12-10"}));
        let other = fields(
            json!({"firstName": "Bob", "lastName": "Lovelace", "email": "bob@x.io",
            "birthday": "1990-01-01"}),
        );
        let s = m.score(&probe, &[other, same, typo], 1e-4);
        assert_eq!(s.len(), 3);
        assert!(s[1].match_probability > 0.99, "{s:?}");
        assert!(s[1].match_weight > s[2].match_weight && s[2].match_weight > s[0].match_weight);
        assert!(s[0].match_probability < 0.01);
        // Missing values say nothing; the sum of the parts is the weight.
        let phone = s[1]
            .fields
            .iter()
            .find(|f| f.column == "phone")
            .expect("phone");
        assert_eq!(
            (phone.level.as_str(), phone.log2_bayes_factor),
            ("null", 0.0)
        );
        for x in &s {
            let sum: f64 = x.fields.iter().map(|f| f.log2_bayes_factor).sum();
            assert!((sum + (1e-4f64 / (1.0 - 1e-4)).log2() - x.match_weight).abs() < 1e-9);
        }
    }

    #[test]
    fn fields_come_from_standardised_traits_first() {
        let raw = json!({"email": "Ada@X.io", "name": "Ada King Lovelace",
            "address": {"street": "12 Oak St", "postalCode": "94105"}});
        let std = json!({"email": "ada@x.io"});
        let f = fields_from_traits(std.as_object().expect("obj"), raw.as_object().expect("obj"));
        assert_eq!(f["email"], "ada@x.io");
        assert_eq!(f["first_name"], "Ada");
        assert_eq!(f["last_name"], "Lovelace");
        assert_eq!(f["postcode"], "94105");
        assert_eq!(f["address"], "12 Oak St");
    }
}

//! Matching settings: comparisons with ordered levels, blocking rules, training knobs. Read
//! from TOML, checked against the data's columns as a whole, printable back to TOML, and
//! inferable from column names and values when none are given.
//!
//! ```toml
//! blocking_rules = [["phone:digits"], ["name:first3"]]
//!
//! [[comparisons]]
//! column = "name"
//! preprocess = "clean"
//! term_frequency = true
//! levels = [{ type = "exact" }, { type = "jaro_winkler", min = 0.92 }, { type = "jaro_winkler", min = 0.8 }]
//! ```
//!
//! Every comparison also has an implicit first level `null` (either side missing, weight 0)
//! and an implicit last level `else` (no listed level satisfied).

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

use super::data::Dataset;
use crate::error::IdentityError;
use crate::standardize::{DateOrder, IsoDate};

/// One agreement level of a comparison; levels are tried in order and the first satisfied is
/// chosen, so list the strictest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Level {
    /// Equal after preprocessing.
    Exact,
    /// Jaro-Winkler similarity at least `min`.
    JaroWinkler { min: f64 },
    /// Levenshtein distance at most `max`.
    Levenshtein { max: usize },
    /// Damerau-Levenshtein distance at most `max`.
    DamerauLevenshtein { max: usize },
    /// Jaccard similarity of word sets at least `min`.
    TokenJaccard { min: f64 },
    /// Both parse as dates at most `max` days apart.
    DateDays { max: i64 },
    /// Both parse as numbers at most `max` apart.
    NumericAbs { max: f64 },
    /// Both parse as numbers whose difference is at most `max` times the larger magnitude.
    NumericRel { max: f64 },
}

impl Level {
    /// A short label for output files and explanations (`jaro_winkler>=0.92`).
    pub fn label(&self) -> String {
        match self {
            Level::Exact => "exact".into(),
            Level::JaroWinkler { min } => format!("jaro_winkler>={min}"),
            Level::Levenshtein { max } => format!("levenshtein<={max}"),
            Level::DamerauLevenshtein { max } => format!("damerau_levenshtein<={max}"),
            Level::TokenJaccard { min } => format!("token_jaccard>={min}"),
            Level::DateDays { max } => format!("date_days<={max}"),
            Level::NumericAbs { max } => format!("numeric_abs<={max}"),
            Level::NumericRel { max } => format!("numeric_rel<={max}"),
        }
    }

    fn to_toml(&self) -> String {
        match self {
            Level::Exact => "{ type = \"exact\" }".into(),
            Level::JaroWinkler { min } => format!("{{ type = \"jaro_winkler\", min = {min:?} }}"),
            Level::Levenshtein { max } => format!("{{ type = \"levenshtein\", max = {max} }}"),
            Level::DamerauLevenshtein { max } => {
                format!("{{ type = \"damerau_levenshtein\", max = {max} }}")
            }
            Level::TokenJaccard { min } => format!("{{ type = \"token_jaccard\", min = {min:?} }}"),
            Level::DateDays { max } => format!("{{ type = \"date_days\", max = {max} }}"),
            Level::NumericAbs { max } => format!("{{ type = \"numeric_abs\", max = {max:?} }}"),
            Level::NumericRel { max } => format!("{{ type = \"numeric_rel\", max = {max:?} }}"),
        }
    }

    fn check(&self) -> Option<String> {
        match self {
            Level::JaroWinkler { min } | Level::TokenJaccard { min }
                if !(0.0..=1.0).contains(min) =>
            {
                Some(format!("{} needs min in [0, 1]", self.label()))
            }
            Level::DateDays { max } if *max < 0 => Some("date_days needs max >= 0".into()),
            Level::NumericAbs { max } | Level::NumericRel { max } if max.is_nan() || *max < 0.0 => {
                Some(format!("{} needs max >= 0", self.label()))
            }
            _ => None,
        }
    }
}

/// How values are prepared before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preprocess {
    /// Trimmed only.
    Raw,
    /// NFKC, lowercase, whitespace collapsed.
    Lower,
    /// As `lower`, plus accents removed and punctuation dropped.
    #[default]
    Clean,
    /// ASCII digits only (phone numbers).
    Digits,
}

impl Preprocess {
    fn as_str(self) -> &'static str {
        match self {
            Preprocess::Raw => "raw",
            Preprocess::Lower => "lower",
            Preprocess::Clean => "clean",
            Preprocess::Digits => "digits",
        }
    }
}

/// How one column is compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    pub column: String,
    #[serde(default)]
    pub preprocess: Preprocess,
    pub levels: Vec<Level>,
    /// Weigh exact agreement by how rare the value is (a shared rare surname says more than
    /// a shared common one).
    #[serde(default)]
    pub term_frequency: bool,
}

/// Knobs of training; defaults suit tables up to a few million records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingSettings {
    /// Seed for sampling random pairs (results are reproducible).
    pub seed: u64,
    /// Random pairs sampled to estimate u-probabilities (all pairs if fewer exist).
    pub u_sample_pairs: usize,
    pub em_max_iterations: usize,
    /// EM stops when no parameter moves more than this.
    pub em_tolerance: f64,
    /// Refuse to score more candidate pairs than this.
    pub max_candidate_pairs: u64,
    /// How to read ambiguous numeric dates for date comparisons.
    pub date_order: DateOrder,
    /// Keep the u-probabilities of random pairs fixed during EM (as Splink does by default)
    /// instead of re-estimating them among the candidates.
    pub em_fix_u: bool,
    /// Columns that different people living or working together often share (address,
    /// postcode, phone, surname, a family email). When set, EM learns a third class for such
    /// pairs beside match and non-match, and pairs that look like a household rather than
    /// one person are scored down (see `HouseholdParams`). Empty: the two-class model.
    pub household_columns: Vec<String>,
}

impl Default for TrainingSettings {
    fn default() -> Self {
        Self {
            seed: 42,
            u_sample_pairs: 1_000_000,
            em_max_iterations: 100,
            em_tolerance: 1e-6,
            max_candidate_pairs: 50_000_000,
            date_order: DateOrder::DayFirst,
            em_fix_u: false,
            household_columns: Vec::new(),
        }
    }
}

/// A derived key used by blocking rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTransform {
    /// The cleaned value.
    Exact,
    /// The first n characters of the cleaned value.
    First(usize),
    /// The last n characters of the cleaned value.
    Last(usize),
    /// Soundex of the cleaned value.
    Soundex,
    /// Digits only.
    Digits,
}

/// One part of a blocking rule: `column`, `column:first3`, `column:last4`, `column:soundex`,
/// `column:digits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingKey {
    pub column: String,
    pub transform: KeyTransform,
}

impl BlockingKey {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (column, t) = match spec.rsplit_once(':') {
            Some((c, t)) => (c.trim(), t.trim()),
            None => (spec.trim(), "exact"),
        };
        let num = |prefix: &str| -> Option<usize> {
            t.strip_prefix(prefix)
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > 0)
        };
        let transform = match t {
            "exact" => KeyTransform::Exact,
            "soundex" => KeyTransform::Soundex,
            "digits" => KeyTransform::Digits,
            _ => match (num("first"), num("last")) {
                (Some(n), _) => KeyTransform::First(n),
                (_, Some(n)) => KeyTransform::Last(n),
                _ => return Err(format!("blocking key {spec:?}: unknown transform {t:?}")),
            },
        };
        if column.is_empty() {
            return Err(format!("blocking key {spec:?} has no column"));
        }
        Ok(Self {
            column: column.to_owned(),
            transform,
        })
    }
}

/// Settings of a matching run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSettings {
    /// Each rule is a list of keys that must all be equal; a pair is a candidate when any
    /// rule holds. No rules: every pair is a candidate (within `max_candidate_pairs`).
    #[serde(default)]
    pub blocking_rules: Vec<Vec<String>>,
    pub comparisons: Vec<Comparison>,
    #[serde(default)]
    pub training: TrainingSettings,
}

impl MatchSettings {
    /// Parses TOML settings (not yet checked against data; see [`MatchSettings::validate`]).
    pub fn from_toml(text: &str) -> Result<Self, IdentityError> {
        Ok(toml::from_str(text)?)
    }

    /// Checks the settings against the columns available, reporting every problem at once.
    pub fn validate(&self, columns: &[String]) -> Result<Vec<Vec<BlockingKey>>, IdentityError> {
        let mut problems = Vec::new();
        if self.comparisons.is_empty() {
            problems.push("at least one comparison is needed".to_owned());
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.comparisons {
            if !columns.contains(&c.column) {
                problems.push(format!(
                    "comparison column {:?} is not in the data",
                    c.column
                ));
            }
            if !seen.insert(&c.column) {
                problems.push(format!("column {:?} is compared twice", c.column));
            }
            if c.levels.is_empty() {
                problems.push(format!("comparison {:?} has no levels", c.column));
            }
            if c.levels.len() > 20 {
                problems.push(format!("comparison {:?} has more than 20 levels", c.column));
            }
            problems.extend(
                c.levels
                    .iter()
                    .filter_map(Level::check)
                    .map(|p| format!("{}: {p}", c.column)),
            );
        }
        let mut rules = Vec::new();
        for rule in &self.blocking_rules {
            if rule.is_empty() {
                problems.push("a blocking rule is empty".to_owned());
            }
            let mut keys = Vec::new();
            for spec in rule {
                match BlockingKey::parse(spec) {
                    Ok(k) if !columns.contains(&k.column) => {
                        problems.push(format!("blocking column {:?} is not in the data", k.column));
                    }
                    Ok(k) => keys.push(k),
                    Err(p) => problems.push(p),
                }
            }
            rules.push(keys);
        }
        let t = &self.training;
        if t.u_sample_pairs == 0
            || t.em_max_iterations == 0
            || t.em_tolerance.is_nan()
            || t.em_tolerance <= 0.0
        {
            problems.push(
                "training needs u_sample_pairs, em_max_iterations and em_tolerance > 0".into(),
            );
        }
        for h in &t.household_columns {
            if !self.comparisons.iter().any(|c| &c.column == h) {
                problems.push(format!(
                    "household column {h:?} is not one of the compared columns"
                ));
            }
        }
        if !t.household_columns.is_empty()
            && self
                .comparisons
                .iter()
                .all(|c| t.household_columns.contains(&c.column))
        {
            problems.push(
                "household_columns lists every compared column: leave at least one column \
                 that tells people apart (a first name, a birth date)"
                    .into(),
            );
        }
        if problems.is_empty() {
            Ok(rules)
        } else {
            Err(IdentityError::InvalidSettings(problems))
        }
    }

    /// Writes the settings as TOML that [`MatchSettings::from_toml`] reads back.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let rules: Vec<String> = self
            .blocking_rules
            .iter()
            .map(|r| {
                let keys: Vec<String> = r.iter().map(|k| format!("{k:?}")).collect();
                format!("[{}]", keys.join(", "))
            })
            .collect();
        let _ = writeln!(out, "blocking_rules = [{}]", rules.join(", "));
        for c in &self.comparisons {
            let levels: Vec<String> = c.levels.iter().map(Level::to_toml).collect();
            let _ = writeln!(out, "\n[[comparisons]]");
            let _ = writeln!(out, "column = {:?}", c.column);
            let _ = writeln!(out, "preprocess = {:?}", c.preprocess.as_str());
            let _ = writeln!(out, "term_frequency = {}", c.term_frequency);
            let _ = writeln!(out, "levels = [\n    {},\n]", levels.join(",\n    "));
        }
        let t = &self.training;
        let _ = writeln!(out, "\n[training]");
        let _ = writeln!(out, "seed = {}", t.seed);
        let _ = writeln!(out, "u_sample_pairs = {}", t.u_sample_pairs);
        let _ = writeln!(out, "em_max_iterations = {}", t.em_max_iterations);
        let _ = writeln!(out, "em_tolerance = {:?}", t.em_tolerance);
        let _ = writeln!(out, "max_candidate_pairs = {}", t.max_candidate_pairs);
        let order = match t.date_order {
            DateOrder::DayFirst => "day_first",
            DateOrder::MonthFirst => "month_first",
        };
        let _ = writeln!(out, "date_order = {order:?}");
        let _ = writeln!(out, "em_fix_u = {}", t.em_fix_u);
        let household: Vec<String> = t
            .household_columns
            .iter()
            .map(|c| format!("{c:?}"))
            .collect();
        let _ = writeln!(out, "household_columns = [{}]", household.join(", "));
        out
    }
}

/// What a column seems to hold, from its name first and its values second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnRole {
    Email,
    Phone,
    Postcode,
    Date,
    Number,
    Name,
    Address,
    Text,
}

/// Splits a column name into lowercase words: `firstName`, `first_name` and `First Name` all
/// give `["first", "name"]`.
fn name_words(column: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in column.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn role_of(column: &str, values: &[Option<&str>]) -> ColumnRole {
    let words = name_words(column);
    let any = |f: &dyn Fn(&str) -> bool| words.iter().any(|w| f(w));
    let is = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
    if any(&|w| w.contains("email") || w == "mail") {
        return ColumnRole::Email;
    }
    if any(&|w| w.starts_with("phone") || w.ends_with("phone"))
        || is(&["tel", "mobile", "fax", "cell"])
    {
        return ColumnRole::Phone;
    }
    if any(&|w| w.starts_with("zip") || w.starts_with("postcode") || w == "postal" || w == "plz") {
        return ColumnRole::Postcode;
    }
    let present: Vec<&str> = values.iter().flatten().copied().take(500).collect();
    let share = |f: &dyn Fn(&str) -> bool| {
        if present.is_empty() {
            0.0
        } else {
            present.iter().filter(|v| f(v)).count() as f64 / present.len() as f64
        }
    };
    if any(&|w| w.contains("date") || w.starts_with("birth"))
        || is(&["dob", "at", "created", "updated"])
        || share(&|v| IsoDate::parse(v, DateOrder::DayFirst).is_ok()) > 0.9
    {
        return ColumnRole::Date;
    }
    if share(&|v| v.trim().parse::<f64>().is_ok()) > 0.9 {
        return ColumnRole::Number;
    }
    if any(&|w| w.contains("name")) || is(&["first", "last", "given", "family", "forename"]) {
        return ColumnRole::Name;
    }
    if any(&|w| w.starts_with("addr") || w.starts_with("street")) || is(&["line1", "road"]) {
        return ColumnRole::Address;
    }
    ColumnRole::Text
}

/// Whether exact agreement on this column should be weighed by value frequency: when the most
/// common value is far more frequent than the average one.
fn skewed(values: &[Option<&str>]) -> bool {
    let mut counts = std::collections::HashMap::new();
    let mut total = 0usize;
    for v in values.iter().flatten() {
        *counts
            .entry(crate::standardize::text::clean_for_matching(v))
            .or_insert(0usize) += 1;
        total += 1;
    }
    if counts.len() < 2 {
        return false;
    }
    let max = counts.values().copied().max().unwrap_or(0) as f64;
    let mean = total as f64 / counts.len() as f64;
    max >= 5.0 * mean
}

/// Sensible settings from column names and values: names by Jaro-Winkler, emails exact then
/// Jaro-Winkler, phones exact on digits (then within two edits), dates by distance in days,
/// numbers by relative distance, postcodes exact, anything else Jaro-Winkler. Blocking on
/// email, phone digits, the first three characters of the first name-like column and of an
/// address, and postcode; for records of people (a family name column), on email, phone
/// digits, family name with date, given name's first three characters with postcode, and
/// date with postcode. For records of people (a family name column), every column but given
/// names and dates is a household column (see `TrainingSettings::household_columns`), when
/// one of those can tell a household's members apart.
pub fn infer_settings(datasets: &[&Dataset]) -> MatchSettings {
    let mut columns: Vec<String> = Vec::new();
    for d in datasets {
        for c in d.columns() {
            if !columns.contains(c) {
                columns.push(c.clone());
            }
        }
    }
    let mut comparisons = Vec::new();
    let mut blocking: Vec<Vec<String>> = Vec::new();
    let mut first_name_col = None;
    // Columns people of one household share, and whether any column tells them apart.
    let mut household = Vec::new();
    let mut personal = false;
    let mut family_name = false;
    // For records of people: the first family-name, given-name, date and postcode columns, and the
    // blocking rules on single strong identifiers (email, phone).
    let (mut family_col, mut given_col) = (None, None);
    let (mut date_col, mut postcode_col) = (None, None);
    let mut strong: Vec<Vec<String>> = Vec::new();
    for column in columns {
        let values: Vec<Option<&str>> = datasets
            .iter()
            .flat_map(|d| d.column_values(&column))
            .collect();
        let tf = skewed(&values);
        let role = role_of(&column, &values);
        let jw = |min: f64| Level::JaroWinkler { min };
        // Given names and dates tell a household's members apart; everything else (address,
        // city, phone, email, family name, devices) they may share.
        match role {
            ColumnRole::Name if is_family_name(&column) => {
                family_name = true;
                family_col.get_or_insert_with(|| column.clone());
                household.push(column.clone());
            }
            ColumnRole::Date => {
                personal = true;
                date_col.get_or_insert_with(|| column.clone());
            }
            ColumnRole::Name => {
                personal = true;
                given_col.get_or_insert_with(|| column.clone());
            }
            ColumnRole::Postcode => {
                postcode_col.get_or_insert_with(|| column.clone());
                household.push(column.clone());
            }
            _ => household.push(column.clone()),
        }
        let (preprocess, levels, term_frequency) = match role {
            ColumnRole::Email => {
                blocking.push(vec![column.clone()]);
                strong.push(vec![column.clone()]);
                (Preprocess::Lower, vec![Level::Exact, jw(0.9)], false)
            }
            ColumnRole::Phone => {
                blocking.push(vec![format!("{column}:digits")]);
                strong.push(vec![format!("{column}:digits")]);
                (Preprocess::Digits, vec![Level::Exact], false)
            }
            ColumnRole::Postcode => {
                blocking.push(vec![column.clone()]);
                (Preprocess::Clean, vec![Level::Exact], tf)
            }
            ColumnRole::Date => (
                Preprocess::Raw,
                vec![
                    Level::DateDays { max: 0 },
                    Level::DateDays { max: 31 },
                    Level::DateDays { max: 366 },
                ],
                false,
            ),
            ColumnRole::Number => (
                Preprocess::Raw,
                vec![
                    Level::NumericAbs { max: 0.0 },
                    Level::NumericRel { max: 0.01 },
                    Level::NumericRel { max: 0.1 },
                ],
                false,
            ),
            ColumnRole::Name => {
                if first_name_col.is_none() {
                    first_name_col = Some(column.clone());
                    blocking.push(vec![format!("{column}:first3")]);
                }
                (Preprocess::Clean, vec![Level::Exact, jw(0.92), jw(0.8)], tf)
            }
            ColumnRole::Address => {
                blocking.push(vec![format!("{column}:first3")]);
                (
                    Preprocess::Clean,
                    vec![Level::Exact, jw(0.9), jw(0.75)],
                    false,
                )
            }
            ColumnRole::Text => (Preprocess::Clean, vec![Level::Exact, jw(0.9)], tf),
        };
        comparisons.push(Comparison {
            column,
            preprocess,
            levels,
            term_frequency,
        });
    }
    // People: a given name's first letters, a postcode or an address prefix alone pairs
    // everyone in a district or everyone called Jo..., and EM on such candidates learns
    // "lives nearby" instead of "same person". Block on strong identifiers and on pairs of
    // weaker ones instead.
    if family_name {
        let mut rules = strong;
        let first3 = given_col.as_ref().map(|c: &String| format!("{c}:first3"));
        if let (Some(f), Some(d)) = (&family_col, &date_col) {
            rules.push(vec![f.clone(), d.clone()]);
        }
        if let (Some(g), Some(p)) = (&first3, &postcode_col) {
            rules.push(vec![g.clone(), p.clone()]);
        }
        if let (Some(d), Some(p)) = (&date_col, &postcode_col) {
            rules.push(vec![d.clone(), p.clone()]);
        }
        if let (Some(g), Some(f)) = (&first3, &family_col) {
            if postcode_col.is_none() {
                rules.push(vec![g.clone(), format!("{f}:first3")]);
            }
        }
        if rules.len() > 1 {
            blocking = rules;
        }
    }
    // The household class is for records of people (a family name column says so), and needs
    // a column that tells a household's members apart. Other records (restaurants, products,
    // companies) keep the two-class model.
    if !personal || !family_name {
        household.clear();
    }
    MatchSettings {
        blocking_rules: blocking,
        comparisons,
        training: TrainingSettings {
            household_columns: household,
            ..TrainingSettings::default()
        },
    }
}

/// Whether a name-like column holds a family name (which a household's members share) rather
/// than a given or full name.
fn is_family_name(column: &str) -> bool {
    let words = name_words(column);
    words
        .iter()
        .any(|w| ["last", "family", "surname", "lastname", "familyname"].contains(&w.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::data::Record;

    fn ds() -> Dataset {
        let cols = ["name", "email", "phone", "dob", "zip", "city", "age"];
        let rows = [
            [
                "Ada Lovelace",
                "ada@x.io",
                "555-0101",
                "1815-12-10",
                "94105",
                "London",
                "36",
            ],
            [
                "Bob Smith",
                "bob@x.io",
                "555-0102",
                "1990-01-01",
                "94107",
                "London",
                "41",
            ],
            [
                "Cy Twombly",
                "cy@x.io",
                "555-0103",
                "1928-04-25",
                "94108",
                "London",
                "83",
            ],
            [
                "Di Prince",
                "di@x.io",
                "555-0104",
                "1985-03-05",
                "94109",
                "London",
                "39",
            ],
            [
                "Ed Wood",
                "ed@x.io",
                "555-0105",
                "1924-10-10",
                "94110",
                "Paris",
                "54",
            ],
            [
                "Flo Jo",
                "flo@x.io",
                "555-0106",
                "1959-12-21",
                "94111",
                "London",
                "38",
            ],
        ];
        let records = rows
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                id: i.to_string(),
                values: r.iter().map(|v| Some((*v).to_owned())).collect(),
            })
            .collect();
        Dataset::new("t", cols.iter().map(|c| (*c).to_owned()).collect(), records).expect("ds")
    }

    #[test]
    fn inference_picks_comparisons_by_role() {
        let s = infer_settings(&[&ds()]);
        let get = |c: &str| s.comparisons.iter().find(|x| x.column == c).expect(c);
        assert!(matches!(get("name").levels[1], Level::JaroWinkler { .. }));
        assert_eq!(get("email").levels[0], Level::Exact);
        assert_eq!(get("phone").preprocess, Preprocess::Digits);
        assert!(matches!(get("dob").levels[0], Level::DateDays { max: 0 }));
        assert_eq!(get("zip").levels, vec![Level::Exact]);
        assert!(matches!(get("age").levels[1], Level::NumericRel { .. }));
        assert!(matches!(get("city").levels[1], Level::JaroWinkler { .. }));
        assert!(s.blocking_rules.contains(&vec!["phone:digits".to_owned()]));
        assert!(s.blocking_rules.contains(&vec!["name:first3".to_owned()]));
        s.validate(ds().columns())
            .expect("inferred settings are valid");
    }

    #[test]
    fn column_names_split_into_words() {
        assert_eq!(name_words("firstName"), ["first", "name"]);
        assert_eq!(name_words("first_name"), ["first", "name"]);
        assert_eq!(name_words("Hotel Name"), ["hotel", "name"]);
        assert_eq!(role_of("hotel_name", &[]), ColumnRole::Name);
        assert_eq!(role_of("created_at", &[]), ColumnRole::Date);
        assert_eq!(role_of("EmailAddress", &[]), ColumnRole::Email);
        assert_eq!(role_of("addr", &[]), ColumnRole::Address);
        assert_eq!(role_of("phone_number", &[]), ColumnRole::Phone);
    }

    #[test]
    fn toml_round_trip() {
        let s = infer_settings(&[&ds()]);
        let text = s.to_toml();
        let back = MatchSettings::from_toml(&text).expect("reads back");
        assert_eq!(back, s, "{text}");
    }

    #[test]
    fn validation_reports_every_problem() {
        let text = r#"
            blocking_rules = [["nope"], ["name:middle2"], []]
            [[comparisons]]
            column = "name"
            levels = [{ type = "jaro_winkler", min = 1.5 }]
            [[comparisons]]
            column = "name"
            levels = []
        "#;
        let s = MatchSettings::from_toml(text).expect("parses");
        match s.validate(ds().columns()) {
            Err(IdentityError::InvalidSettings(p)) => assert_eq!(p.len(), 6, "{p:?}"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            MatchSettings::from_toml("[[comparisons]]\ncolumn='a'\nlevels=[]\nbogus=1").is_err()
        );
    }

    #[test]
    fn blocking_keys_parse() {
        assert_eq!(
            BlockingKey::parse("name:first3"),
            Ok(BlockingKey {
                column: "name".into(),
                transform: KeyTransform::First(3)
            })
        );
        assert_eq!(
            BlockingKey::parse("zip").map(|k| k.transform),
            Ok(KeyTransform::Exact)
        );
        assert!(BlockingKey::parse("x:first0").is_err());
    }
}

//! Standardization of customer data. Each standardized type can only be built valid and keeps
//! the raw value beside the standardized one; [`standardize_traits`] applies them to a traits
//! object and reports every refused value as a [`DataQualityIssue`] instead of dropping it
//! silently.

mod address;
mod country;
mod date;
mod email;
mod name;
mod phone;
pub mod text;

#[cfg(test)]
mod props;

pub use address::{normalize_postcode, AddressInput, PostalAddress};
pub use country::{country_code, country_name};
pub use date::{DateOrder, IsoDate};
pub use email::{Email, EmailPolicy};
pub use name::{canonical_first_name, PersonName};
pub use phone::PhoneE164;

use rapport_core::error::Coded;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ValueProblem;

/// Settings for standardization (TOML section `[standardize]` or its own file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StandardizePolicy {
    pub email: EmailPolicy,
    /// Region for phone numbers written without `+` (ISO alpha-2).
    pub default_phone_region: String,
    /// Country assumed for addresses that do not say (ISO alpha-2); none by default.
    pub default_country: Option<String>,
    pub date_order: DateOrder,
}

impl Default for StandardizePolicy {
    fn default() -> Self {
        Self {
            email: EmailPolicy::default(),
            default_phone_region: "US".into(),
            default_country: None,
            date_order: DateOrder::DayFirst,
        }
    }
}

/// A value that could not be standardized. It is removed from the standardized traits and
/// reported here with what was received, so it can be shown, counted and fixed at the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataQualityIssue {
    /// Trait path, e.g. `email` or `address.postal_code`.
    pub field: String,
    /// The value as received (JSON-encoded when it was not a string).
    pub raw: String,
    /// Human-readable problem.
    pub problem: String,
    /// Stable code of the problem (`invalid_email`, `invalid_postcode`, ...).
    pub code: &'static str,
}

impl DataQualityIssue {
    fn new(field: &str, raw: &Value, problem: &ValueProblem) -> Self {
        let raw = match raw {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Self {
            field: field.to_owned(),
            raw,
            problem: problem.to_string(),
            code: problem.code(),
        }
    }
}

/// What a trait key holds, judged from its name (snake_case or camelCase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TraitKind {
    Email,
    Phone,
    Name,
    NamePart,
    Date,
    Country,
    Address,
    Other,
}

fn trait_kind(key: &str) -> TraitKind {
    let k: String = key
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    match k.as_str() {
        "email" | "emailaddress" => TraitKind::Email,
        "phone" | "phonenumber" | "mobile" | "mobilephone" | "cellphone" | "telephone" => {
            TraitKind::Phone
        }
        "name" | "fullname" => TraitKind::Name,
        "firstname" | "lastname" | "givenname" | "familyname" | "surname" => TraitKind::NamePart,
        "birthday" | "birthdate" | "dateofbirth" | "dob" => TraitKind::Date,
        "country" | "countrycode" => TraitKind::Country,
        "address" => TraitKind::Address,
        _ => TraitKind::Other,
    }
}

/// Standardizes known traits (email, phone, name parts, birthday, country, address object).
/// Unknown keys pass through untouched. Returns the standardized traits and one issue per
/// value refused; refused values are left out of the returned map.
pub fn standardize_traits(
    traits: &Map<String, Value>,
    policy: &StandardizePolicy,
) -> (Map<String, Value>, Vec<DataQualityIssue>) {
    let mut out = Map::new();
    let mut issues = Vec::new();
    for (key, value) in traits {
        if value.is_null() {
            out.insert(key.clone(), Value::Null);
            continue;
        }
        match standardize_value(key, value, policy, &mut issues) {
            Ok(Some(v)) => {
                out.insert(key.clone(), v);
            }
            Ok(None) => {}
            Err(problem) => issues.push(DataQualityIssue::new(key, value, &problem)),
        }
    }
    (out, issues)
}

fn as_str(value: &Value) -> Result<&str, ValueProblem> {
    value.as_str().ok_or(ValueProblem::WrongType("a string"))
}

fn standardize_value(
    key: &str,
    value: &Value,
    policy: &StandardizePolicy,
    issues: &mut Vec<DataQualityIssue>,
) -> Result<Option<Value>, ValueProblem> {
    let v = match trait_kind(key) {
        TraitKind::Email => Email::parse(as_str(value)?, &policy.email)?
            .normalized()
            .into(),
        TraitKind::Phone => {
            let raw = match value {
                Value::Number(n) => n.to_string(),
                other => as_str(other)?.to_owned(),
            };
            PhoneE164::parse(&raw, &policy.default_phone_region)?
                .e164()
                .into()
        }
        TraitKind::Name => PersonName::parse(as_str(value)?)?.display().into(),
        TraitKind::NamePart => {
            // A single part: proper case only, honorifics and suffixes are not split here.
            let name = PersonName::parse(as_str(value)?)?;
            name.display().into()
        }
        TraitKind::Date => IsoDate::parse(as_str(value)?, policy.date_order)?
            .to_string()
            .into(),
        TraitKind::Country => country_code(as_str(value)?)?.into(),
        TraitKind::Address => return standardize_address(key, value, policy, issues).map(Some),
        TraitKind::Other => value.clone(),
    };
    Ok(Some(v))
}

/// Standardizes an address object field by field, so one bad postcode does not lose the
/// street. Fields that fail are reported and left out.
fn standardize_address(
    key: &str,
    value: &Value,
    policy: &StandardizePolicy,
    issues: &mut Vec<DataQualityIssue>,
) -> Result<Value, ValueProblem> {
    let obj = value
        .as_object()
        .ok_or(ValueProblem::WrongType("an object"))?;
    let get = |names: &[&str]| -> Option<(String, &Value)> {
        names
            .iter()
            .find_map(|n| obj.get(*n).map(|v| ((*n).to_owned(), v)))
    };
    let mut out = obj.clone();
    let field_names: [(&[&str], usize); 6] = [
        (&["street", "line1", "street_address"], 0),
        (&["unit", "line2"], 1),
        (&["city"], 2),
        (&["state", "region"], 3),
        (&["postal_code", "postalCode", "zip", "postcode"], 4),
        (&["country"], 5),
    ];
    let mut input = AddressInput::default();
    let mut sources: Vec<Option<(String, Value)>> = vec![None; 6];
    for (names, slot) in field_names {
        let Some((name, v)) = get(names) else {
            continue;
        };
        let Some(s) = v.as_str() else {
            issues.push(DataQualityIssue::new(
                &format!("{key}.{name}"),
                v,
                &ValueProblem::WrongType("a string"),
            ));
            out.remove(&name);
            continue;
        };
        let s = Some(s.to_owned());
        match slot {
            0 => input.street = s,
            1 => input.unit = s,
            2 => input.city = s,
            3 => input.state = s,
            4 => input.postal_code = s,
            _ => input.country = s,
        }
        sources[slot] = Some((name, v.clone()));
    }
    // Resolve country and postcode on their own first so their problems are attributed.
    if let (Some(c), Some((name, raw))) = (input.country.clone(), sources[5].clone()) {
        if let Err(p) = country_code(&c) {
            issues.push(DataQualityIssue::new(&format!("{key}.{name}"), &raw, &p));
            input.country = None;
            out.remove(&name);
        }
    }
    let country = input
        .country
        .as_deref()
        .and_then(|c| country_code(c).ok())
        .or(policy.default_country.as_deref());
    if let (Some(p), Some((name, raw))) = (input.postal_code.clone(), sources[4].clone()) {
        if let Err(problem) = normalize_postcode(&p, country) {
            issues.push(DataQualityIssue::new(
                &format!("{key}.{name}"),
                &raw,
                &problem,
            ));
            input.postal_code = None;
            out.remove(&name);
        }
    }
    let addr = PostalAddress::parse(&input, policy.default_country.as_deref())?;
    let std = addr.to_input();
    let values = [
        std.street,
        std.unit,
        std.city,
        std.state,
        std.postal_code,
        std.country,
    ];
    for (slot, standardized) in values.into_iter().enumerate() {
        if let (Some((name, _)), Some(v)) = (&sources[slot], standardized) {
            out.insert(name.clone(), Value::String(v));
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(v: Value) -> (Map<String, Value>, Vec<DataQualityIssue>) {
        let Value::Object(m) = v else {
            panic!("object expected")
        };
        standardize_traits(&m, &StandardizePolicy::default())
    }

    #[test]
    fn standardizes_known_traits_and_passes_others() {
        let (out, issues) = run(json!({
            "email": " Ada@Example.COM ",
            "phone": "(415) 555-2671",
            "name": "dr. ada  lovelace",
            "firstName": "ADA",
            "birthday": "10 December 1815",
            "country": "United Kingdom",
            "plan": "pro",
            "nothing": null,
        }));
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(out["email"], "ada@example.com");
        assert_eq!(out["phone"], "+14155552671");
        assert_eq!(out["name"], "Ada Lovelace");
        assert_eq!(out["firstName"], "Ada");
        assert_eq!(out["birthday"], "1815-12-10");
        assert_eq!(out["country"], "GB");
        assert_eq!(out["plan"], "pro");
        assert!(out["nothing"].is_null());
    }

    #[test]
    fn invalid_values_become_issues() {
        let (out, issues) = run(json!({
            "email": "not-an-email",
            "phone": "12",
            "birthday": "31/02/2020",
            "country": "Atlantis",
            "name": 42,
        }));
        assert!(out.is_empty(), "{out:?}");
        let codes: Vec<_> = issues.iter().map(|i| (i.field.as_str(), i.code)).collect();
        assert!(codes.contains(&("email", "invalid_email")));
        assert!(codes.contains(&("phone", "invalid_phone")));
        assert!(codes.contains(&("birthday", "invalid_date")));
        assert!(codes.contains(&("country", "unknown_country")));
        assert!(codes.contains(&("name", "wrong_type")));
        let email = issues
            .iter()
            .find(|i| i.field == "email")
            .expect("email issue");
        assert_eq!(email.raw, "not-an-email");
    }

    #[test]
    fn address_fields_fail_independently() {
        let (out, issues) = run(json!({
            "address": {
                "street": "1 west 5th street",
                "city": "new york",
                "postal_code": "1234",
                "country": "usa",
                "note": "ring twice",
            }
        }));
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].field, "address.postal_code");
        assert_eq!(issues[0].code, "invalid_postcode");
        let a = &out["address"];
        assert_eq!(a["street"], "1 W 5th St");
        assert_eq!(a["city"], "New York");
        assert_eq!(a["country"], "US");
        assert_eq!(a["note"], "ring twice");
        assert!(a.get("postal_code").is_none());
    }
}

//! Postal addresses: whitespace and case, street-type and directional abbreviations per
//! country family, unit forms (`Apartment 4` -> `Apt 4`), and postcodes normalized and checked
//! for the US, UK, Germany, France and Australia. Other countries' postcodes are only
//! uppercased and spaced, not checked.

use serde::{Deserialize, Serialize};

use super::country::country_code;
use super::text::nfkc_collapse;
use crate::error::ValueProblem;

/// An address as received, field by field (Segment's `address` trait uses these names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AddressInput {
    pub street: Option<String>,
    pub unit: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// A standardized address; the input is kept as `raw`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostalAddress {
    raw: AddressInput,
    street: Option<String>,
    unit: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

/// Street words -> abbreviation, by country family. Keys are lowercase without dots.
const STREET_US: &[(&str, &str)] = &[
    ("street", "St"),
    ("st", "St"),
    ("avenue", "Ave"),
    ("av", "Ave"),
    ("ave", "Ave"),
    ("road", "Rd"),
    ("rd", "Rd"),
    ("boulevard", "Blvd"),
    ("blvd", "Blvd"),
    ("blv", "Blvd"),
    ("drive", "Dr"),
    ("dr", "Dr"),
    ("lane", "Ln"),
    ("ln", "Ln"),
    ("court", "Ct"),
    ("ct", "Ct"),
    ("place", "Pl"),
    ("pl", "Pl"),
    ("terrace", "Ter"),
    ("highway", "Hwy"),
    ("hwy", "Hwy"),
    ("parkway", "Pkwy"),
    ("pkwy", "Pkwy"),
    ("circle", "Cir"),
    ("square", "Sq"),
    ("trail", "Trl"),
    ("expressway", "Expy"),
    ("freeway", "Fwy"),
    ("crescent", "Cres"),
    ("close", "Cl"),
    ("grove", "Gr"),
    ("gardens", "Gdns"),
    ("esplanade", "Esp"),
    ("parade", "Pde"),
    ("mount", "Mt"),
];

const DIRECTIONS: &[(&str, &str)] = &[
    ("north", "N"),
    ("south", "S"),
    ("east", "E"),
    ("west", "W"),
    ("northeast", "NE"),
    ("northwest", "NW"),
    ("southeast", "SE"),
    ("southwest", "SW"),
    ("n", "N"),
    ("s", "S"),
    ("e", "E"),
    ("w", "W"),
    ("ne", "NE"),
    ("nw", "NW"),
    ("se", "SE"),
    ("sw", "SW"),
];

const STREET_FR: &[(&str, &str)] = &[
    ("avenue", "Av"),
    ("av", "Av"),
    ("boulevard", "Bd"),
    ("bd", "Bd"),
    ("place", "Pl"),
    ("chemin", "Ch"),
    ("route", "Rte"),
    ("impasse", "Imp"),
    ("allee", "All"),
    ("allée", "All"),
    ("faubourg", "Fbg"),
    ("quai", "Quai"),
    ("rue", "Rue"),
];

/// German street names usually glue the type on (Hauptstraße); the suffix is rewritten too.
const STREET_DE: &[(&str, &str)] = &[
    ("straße", "Str"),
    ("strasse", "Str"),
    ("str", "Str"),
    ("platz", "Pl"),
    ("weg", "Weg"),
    ("allee", "Allee"),
];

/// Unit words -> canonical designator.
const UNITS: &[(&str, &str)] = &[
    ("apartment", "Apt"),
    ("apt", "Apt"),
    ("#", "Apt"),
    ("unit", "Unit"),
    ("suite", "Ste"),
    ("ste", "Ste"),
    ("flat", "Flat"),
    ("floor", "Fl"),
    ("fl", "Fl"),
    ("room", "Rm"),
    ("rm", "Rm"),
    ("wohnung", "Whg"),
    ("whg", "Whg"),
    ("appartement", "Appt"),
    ("appt", "Appt"),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Anglo,
    German,
    French,
}

fn family(country: Option<&str>) -> Family {
    match country {
        Some("DE" | "AT" | "CH") => Family::German,
        Some("FR" | "BE" | "LU" | "MC") => Family::French,
        _ => Family::Anglo,
    }
}

fn key(token: &str) -> String {
    token
        .trim_end_matches([',', '.'])
        .replace('.', "")
        .to_lowercase()
}

fn title(token: &str) -> String {
    let lower = token.to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => {
            let mut up = first.to_uppercase();
            let head = match (up.next(), up.next()) {
                (Some(u), None) => u.to_string(),
                _ => first.to_string(),
            };
            head + chars.as_str()
        }
        None => String::new(),
    }
}

/// Standardizes a street line for a country family.
fn street_line(raw: &str, fam: Family) -> String {
    let text = nfkc_collapse(raw);
    let tokens: Vec<&str> = text.split(' ').filter(|t| !t.is_empty()).collect();
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let k = key(tokens[i]);
        // A unit designator followed by its number: "apartment 4b", "# 12", "#12".
        if let Some(num) = k.strip_prefix('#').filter(|n| !n.is_empty()) {
            out.push(format!("Apt {}", num.to_uppercase()));
            i += 1;
            continue;
        }
        if let Some((_, unit)) = UNITS.iter().find(|(w, _)| *w == k) {
            if let Some(next) = tokens.get(i + 1) {
                out.push(format!("{unit} {}", key(next).to_uppercase()));
                i += 2;
                continue;
            }
        }
        let table = match fam {
            Family::Anglo => STREET_US,
            Family::French => STREET_FR,
            Family::German => STREET_DE,
        };
        let word = if let Some((_, abbr)) = table.iter().find(|(w, _)| *w == k) {
            (*abbr).to_owned()
        } else if let (Family::Anglo, Some((_, d))) =
            (fam, DIRECTIONS.iter().find(|(w, _)| *w == k))
        {
            (*d).to_owned()
        } else if fam == Family::German {
            german_compound(&k)
        } else if k.chars().any(|c| c.is_ascii_digit()) {
            // House numbers and ordinals: 12b -> 12B, 5th stays 5th.
            if k.ends_with("st") || k.ends_with("nd") || k.ends_with("rd") || k.ends_with("th") {
                k.clone()
            } else {
                k.to_uppercase()
            }
        } else {
            title(&k)
        };
        out.push(word);
        i += 1;
    }
    out.join(" ")
}

fn german_compound(k: &str) -> String {
    for (long, short) in [("straße", "str"), ("strasse", "str")] {
        if let Some(stem) = k.strip_suffix(long).filter(|s| !s.is_empty()) {
            return title(&format!("{stem}{short}"));
        }
    }
    if k.chars().any(|c| c.is_ascii_digit()) {
        return k.to_uppercase();
    }
    title(k)
}

fn unit_line(raw: &str) -> String {
    let text = nfkc_collapse(raw);
    let tokens: Vec<&str> = text.split(' ').collect();
    match tokens.as_slice() {
        [word, rest @ ..] if !rest.is_empty() => {
            let k = key(word);
            match UNITS.iter().find(|(w, _)| *w == k) {
                Some((_, unit)) => format!("{unit} {}", rest.join(" ").to_uppercase()),
                None => text.to_uppercase(),
            }
        }
        _ => {
            let t = text.trim_start_matches('#');
            format!("Apt {}", t.to_uppercase())
        }
    }
}

fn title_words(raw: &str) -> String {
    nfkc_collapse(raw)
        .split(' ')
        .map(|w| {
            // Keep hyphenated parts capitalized: Stratford-upon-Avon stays readable.
            w.split('-').map(title).collect::<Vec<_>>().join("-")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Normalizes and checks a postcode for a country (ISO alpha-2). Countries without a rule get
/// uppercase with single spaces.
pub fn normalize_postcode(raw: &str, country: Option<&str>) -> Result<String, ValueProblem> {
    let compact: String = nfkc_collapse(raw)
        .to_uppercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(ValueProblem::Empty);
    }
    let bad = |c: &str| ValueProblem::BadPostcode(raw.trim().to_owned(), c.to_owned());
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    match country {
        Some("US") => {
            let digits: String = compact.chars().filter(|c| *c != '-').collect();
            let dash_ok = compact.matches('-').count() == 0
                || (compact.len() == 10 && compact.as_bytes()[5] == b'-');
            if !all_digits(&digits) || !dash_ok {
                return Err(bad("US"));
            }
            match digits.len() {
                5 => Ok(digits),
                9 => Ok(format!("{}-{}", &digits[..5], &digits[5..])),
                _ => Err(bad("US")),
            }
        }
        Some("GB") => {
            let re = uk_postcode();
            if compact.len() < 5 || !compact.is_ascii() {
                return Err(bad("GB"));
            }
            let (outward, inward) = compact.split_at(compact.len() - 3);
            if re.0.is_match(outward) && re.1.is_match(inward) {
                Ok(format!("{outward} {inward}"))
            } else {
                Err(bad("GB"))
            }
        }
        Some(c @ ("DE" | "FR")) => {
            if compact.len() == 5 && all_digits(&compact) {
                Ok(compact)
            } else {
                Err(bad(c))
            }
        }
        Some("AU") => {
            if compact.len() == 4 && all_digits(&compact) {
                Ok(compact)
            } else {
                Err(bad("AU"))
            }
        }
        _ => Ok(nfkc_collapse(raw).to_uppercase()),
    }
}

fn uk_postcode() -> &'static (regex::Regex, regex::Regex) {
    static RE: std::sync::OnceLock<(regex::Regex, regex::Regex)> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        // Outward: area letters, district digit, optional digit or letter (SW1A, M1, EC1V).
        // Inward: sector digit and two unit letters (never C, I, K, M, O, V).
        let outward = regex::Regex::new(r"^(GIR|[A-PR-UWYZ][A-HK-Y]?[0-9][0-9A-HJKMNPR-Y]?)$");
        let inward = regex::Regex::new(r"^[0-9][ABD-HJLNP-UW-Z]{2}$");
        match (outward, inward) {
            (Ok(o), Ok(i)) => (o, i),
            // The patterns are literals checked by the tests; this arm is unreachable.
            _ => unreachable!("static UK postcode patterns compile"),
        }
    })
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl PostalAddress {
    /// Standardizes every present field. The country is resolved first (to ISO alpha-2, falling
    /// back to `default_country`) because it decides abbreviations and postcode rules.
    pub fn parse(
        input: &AddressInput,
        default_country: Option<&str>,
    ) -> Result<Self, ValueProblem> {
        let country = match present(&input.country) {
            Some(c) => Some(country_code(c)?.to_owned()),
            None => default_country.map(str::to_owned),
        };
        let fam = family(country.as_deref());
        let postal_code = present(&input.postal_code)
            .map(|p| normalize_postcode(p, country.as_deref()))
            .transpose()?;
        let street = present(&input.street).map(|s| street_line(s, fam));
        let unit = present(&input.unit).map(unit_line);
        let city = present(&input.city).map(title_words);
        let state = present(&input.state).map(|s| {
            let s = nfkc_collapse(s);
            if s.chars().count() <= 3 {
                s.to_uppercase()
            } else {
                title_words(&s)
            }
        });
        if street.is_none() && city.is_none() && postal_code.is_none() {
            return Err(ValueProblem::Empty);
        }
        Ok(Self {
            raw: input.clone(),
            street,
            unit,
            city,
            state,
            postal_code,
            country,
        })
    }

    pub fn raw(&self) -> &AddressInput {
        &self.raw
    }
    pub fn street(&self) -> Option<&str> {
        self.street.as_deref()
    }
    pub fn unit(&self) -> Option<&str> {
        self.unit.as_deref()
    }
    pub fn city(&self) -> Option<&str> {
        self.city.as_deref()
    }
    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }
    pub fn postal_code(&self) -> Option<&str> {
        self.postal_code.as_deref()
    }
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }

    /// The standardized fields in the shape of the input, for writing back into traits.
    pub fn to_input(&self) -> AddressInput {
        AddressInput {
            street: self.street.clone(),
            unit: self.unit.clone(),
            city: self.city.clone(),
            state: self.state.clone(),
            postal_code: self.postal_code.clone(),
            country: self.country.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(street: &str, country: &str) -> PostalAddress {
        PostalAddress::parse(
            &AddressInput {
                street: Some(street.into()),
                country: Some(country.into()),
                ..AddressInput::default()
            },
            None,
        )
        .expect("address")
    }

    #[test]
    fn us_street_types_directions_and_units() {
        let a = addr("435  south la cienega boulevard, apartment 4b", "USA");
        assert_eq!(a.street(), Some("435 S La Cienega Blvd Apt 4B"));
        assert_eq!(a.country(), Some("US"));
        assert_eq!(
            addr("12224 Ventura Blvd.", "US").street(),
            Some("12224 Ventura Blvd")
        );
        assert_eq!(
            addr("1 West 5th Street #12", "US").street(),
            Some("1 W 5th St Apt 12")
        );
    }

    #[test]
    fn other_countries() {
        assert_eq!(
            addr("10 Downing Street", "United Kingdom").street(),
            Some("10 Downing St")
        );
        assert_eq!(
            addr("Hauptstraße 5", "Germany").street(),
            Some("Hauptstr 5")
        );
        assert_eq!(
            addr("Unter den Linden Strasse 1", "DE").street(),
            Some("Unter Den Linden Str 1")
        );
        assert_eq!(
            addr("12 avenue des Champs", "France").street(),
            Some("12 Av Des Champs")
        );
        assert_eq!(
            addr("3 Smith Parade", "Australia").street(),
            Some("3 Smith Pde")
        );
    }

    #[test]
    fn postcodes() {
        assert_eq!(
            normalize_postcode(" 94105 ", Some("US")),
            Ok("94105".into())
        );
        assert_eq!(
            normalize_postcode("941051234", Some("US")),
            Ok("94105-1234".into())
        );
        assert_eq!(
            normalize_postcode("94105-1234", Some("US")),
            Ok("94105-1234".into())
        );
        assert!(normalize_postcode("9410", Some("US")).is_err());
        assert!(normalize_postcode("94-1051234", Some("US")).is_err());
        assert_eq!(
            normalize_postcode("sw1a2aa", Some("GB")),
            Ok("SW1A 2AA".into())
        );
        assert_eq!(
            normalize_postcode("M1 1AE", Some("GB")),
            Ok("M1 1AE".into())
        );
        assert_eq!(
            normalize_postcode("EC1V 9HX", Some("GB")),
            Ok("EC1V 9HX".into())
        );
        assert!(normalize_postcode("SW1A 2CA", Some("GB")).is_err());
        assert!(normalize_postcode("12345", Some("GB")).is_err());
        assert_eq!(normalize_postcode("10115", Some("DE")), Ok("10115".into()));
        assert!(normalize_postcode("1011", Some("DE")).is_err());
        assert_eq!(normalize_postcode("75008", Some("FR")), Ok("75008".into()));
        assert_eq!(normalize_postcode("2000", Some("AU")), Ok("2000".into()));
        assert!(normalize_postcode("20000", Some("AU")).is_err());
        assert_eq!(
            normalize_postcode("k1a  0b1", Some("CA")),
            Ok("K1A 0B1".into())
        );
    }

    #[test]
    fn city_state_and_empty() {
        let a = PostalAddress::parse(
            &AddressInput {
                city: Some("  SAN   francisco ".into()),
                state: Some("ca".into()),
                postal_code: Some("94105".into()),
                ..AddressInput::default()
            },
            Some("US"),
        )
        .expect("address");
        assert_eq!(a.city(), Some("San Francisco"));
        assert_eq!(a.state(), Some("CA"));
        assert_eq!(a.postal_code(), Some("94105"));
        assert!(PostalAddress::parse(&AddressInput::default(), Some("US")).is_err());
    }
}

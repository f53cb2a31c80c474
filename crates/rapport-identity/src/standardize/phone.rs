//! Phone numbers in E.164, parsed and validated with the `phonenumber` crate (libphonenumber
//! metadata) against a configurable default region for numbers written without `+`.

use phonenumber::country::Id;
use phonenumber::Mode;
use serde::Serialize;

use crate::error::ValueProblem;

/// A phone number valid for its region, formatted as E.164 (`+14155552671`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PhoneE164 {
    raw: String,
    e164: String,
}

impl PhoneE164 {
    /// Parses `raw`; numbers without a `+` country code are read in `default_region`
    /// (ISO 3166-1 alpha-2, e.g. `"US"`, `"GB"`).
    pub fn parse(raw: &str, default_region: &str) -> Result<Self, ValueProblem> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ValueProblem::Empty);
        }
        let region = region_id(default_region)?;
        // Leading "00" is the international prefix in most of the world; treat it as "+".
        let text = match trimmed.strip_prefix("00") {
            Some(rest) if !trimmed.starts_with("000") => format!("+{rest}"),
            _ => trimmed.to_owned(),
        };
        let number = phonenumber::parse(Some(region), &text)
            .map_err(|e| ValueProblem::BadPhone(e.to_string()))?;
        if !phonenumber::is_valid(&number) {
            return Err(ValueProblem::BadPhone(
                "not a valid number for its region".into(),
            ));
        }
        let e164 = number.format().mode(Mode::E164).to_string();
        Ok(Self {
            raw: raw.to_owned(),
            e164,
        })
    }

    /// The value as received.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// `+` followed by country code and national number.
    pub fn e164(&self) -> &str {
        &self.e164
    }
}

/// Checks a region code, returning the `phonenumber` identifier for it.
pub(crate) fn region_id(region: &str) -> Result<Id, ValueProblem> {
    region
        .trim()
        .to_ascii_uppercase()
        .parse::<Id>()
        .map_err(|_| ValueProblem::UnknownRegion(region.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_of_one_number_agree() {
        let forms = [
            "(415) 555-2671",
            "415.555.2671",
            "+1 415 555 2671",
            "001 415 555 2671",
            "4155552671",
        ];
        for f in forms {
            let p = PhoneE164::parse(f, "US").expect(f);
            assert_eq!(p.e164(), "+14155552671", "{f}");
        }
    }

    #[test]
    fn default_region_applies_to_national_numbers() {
        let uk = PhoneE164::parse("020 7946 0018", "GB").expect("uk");
        assert_eq!(uk.e164(), "+442079460018");
        let de = PhoneE164::parse("030 901820", "de").expect("de");
        assert_eq!(de.e164(), "+4930901820");
    }

    #[test]
    fn rejects_invalid_numbers_and_regions() {
        assert!(PhoneE164::parse("12", "US").is_err());
        assert!(PhoneE164::parse("call me", "US").is_err());
        assert!(PhoneE164::parse("", "US").is_err());
        assert!(matches!(
            PhoneE164::parse("4155552671", "XX"),
            Err(ValueProblem::UnknownRegion(_))
        ));
    }
}

//! Property tests: standardizing a standardized value changes nothing, and every way of
//! writing one phone number gives the same E.164.

use proptest::prelude::*;

use super::*;

proptest! {
    #[test]
    fn email_standardization_is_idempotent(
        local in "[A-Za-z0-9][A-Za-z0-9._+-]{0,12}[A-Za-z0-9]",
        domain in "[A-Za-z][A-Za-z0-9-]{0,8}[A-Za-z0-9]\\.(com|org|CO\\.UK|de)",
        pad in "[ \t]{0,2}",
    ) {
        let raw = format!("{pad}{local}@{domain}{pad}");
        let policy = EmailPolicy::default();
        if let Ok(e) = Email::parse(&raw, &policy) {
            let again = Email::parse(e.normalized(), &policy).expect("normalized parses");
            prop_assert_eq!(again.normalized(), e.normalized());
            prop_assert_eq!(again.match_key(), e.match_key());
        }
    }

    #[test]
    fn name_standardization_is_idempotent(raw in "[A-Za-zÀ-ÿ' .,-]{1,30}( [A-Za-z]{1,10}){0,3}") {
        if let Ok(n) = PersonName::parse(&raw) {
            let again = PersonName::parse(n.display()).expect("display parses");
            prop_assert_eq!(again.display(), n.display());
            prop_assert_eq!(again.canonical_first(), n.canonical_first());
        }
    }

    #[test]
    fn same_phone_number_same_e164(
        area in 201u32..989,
        exchange in 200u32..999,
        line in 0u32..10_000,
        style in 0usize..6,
    ) {
        let (a, e, l) = (area, exchange, format!("{line:04}"));
        let forms = [
            format!("({a}) {e}-{l}"),
            format!("{a}.{e}.{l}"),
            format!("+1 {a} {e} {l}"),
            format!("1-{a}-{e}-{l}"),
            format!("{a}{e}{l}"),
            format!("001 {a} {e} {l}"),
        ];
        let reference = PhoneE164::parse(&forms[4], "US");
        let other = PhoneE164::parse(&forms[style], "US");
        match (reference, other) {
            (Ok(r), Ok(o)) => {
                prop_assert_eq!(r.e164(), o.e164());
                let again = PhoneE164::parse(r.e164(), "GB").expect("E.164 parses in any region");
                prop_assert_eq!(again.e164(), r.e164());
            }
            (Err(_), Err(_)) => {}
            (r, o) => prop_assert!(false, "validity differs: {:?} vs {:?}", r, o),
        }
    }

    #[test]
    fn date_standardization_is_idempotent(y in 1900i32..2100, m in 1u32..=12, d in 1u32..=31, first in any::<bool>()) {
        let order = if first { DateOrder::DayFirst } else { DateOrder::MonthFirst };
        if let Some(date) = IsoDate::new(y, m, d) {
            let iso = date.to_string();
            prop_assert_eq!(IsoDate::parse(&iso, order), Ok(date));
            let written = match order {
                DateOrder::DayFirst => format!("{d}/{m}/{y}"),
                DateOrder::MonthFirst => format!("{m}/{d}/{y}"),
            };
            prop_assert_eq!(IsoDate::parse(&written, order), Ok(date));
        }
    }

    #[test]
    fn address_standardization_is_idempotent(
        number in 1u32..9999,
        words in "[a-z]{2,9}( [a-z]{2,9}){0,2}",
        kind in prop::sample::select(vec!["street", "Avenue", "rd.", "Blvd", "lane", "north", "apt 4b", "#12"]),
        country in prop::sample::select(vec!["US", "GB", "DE", "FR", "AU"]),
    ) {
        let input = AddressInput {
            street: Some(format!("{number} {words} {kind}")),
            country: Some(country.into()),
            ..AddressInput::default()
        };
        let a = PostalAddress::parse(&input, None).expect("address");
        let b = PostalAddress::parse(&a.to_input(), None).expect("standardized parses");
        prop_assert_eq!(a.to_input(), b.to_input());
    }

    #[test]
    fn country_codes_are_fixed_points(raw in prop::sample::select(vec!["usa", "United Kingdom", "deu", "France", "JP", "Viet Nam", "Holland"])) {
        let code = country_code(raw).expect("known");
        prop_assert_eq!(country_code(code), Ok(code));
    }
}

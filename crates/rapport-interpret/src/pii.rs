//! Personal data in free text: detection with checksums and validity rules where the format
//! has them, and redaction with typed placeholders.
//!
//! Entities carry their kind and **character** offsets but never the matched text, so an
//! analysis stored as JSON does not itself become a copy of the personal data.

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::InterpretError;
use crate::text::{CharMap, Span};

/// Kinds of personal data detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// An email address.
    Email,
    /// A phone number (7 to 15 digits, with separators or a country code for short ones).
    Phone,
    /// A payment card number that passes the Luhn check.
    Card,
    /// An IBAN that passes the mod-97 check.
    Iban,
    /// A US Social Security number with valid area, group and serial.
    Ssn,
    /// A UK National Insurance number with a valid prefix.
    Nino,
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// A postal address (heuristic: number + street word, optional city/state/ZIP).
    Address,
    /// A person's name in context ("my name is ...", "Dear Mr ...").
    PersonName,
}

impl PiiKind {
    /// The placeholder that replaces it in redacted text.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::Card => "[CARD]",
            PiiKind::Iban => "[IBAN]",
            PiiKind::Ssn => "[SSN]",
            PiiKind::Nino => "[NINO]",
            PiiKind::Ipv4 | PiiKind::Ipv6 => "[IP]",
            PiiKind::Address => "[ADDRESS]",
            PiiKind::PersonName => "[NAME]",
        }
    }
}

/// One piece of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiiEntity {
    /// What it is.
    pub kind: PiiKind,
    /// Where it is, in character offsets.
    pub span: Span,
}

/// Luhn checksum over ASCII digits.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    let mut count = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(d) = c.to_digit(10) else {
            return false;
        };
        let v = if i % 2 == 1 {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
        sum += v;
        count += 1;
    }
    count > 0 && sum % 10 == 0
}

/// IBAN mod-97 check (spaces ignored, case-insensitive, length 15..=34).
pub fn iban_valid(iban: &str) -> bool {
    let s: String = iban
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if !(15..=34).contains(&s.len()) || !s.is_ascii() {
        return false;
    }
    let (head, tail) = s.split_at(4);
    let b = head.as_bytes();
    if !(b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && b[2].is_ascii_digit()
        && b[3].is_ascii_digit())
    {
        return false;
    }
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// US SSN validity: area not 000, 666 or 900-999; group not 00; serial not 0000.
pub fn ssn_valid(area: u32, group: u32, serial: u32) -> bool {
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// UK NINO prefix rules: first letter not D, F, I, Q, U, V; second not D, F, I, O, Q, U, V;
/// prefixes BG, GB, KN, NK, NT, TN, ZZ never issued; suffix A-D.
pub fn nino_valid(prefix: &str, suffix: char) -> bool {
    let p: Vec<char> = prefix.chars().map(|c| c.to_ascii_uppercase()).collect();
    if p.len() != 2 || !p.iter().all(char::is_ascii_uppercase) {
        return false;
    }
    let bad_first = matches!(p[0], 'D' | 'F' | 'I' | 'Q' | 'U' | 'V');
    let bad_second = matches!(p[1], 'D' | 'F' | 'I' | 'O' | 'Q' | 'U' | 'V');
    let pair: String = p.iter().collect();
    let banned = matches!(
        pair.as_str(),
        "BG" | "GB" | "KN" | "NK" | "NT" | "TN" | "ZZ"
    );
    !bad_first && !bad_second && !banned && matches!(suffix.to_ascii_uppercase(), 'A'..='D')
}

/// Capitalised words that follow "this is" / "dear" without being names.
const NOT_NAMES: &[&str] = &[
    "the",
    "this",
    "that",
    "it",
    "not",
    "very",
    "so",
    "your",
    "my",
    "our",
    "a",
    "an",
    "i",
    "about",
    "regarding",
    "urgent",
    "important",
    "ridiculous",
    "unacceptable",
    "terrible",
    "awful",
    "great",
    "insane",
    "crazy",
    "outrageous",
    "absurd",
    "amazing",
    "awesome",
    "really",
    "just",
    "what",
    "why",
    "how",
    "getting",
    "taking",
    "going",
    "still",
    "customer",
    "sir",
    "madam",
    "team",
    "support",
    "all",
    "everyone",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "hello",
    "hi",
    "thanks",
    "thank",
    "please",
    "sorry",
    "no",
    "yes",
    "ok",
    "okay",
    "now",
    "again",
];

#[derive(Debug, Clone)]
pub(crate) struct PiiDetector {
    email: Regex,
    card: Regex,
    iban: Regex,
    ssn: Regex,
    nino: Regex,
    ipv4: Regex,
    ipv6: Regex,
    phone: Regex,
    address: Regex,
    address_lower: Regex,
    address_de: Regex,
    address_fr: Regex,
    name_context: Regex,
    name_lower: Regex,
    name_signoff: Regex,
    name_title: Regex,
    reference_before: Regex,
    code_before: Regex,
}

fn re(p: &str) -> Result<Regex, InterpretError> {
    Regex::new(p).map_err(|e| InterpretError::Model(format!("pii pattern: {e}")))
}

impl PiiDetector {
    pub(crate) fn new() -> Result<Self, InterpretError> {
        let name = r"(\p{Lu}[\p{L}'’-]+(?:[ \t]+\p{Lu}[\p{L}'’-]+){0,2})";
        let title = r"(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+)";
        Ok(PiiDetector {
            email: re(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b")?,
            card: re(
                r"\b(?:\d{13,19}|\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{1,7}|\d{4}[ -]\d{6}[ -]\d{4,5})\b",
            )?,
            iban: re(r"(?i)\b[a-z]{2}\d{2}(?:[ ]?[a-z0-9]{4}){2,7}(?:[ ]?[a-z0-9]{1,4})?\b")?,
            ssn: re(r"\b(\d{3})[- ](\d{2})[- ](\d{4})\b")?,
            nino: re(r"(?i)\b([a-z]{2}) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([a-d])\b")?,
            ipv4: re(
                r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
            )?,
            ipv6: re(r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}")?,
            phone: re(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d(?:[ .-]?\d){5,14}")?,
            address: re(concat!(
                r"\b\d{1,5}[A-Za-z]?,?[ \t]+(?:\p{Lu}[\p{L}'’.-]*[ \t]+){1,3}",
                r"(?:[Ss]treet|St|[Rr]oad|Rd|[Aa]venue|Ave|[Ll]ane|Ln|[Dd]rive|Dr|[Bb]oulevard|Blvd|",
                r"[Cc]ourt|Ct|[Pp]lace|Pl|[Ww]ay|[Tt]errace|[Cc]lose|[Cc]rescent|[Ss]quare|Sq|",
                r"[Hh]ighway|Hwy|[Pp]arkway|Pkwy|[Gg]ardens|[Mm]ews|[Rr]ow|[Hh]ill)\b\.?",
                r"(?:,?[ \t]+(?:Apt|Suite|Unit|Flat)\.?[ \t]*\w+)?",
                r"(?:,[ \t]*\p{Lu}[\p{L}.-]*(?:[ \t]+\p{Lu}[\p{L}.-]*){0,2})?",
                r"(?:,?[ \t]*(?:[A-Z]{2}[ \t]+\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}))?"
            ))?,
            // Written in lower case, as in chat: one or two plain words and a full street word.
            address_lower: re(concat!(
                r"\b\d{1,5}[a-z]?[ \t]+([a-z]{2,}(?:[ \t]+[a-z]{2,})?)[ \t]+",
                r"(?:street|road|avenue|lane|drive|close|way|court|place|terrace|crescent|square|gardens|rd|ave)\b"
            ))?,
            // German order: street word, then number, optional postcode and town.
            address_de: re(concat!(
                r"\b\p{Lu}[\p{L}-]*(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm)[ \t]+\d{1,4}[a-z]?",
                r"(?:,?[ \t]*\d{5}[ \t]+\p{Lu}[\p{L}-]+)?"
            ))?,
            // French order: number, street word in lower case, name, optional postcode and town.
            address_fr: re(concat!(
                r"(?i:\b\d{1,4}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?:rue|avenue|av\.|boulevard|bd|place|impasse|allée|chemin|quai|cours))",
                r"(?:[ \t]+(?:de la|de l'|des|du|de|d'|la|le|les))?(?:[ \t]+\p{Lu}[\p{L}'-]*){1,3}",
                r"(?:,?[ \t]*\d{5}[ \t]+\p{Lu}[\p{L}-]+)?"
            ))?,
            // After "my name is" people often type their name in lower case.
            name_lower: re(
                r"(?i:\bmy name is|\bmy name's|\bname:)[ \t]+(\p{Ll}[\p{Ll}'’-]+(?:[ \t]+\p{Ll}[\p{Ll}'’-]+)?)",
            )?,
            // A name closing a chat message: "- Tom", "-- Ana Ruiz", "thanks, Ana".
            name_signoff: re(&format!(
                r"(?:(?:^|\n|[ \t])(?:-|--|—)|(?i:\bthanks|\bthank you|\bcheers|\bregards|\bbest),)[ \t]*{name}[ \t]*$"
            ))?,
            name_context: re(&format!(
                concat!(
                    r"(?:(?i:\bmy name is|\bmy name's|\bname:|\bthis is|\bcall me|\bdear|\bsincerely,?|\bregards,?|\bspoke (?:to|with)|\bspeaking with",
                    r"|\bcolleague|\bhelped by|\bask for|\bin the name of|\baccount holder(?: is)?",
                    r"|\bmy (?:husband|wife|partner|son|daughter|mother|father|mum|mom|dad|brother|sister)))[ \t]+{title}?{name}",
                    // A name alone on the line after a sign-off.
                    r"|(?:(?i:\b(?:kind |best |warm )?regards|\bthanks|\bthank you|\bcheers|\bsincerely|\byours (?:sincerely|faithfully|truly)|\bbest wishes|\bbest|\bmany thanks)),?[ \t]*\r?\n[ \t]*{title}?{name}[ \t]*(?:\r?\n|$)"
                ),
                title = title,
                name = name
            ))?,
            name_title: re(&format!(r"\b{title}{name}"))?,
            reference_before: re(
                r"(?i)(order|ref|reference|invoice|tracking|ticket|case|account|customer|booking|parcel|sku|serial|item|product|model|part|version|claim|policy)( (no|number|id|#|code))?[ .:#]*$",
            )?,
            // Narrower than `reference_before`: "my account 4111 ..." may well be a card.
            code_before: re(
                r"(?i)\b(order|ref|reference|invoice|tracking|ticket|case|parcel|sku|serial|booking|claim)( (no|number|id|#|code))?[ .:#]*$",
            )?,
        })
    }

    /// Detects entities; spans never overlap (earlier kinds in this order win: email, IBAN,
    /// card, SSN, NINO, IPv6, IPv4, phone, address, name).
    pub(crate) fn detect(&self, text: &str, map: &CharMap) -> Vec<PiiEntity> {
        let mut found: Vec<(PiiKind, usize, usize)> = Vec::new();
        let add = |kind, a: usize, b: usize, found: &mut Vec<(PiiKind, usize, usize)>| {
            if a < b && !found.iter().any(|&(_, x, y)| a < y && x < b) {
                found.push((kind, a, b));
            }
        };
        // Cheap gates before the scans: an email needs "@", an IPv6 address at least two ":"
        // (it may have no decimal digit: "abcd::ef"), and the other kinds but names a digit
        // (`\d` is any Unicode decimal digit, hence `is_numeric` beyond ASCII). Most
        // messages have none of them.
        let has_digit = text.bytes().any(|b| b.is_ascii_digit())
            || (!text.is_ascii() && text.chars().any(char::is_numeric));
        if text.contains('@') {
            for m in self.email.find_iter(text) {
                add(PiiKind::Email, m.start(), m.end(), &mut found);
            }
        }
        let has_colons = text.bytes().filter(|&b| b == b':').nth(1).is_some();
        if has_digit || has_colons {
            self.detect_numbers(text, has_digit, has_colons, &mut found);
        }
        for c in self.name_lower.captures_iter(text) {
            let Some(g) = c.get(1) else { continue };
            let mut end = g.start();
            for w in g.as_str().split_whitespace() {
                if LOWER_STOP.contains(&w) || NOT_NAMES.contains(&w) {
                    break;
                }
                end = g.start() + g.as_str().find(w).unwrap_or(0) + w.len();
            }
            add(PiiKind::PersonName, g.start(), end, &mut found);
        }
        for re in [&self.name_context, &self.name_title, &self.name_signoff] {
            for c in re.captures_iter(text) {
                let Some(g) = c.get(1).or_else(|| c.get(2)) else {
                    continue;
                };
                let (a, b) = trim_name(text, g.start(), g.end());
                let next_word = text[g.end()..].split_whitespace().next().map(|w| {
                    w.trim_matches(|c: char| !c.is_alphanumeric())
                        .to_lowercase()
                });
                let org =
                    next_word.is_some_and(|w| ORG_WORDS.contains(&w.as_str())) && b == g.end();
                if a < b && !org {
                    add(PiiKind::PersonName, a, b, &mut found);
                }
            }
        }
        found.sort_by_key(|&(_, a, _)| a);
        found
            .into_iter()
            .map(|(kind, a, b)| PiiEntity {
                kind,
                span: map.span(a, b),
            })
            .collect()
    }

    /// The kinds that contain digits or colons: IBAN, card, SSN, NINO, IP addresses, phone,
    /// postal address (in [`PiiDetector::detect`]'s order).
    fn detect_numbers(
        &self,
        text: &str,
        has_digit: bool,
        has_colons: bool,
        found: &mut Vec<(PiiKind, usize, usize)>,
    ) {
        let add = |kind, a: usize, b: usize, found: &mut Vec<(PiiKind, usize, usize)>| {
            if a < b && !found.iter().any(|&(_, x, y)| a < y && x < b) {
                found.push((kind, a, b));
            }
        };
        if has_digit {
            for m in self.iban.find_iter(text) {
                if iban_valid(m.as_str()) {
                    add(PiiKind::Iban, m.start(), m.end(), found);
                }
            }
            for m in self.card.find_iter(text) {
                let digits: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
                if (13..=19).contains(&digits.len())
                    && luhn_valid(&digits)
                    && !joined_before(text, m.start())
                    && !self.code_before.is_match(&text[..m.start()])
                {
                    add(PiiKind::Card, m.start(), m.end(), found);
                }
            }
            for c in self.ssn.captures_iter(text) {
                let num = |i: usize| c.get(i).and_then(|g| g.as_str().parse::<u32>().ok());
                if let (Some(m), Some(a), Some(g), Some(s)) = (c.get(0), num(1), num(2), num(3)) {
                    if ssn_valid(a, g, s) {
                        add(PiiKind::Ssn, m.start(), m.end(), found);
                    }
                }
            }
            for c in self.nino.captures_iter(text) {
                let (Some(m), Some(p), Some(s)) = (c.get(0), c.get(1), c.get(5)) else {
                    continue;
                };
                let suffix = s.as_str().chars().next().unwrap_or('?');
                if nino_valid(p.as_str(), suffix) {
                    add(PiiKind::Nino, m.start(), m.end(), found);
                }
            }
        }
        if has_colons {
            for m in self.ipv6.find_iter(text) {
                let s = m.as_str();
                let hex = s.chars().filter(char::is_ascii_hexdigit).count();
                if hex >= 3
                    && s.parse::<std::net::Ipv6Addr>().is_ok()
                    && !glued(text, m.start(), m.end())
                {
                    add(PiiKind::Ipv6, m.start(), m.end(), found);
                }
            }
        }
        if !has_digit {
            return;
        }
        for m in self.ipv4.find_iter(text) {
            let after = &text[m.end()..];
            let version_like =
                after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_digit());
            if !version_like {
                add(PiiKind::Ipv4, m.start(), m.end(), found);
            }
        }
        for m in self.phone.find_iter(text) {
            if self.is_phone(text, m.start(), m.end()) {
                add(PiiKind::Phone, m.start(), m.end(), found);
            }
        }
        for re in [&self.address, &self.address_de, &self.address_fr] {
            for m in re.find_iter(text) {
                add(PiiKind::Address, m.start(), m.end(), found);
            }
        }
        for c in self.address_lower.captures_iter(text) {
            let (Some(m), Some(words)) = (c.get(0), c.get(1)) else {
                continue;
            };
            // "2 hours on the road" is not an address.
            let plain = words
                .as_str()
                .split_whitespace()
                .all(|w| !LOWER_STOP.contains(&w) && !NOT_NAMES.contains(&w));
            if plain {
                add(PiiKind::Address, m.start(), m.end(), found);
            }
        }
    }

    fn is_phone(&self, text: &str, a: usize, b: usize) -> bool {
        if glued(text, a, b) || continues_digits(text, a, b) {
            return false;
        }
        let s = &text[a..b];
        let digits = s.chars().filter(char::is_ascii_digit).count();
        let plus = s.starts_with('+') || s.contains('(');
        let separated = s.contains([' ', '-', '.']);
        let date_like = s.len() <= 10
            && s.split(['-', '/', '.']).count() == 3
            && s.split(['-', '/', '.'])
                .any(|p| p.len() == 4 || p.len() <= 2)
            && !plus
            && digits <= 8;
        if date_like || digits > 15 {
            return false;
        }
        let enough = digits >= 9 || (digits >= 7 && (plus || separated));
        // Order, invoice and tracking numbers are not phone numbers.
        let reference = self.reference_before.is_match(&text[..a]);
        enough && (plus || !reference)
    }
}

/// Whether a match is glued to letters or digits (part of a longer token).
fn glued(text: &str, a: usize, b: usize) -> bool {
    let before = text[..a].chars().next_back();
    let after = text[b..].chars().next();
    before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '@')
        || after.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Whether a match is one piece of a longer code: joined by `-`, `/` or `.` to letters or
/// digits before it ("INV-2025-29551"), or followed by more digit groups ("1234 5678 ... 0265").
fn continues_digits(text: &str, a: usize, b: usize) -> bool {
    let mut after = text[b..].chars();
    let more_after = matches!(after.next(), Some(' ' | '-' | '/' | '_' | ':'))
        && after.next().is_some_and(|c| c.is_ascii_digit());
    joined_before(text, a) || more_after
}

/// Whether the text before `a` ends with a letter or digit and a joiner (`INV-`, `2025/`).
/// (Cards are not checked for following digit groups: two cards in a row are two cards.)
fn joined_before(text: &str, a: usize) -> bool {
    let mut before = text[..a].chars().rev();
    matches!(before.next(), Some('-' | '/' | '.' | '_'))
        && before.next().is_some_and(char::is_alphanumeric)
}

/// Lower-case words that are never part of a name or a street name typed in lower case.
const LOWER_STOP: &[&str] = &[
    "and", "or", "but", "from", "here", "calling", "with", "in", "on", "at", "of", "to", "for",
    "the", "a", "an", "is", "was", "im", "i'm", "also", "down", "up", "hours", "minutes", "days",
    "weeks", "months", "times", "more", "other", "same", "one", "two", "three", "few", "long",
    "whole", "entire", "last", "next", "first", "way", "by",
];

/// Words that, right after a capitalised candidate, show it names an organisation or a team
/// ("Dear Brightwave team"), not a person.
const ORG_WORDS: &[&str] = &[
    "team",
    "support",
    "customer",
    "customers",
    "service",
    "services",
    "department",
    "staff",
    "company",
    "ltd",
    "inc",
    "limited",
    "group",
    "bank",
    "store",
    "shop",
];

/// Drops leading/trailing capitalised non-names ("This is Ridiculous" is not a name); returns
/// an empty range if nothing remains.
fn trim_name(text: &str, a: usize, b: usize) -> (usize, usize) {
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, c) in text[a..b].char_indices() {
        if c == ' ' || c == '\t' {
            if let Some(s) = start.take() {
                words.push((a + s, a + i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        words.push((a + s, b));
    }
    let is_stop =
        |&(x, y): &(usize, usize)| NOT_NAMES.contains(&text[x..y].to_lowercase().as_str());
    // Everything from the first stop word on is not part of the name.
    if let Some(pos) = words.iter().position(is_stop) {
        words.truncate(pos);
    }
    match (words.first(), words.last()) {
        (Some(f), Some(l)) => (f.0, l.1),
        _ => (a, a),
    }
}

/// Replaces each entity with its typed placeholder. Entities must not overlap (as returned
/// by detection); overlapping or out-of-range ones are skipped.
pub fn redact(text: &str, entities: &[PiiEntity]) -> String {
    let map = CharMap::new(text);
    let mut sorted: Vec<&PiiEntity> = entities.iter().collect();
    sorted.sort_by_key(|e| e.span.start);
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0usize;
    for e in sorted {
        let (Some(a), Some(b)) = (map.byte(e.span.start), map.byte(e.span.end)) else {
            continue;
        };
        if a < cursor || b < a {
            continue;
        }
        out.push_str(&text[cursor..a]);
        out.push_str(e.kind.placeholder());
        cursor = b;
    }
    out.push_str(&text[cursor..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(text: &str) -> Vec<(PiiKind, String)> {
        let d = PiiDetector::new().expect("patterns");
        d.detect(text, &CharMap::new(text))
            .into_iter()
            .map(|e| (e.kind, e.span.slice(text).to_string()))
            .collect()
    }

    fn kinds(text: &str) -> Vec<PiiKind> {
        detect(text).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("378282246310005"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid(""));
        assert_eq!(kinds("card 4111 1111 1111 1111 ok"), [PiiKind::Card]);
        assert!(!kinds("ref 4111 1111 1111 1112").contains(&PiiKind::Card));
        assert!(!kinds("number 1234567890123456").contains(&PiiKind::Card));
        assert_eq!(
            kinds("charge my account 4111 1111 1111 1111"),
            [PiiKind::Card]
        );
        assert!(kinds("tracking 4111 1111 1111 1111 0265").is_empty());
    }

    #[test]
    fn iban() {
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(iban_valid("DE89370400440532013000"));
        assert!(!iban_valid("GB82 WEST 1234 5698 7654 33"));
        assert_eq!(
            kinds("pay to GB82 WEST 1234 5698 7654 32 please"),
            [PiiKind::Iban]
        );
        assert!(!kinds("pay to GB82 WEST 1234 5698 7654 31").contains(&PiiKind::Iban));
    }

    #[test]
    fn ssn_rules() {
        assert_eq!(kinds("my ssn is 123-45-6789"), [PiiKind::Ssn]);
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert!(!kinds(bad).contains(&PiiKind::Ssn), "{bad}");
        }
    }

    #[test]
    fn nino_rules() {
        assert_eq!(kinds("NI number AB 12 34 56 C"), [PiiKind::Nino]);
        assert_eq!(kinds("QQ123456C").len(), 0);
        assert_eq!(kinds("BG123456A").len(), 0);
        assert_eq!(kinds("AO123456A").len(), 0);
        assert_eq!(kinds("AB123456E").len(), 0);
    }

    #[test]
    fn emails_phones_ips() {
        assert_eq!(
            detect("mail ana.garcia+x@example.co.uk now"),
            [(PiiKind::Email, "ana.garcia+x@example.co.uk".to_string())]
        );
        assert_eq!(kinds("call me on +44 7700 900123"), [PiiKind::Phone]);
        assert_eq!(kinds("call (555) 123-4567 tonight"), [PiiKind::Phone]);
        assert!(kinds("on 2024-03-15 at 10:30").is_empty());
        assert!(kinds("order number 123456789").is_empty());
        assert_eq!(kinds("from 192.168.1.20 today"), [PiiKind::Ipv4]);
        assert_eq!(kinds("addr 2001:db8::8a2e:370:7334 x"), [PiiKind::Ipv6]);
        assert!(kinds("version 1.2.3.4.5").is_empty());
    }

    #[test]
    fn addresses_and_names() {
        assert_eq!(
            detect("I live at 12 Baker Street, send it there"),
            [(PiiKind::Address, "12 Baker Street".to_string())]
        );
        assert_eq!(
            detect("ship to 123 Main St, Springfield, IL 62704 asap"),
            [(
                PiiKind::Address,
                "123 Main St, Springfield, IL 62704".to_string()
            )]
        );
        assert_eq!(
            detect("Hello, my name is Ana García and I need help"),
            [(PiiKind::PersonName, "Ana García".to_string())]
        );
        assert_eq!(
            detect("Hi, this is John."),
            [(PiiKind::PersonName, "John".to_string())]
        );
        assert_eq!(
            detect("Dear Mr Smith,"),
            [(PiiKind::PersonName, "Smith".to_string())]
        );
        assert!(detect("This is Ridiculous").is_empty());
        assert!(detect("it took 2 hours on the road").is_empty());
    }

    #[test]
    fn redaction_replaces_every_entity() {
        let text = "I'm Ana, my name is Ana Ruiz, email ana@x.io, card 4111-1111-1111-1111.";
        let d = PiiDetector::new().expect("patterns");
        let ents = d.detect(text, &CharMap::new(text));
        let red = redact(text, &ents);
        assert_eq!(
            red,
            "I'm Ana, my name is [NAME], email [EMAIL], card [CARD]."
        );
    }
}

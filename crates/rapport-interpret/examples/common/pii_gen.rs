//! A seeded generator of synthetic chat and email messages with labelled personal data
//! (names, postal addresses, payment cards, IBANs, phones in many national formats, emails,
//! IP addresses, SSNs, NINOs) and decoys that look like them but are not personal data
//! (order, invoice, tracking and case numbers, dates, timestamps, amounts, versions, SKUs).
//! The same seed always gives the same messages. Every value is invented: cards and IBANs are
//! generated to pass their checksums, names and streets come from short lists below.
#![allow(dead_code)]

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Kinds labelled, as named in the report (IPv4 and IPv6 are both `ip`).
pub const KINDS: [&str; 10] = [
    "person_name",
    "address",
    "card",
    "iban",
    "phone",
    "email",
    "ip",
    "ssn",
    "nino",
    "none",
];

/// One labelled piece of personal data, in character offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub kind: &'static str,
    pub start: usize,
    pub end: usize,
}

/// One synthetic message.
#[derive(Debug, Clone)]
pub struct Sample {
    pub channel: &'static str,
    pub text: String,
    pub labels: Vec<Label>,
    /// How many decoys were put in.
    pub decoys: usize,
}

/// Builds a text piece by piece, recording where labelled values land.
struct Builder {
    text: String,
    chars: usize,
    labels: Vec<Label>,
    decoys: usize,
}

impl Builder {
    fn new() -> Self {
        Builder {
            text: String::new(),
            chars: 0,
            labels: Vec::new(),
            decoys: 0,
        }
    }
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.chars += s.chars().count();
    }
    fn pii(&mut self, kind: &'static str, s: &str) {
        let start = self.chars;
        self.push(s);
        self.labels.push(Label {
            kind,
            start,
            end: self.chars,
        });
    }
    fn decoy(&mut self, s: &str) {
        self.push(s);
        self.decoys += 1;
    }
}

const FIRST: &[&str] = &[
    "Ana", "James", "Priya", "Mohammed", "Olivia", "Chen", "Sofia", "Liam", "Fatima", "Noah",
    "Emma", "Lukas", "Aisha", "Mateo", "Grace", "Dmitri", "Chloe", "Kwame", "Ingrid", "Tom",
    "Hannah", "Rafael", "Zoe", "Oliver", "Mei", "Siobhan", "Jean-Luc", "Amélie", "José", "Björn",
];
const LAST: &[&str] = &[
    "García",
    "Smith",
    "Patel",
    "Khan",
    "Johnson",
    "Wang",
    "Rossi",
    "O'Brien",
    "Nowak",
    "Müller",
    "Dubois",
    "Okafor",
    "Jensen",
    "Williams",
    "Brown",
    "Taylor",
    "Silva",
    "Kowalski",
    "MacLeod",
    "Fernández",
    "Nguyen",
    "Hughes",
    "Schmidt",
    "Andersson",
    "Ahmed",
    "Evans",
    "Moreau",
    "Clarke",
    "Ivanova",
    "Lee",
];
const STREETS: &[&str] = &[
    "Baker",
    "Elm",
    "Oak",
    "Station",
    "Church",
    "Victoria",
    "Mill",
    "Park",
    "Maple",
    "High",
    "King",
    "Queen",
    "Willow",
    "Cedar",
    "Lincoln",
    "Washington",
    "Chestnut",
    "Albert",
];
const STREET_TYPES: &[&str] = &[
    "Street", "Road", "Avenue", "Lane", "Drive", "Close", "Way", "Court", "St", "Rd", "Ave",
    "Crescent", "Terrace", "Place",
];
const UK_TOWNS: &[(&str, &str)] = &[
    ("London", "NW1 6XE"),
    ("Leeds", "LS6 2AB"),
    ("Manchester", "M14 5RT"),
    ("Bristol", "BS8 1TH"),
    ("Glasgow", "G12 8QQ"),
    ("Cardiff", "CF10 3AT"),
];
const US_TOWNS: &[(&str, &str, &str)] = &[
    ("Springfield", "IL", "62704"),
    ("Austin", "TX", "78701"),
    ("Portland", "OR", "97205"),
    ("Denver", "CO", "80202"),
    ("Boston", "MA", "02118"),
    ("Columbus", "OH", "43215"),
];

fn pick<'a, T>(rng: &mut ChaCha8Rng, xs: &'a [T]) -> &'a T {
    xs.choose(rng).expect("non-empty list")
}

fn one(rng: &mut ChaCha8Rng, xs: &[&'static str]) -> &'static str {
    xs.choose(rng).copied().unwrap_or("")
}

fn digits(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

fn name(rng: &mut ChaCha8Rng) -> String {
    if rng.gen_bool(0.25) {
        pick(rng, FIRST).to_string()
    } else {
        format!("{} {}", pick(rng, FIRST), pick(rng, LAST))
    }
}

fn address(rng: &mut ChaCha8Rng) -> String {
    let num = rng.gen_range(1..400);
    let street = format!("{} {}", pick(rng, STREETS), pick(rng, STREET_TYPES));
    match rng.gen_range(0..8) {
        0 => format!("{num} {street}"),
        5 => format!("{num} {}", street.to_lowercase()),
        6 => format!(
            "{}straße {num}, 10115 Berlin",
            pick(rng, &["Haupt", "Linden", "Schiller", "Garten"])
        ),
        7 => format!(
            "{num} rue {}, 75011 Paris",
            pick(
                rng,
                &["de la Paix", "Oberkampf", "des Lilas", "Victor Hugo"]
            )
        ),
        1 => {
            let (town, pc) = pick(rng, UK_TOWNS);
            format!("{num} {street}, {town} {pc}")
        }
        2 => {
            let (town, st, zip) = pick(rng, US_TOWNS);
            format!("{num} {street}, {town}, {st} {zip}")
        }
        3 => {
            let (town, st, zip) = pick(rng, US_TOWNS);
            format!(
                "{num} {street} Apt {}, {town}, {st} {zip}",
                rng.gen_range(1..40)
            )
        }
        _ => {
            let (town, pc) = pick(rng, UK_TOWNS);
            format!("Flat {}, {num} {street}, {town} {pc}", rng.gen_range(1..20))
        }
    }
}

fn luhn_complete(prefix: &str, len: usize, rng: &mut ChaCha8Rng) -> String {
    let mut s = format!("{prefix}{}", digits(rng, len - prefix.len() - 1));
    for d in 0..10 {
        let cand = format!("{s}{d}");
        if rapport_interpret::luhn_valid(&cand) {
            s = cand;
            break;
        }
    }
    s
}

fn card(rng: &mut ChaCha8Rng) -> String {
    let (prefix, len) = *pick(
        rng,
        &[
            ("4", 16),
            ("51", 16),
            ("55", 16),
            ("6011", 16),
            ("37", 15),
            ("34", 15),
        ],
    );
    let n = luhn_complete(prefix, len, rng);
    let sep = *pick(rng, &[" ", "-", ""]);
    if len == 15 {
        [&n[..4], &n[4..10], &n[10..]].join(sep)
    } else {
        [&n[..4], &n[4..8], &n[8..12], &n[12..]].join(sep)
    }
}

fn iban(rng: &mut ChaCha8Rng) -> String {
    let letters = |rng: &mut ChaCha8Rng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'A' + rng.gen_range(0..26u8)))
            .collect()
    };
    let (cc, bban) = match rng.gen_range(0..5) {
        0 => ("GB", format!("{}{}", letters(rng, 4), digits(rng, 14))),
        1 => ("DE", digits(rng, 18)),
        2 => ("FR", digits(rng, 23)),
        3 => ("NL", format!("{}{}", letters(rng, 4), digits(rng, 10))),
        _ => ("ES", digits(rng, 20)),
    };
    // Check digits: 98 - (BBAN + country + "00" as digits) mod 97.
    let rearranged = format!("{bban}{cc}00");
    let mut rem = 0u32;
    for c in rearranged.chars() {
        let v = c.to_digit(36).expect("alphanumeric");
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    let compact = format!("{cc}{:02}{bban}", 98 - rem);
    if rng.gen_bool(0.5) {
        compact
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        compact
    }
}

fn phone(rng: &mut ChaCha8Rng) -> String {
    let d = |rng: &mut ChaCha8Rng, n| digits(rng, n);
    match rng.gen_range(0..14) {
        12 => format!("07{}", d(rng, 9)),
        13 => format!("+447{}", d(rng, 9)),
        0 => format!("07{} {}", d(rng, 3), d(rng, 6)),
        1 => format!("+44 7{} {}", d(rng, 3), d(rng, 6)),
        2 => format!("+44 (0)20 {} {}", d(rng, 4), d(rng, 4)),
        3 => format!("020 {} {}", d(rng, 4), d(rng, 4)),
        4 => format!(
            "({}) {}-{}",
            200 + rng.gen_range(0..700),
            d(rng, 3),
            d(rng, 4)
        ),
        5 => format!(
            "{}-{}-{}",
            200 + rng.gen_range(0..700),
            d(rng, 3),
            d(rng, 4)
        ),
        6 => format!(
            "{}.{}.{}",
            200 + rng.gen_range(0..700),
            d(rng, 3),
            d(rng, 4)
        ),
        7 => format!(
            "+1 {} {} {}",
            200 + rng.gen_range(0..700),
            d(rng, 3),
            d(rng, 4)
        ),
        8 => format!("+1{}{}", 200 + rng.gen_range(0..700), d(rng, 7)),
        9 => format!("+49 30 {}", d(rng, 7)),
        10 => format!(
            "+33 6 {} {} {} {}",
            d(rng, 2),
            d(rng, 2),
            d(rng, 2),
            d(rng, 2)
        ),
        _ => format!(
            "0{} {} {} {}",
            rng.gen_range(1..8),
            d(rng, 2),
            d(rng, 2),
            d(rng, 2)
        ),
    }
}

fn email(rng: &mut ChaCha8Rng) -> String {
    let f = pick(
        rng,
        &[
            "ana",
            "j.smith",
            "priya.patel",
            "mo_khan",
            "oliviaj",
            "chen88",
            "sofia.rossi",
            "liam+shop",
        ],
    );
    let dom = pick(
        rng,
        &[
            "example.com",
            "mail.example.org",
            "example.co.uk",
            "inbox.example.net",
        ],
    );
    format!("{f}@{dom}")
}

fn ip(rng: &mut ChaCha8Rng) -> String {
    if rng.gen_bool(0.8) {
        format!(
            "{}.{}.{}.{}",
            rng.gen_range(1..224),
            rng.gen_range(0..256),
            rng.gen_range(0..256),
            rng.gen_range(1..255)
        )
    } else {
        format!(
            "2001:db8:{:x}::{:x}",
            rng.gen_range(1..0xffff),
            rng.gen_range(1..0xffff)
        )
    }
}

fn ssn(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{:03}-{:02}-{:04}",
        rng.gen_range(1..666),
        rng.gen_range(1..100),
        rng.gen_range(1..10000)
    )
}

fn nino(rng: &mut ChaCha8Rng) -> String {
    let first = *pick(
        rng,
        &[
            'A', 'B', 'C', 'E', 'H', 'J', 'K', 'L', 'M', 'P', 'R', 'S', 'W',
        ],
    );
    let second = *pick(
        rng,
        &[
            'A', 'B', 'C', 'E', 'H', 'J', 'K', 'L', 'M', 'P', 'R', 'S', 'T', 'W',
        ],
    );
    let suffix = *pick(rng, &['A', 'B', 'C', 'D']);
    let n = digits(rng, 6);
    if rng.gen_bool(0.5) {
        format!(
            "{first}{second} {} {} {} {suffix}",
            &n[..2],
            &n[2..4],
            &n[4..]
        )
    } else {
        format!("{first}{second}{n}{suffix}")
    }
}

/// A decoy phrase: looks like data but names no person.
fn decoy(rng: &mut ChaCha8Rng) -> String {
    let d = |rng: &mut ChaCha8Rng, n| digits(rng, n);
    match rng.gen_range(0..21) {
        16 => format!(
            "on {:02}.{:02}.2025",
            rng.gen_range(1..29),
            rng.gen_range(1..13)
        ),
        17 => format!(
            "speeds of {}-{} Mbps",
            rng.gen_range(10..100),
            rng.gen_range(100..999)
        ),
        18 => format!("flight BA {}", d(rng, 4)),
        19 => format!("room {}", d(rng, 4)),
        20 => format!("${},{},{}", rng.gen_range(1..10), d(rng, 3), d(rng, 3)),
        0 => format!("order #{}", d(rng, 8)),
        1 => format!("order number {}", d(rng, 10)),
        2 => format!("tracking number 1Z{}{}", d(rng, 3), d(rng, 13)),
        3 => format!(
            "tracking {} {} {} {} {}",
            d(rng, 4),
            d(rng, 4),
            d(rng, 4),
            d(rng, 4),
            d(rng, 4)
        ),
        4 => format!("parcel RM{}GB", d(rng, 9)),
        5 => format!(
            "on 2024-{:02}-{:02} {:02}:{:02}:{:02}",
            rng.gen_range(1..13),
            rng.gen_range(1..29),
            rng.gen_range(0..24),
            rng.gen_range(0..60),
            rng.gen_range(0..60)
        ),
        6 => format!(
            "on {:02}/{:02}/2025",
            rng.gen_range(1..29),
            rng.gen_range(1..13)
        ),
        7 => format!(
            "at {}:{:02}{}",
            rng.gen_range(1..13),
            rng.gen_range(0..60),
            pick(rng, &["am", "pm", ""])
        ),
        8 => format!("invoice INV-2025-{}", d(rng, 5)),
        9 => format!("£{},{}.{}", rng.gen_range(1..10), d(rng, 3), d(rng, 2)),
        10 => format!("case {}", d(rng, 8)),
        11 => format!(
            "version {}.{}.{}",
            rng.gen_range(1..10),
            rng.gen_range(0..20),
            rng.gen_range(0..100)
        ),
        12 => format!("SKU {}-{}", d(rng, 6), d(rng, 3)),
        13 => format!("ticket #{}", d(rng, 7)),
        14 => format!("booking ref {}{}", d(rng, 2), "QXK"),
        _ => format!("customer id {}", d(rng, 9)),
    }
}

/// One message: an opening, a few sentences each carrying a value or a decoy, a closing.
fn message(rng: &mut ChaCha8Rng) -> Sample {
    let email_channel = rng.gen_bool(0.4);
    let mut b = Builder::new();
    let sign_name = name(rng);
    if email_channel {
        match rng.gen_range(0..3) {
            0 => b.push("Hello,\n\n"),
            1 => b.push("Dear Brightwave team,\n\n"),
            _ => b.push("Hi there,\n\n"),
        }
    } else if rng.gen_bool(0.3) {
        b.push(one(rng, &["hi ", "Hello, ", "Hey, "]));
    }
    let parts = rng.gen_range(1..4);
    for _ in 0..parts {
        match rng.gen_range(0..15) {
            0 => {
                b.push(one(
                    rng,
                    &["My name is ", "my name is ", "This is ", "Hi, this is "],
                ));
                b.pii("person_name", &name(rng));
                b.push(". ");
            }
            13 => {
                b.push(one(rng, &["my name is ", "name: ", "my name's "]));
                b.pii("person_name", &name(rng).to_lowercase());
                b.push(". ");
            }
            1 => {
                let (lead, tail) = *pick(
                    rng,
                    &[
                        ("I spoke to ", " yesterday. "),
                        ("Your colleague ", " promised a callback. "),
                        ("I was helped by ", " on the phone. "),
                        ("The account is in the name of ", ". "),
                        ("my husband ", " set it up. "),
                        ("Please ask for ", " when you call. "),
                    ],
                );
                b.push(lead);
                b.pii("person_name", &name(rng));
                b.push(tail);
            }
            2 => {
                b.push(one(
                    rng,
                    &[
                        "Please send it to ",
                        "I moved to ",
                        "My address is ",
                        "deliver to ",
                    ],
                ));
                b.pii("address", &address(rng));
                b.push(". ");
            }
            3 => {
                b.push(one(
                    rng,
                    &[
                        "My card number is ",
                        "I paid with card ",
                        "the card was ",
                        "Charge it to ",
                    ],
                ));
                b.pii("card", &card(rng));
                b.push(". ");
            }
            4 => {
                b.push(one(
                    rng,
                    &[
                        "Refund to my IBAN ",
                        "My IBAN is ",
                        "please pay into ",
                        "bank account: ",
                    ],
                ));
                b.pii("iban", &iban(rng));
                b.push(". ");
            }
            5 | 6 => {
                b.push(one(
                    rng,
                    &[
                        "Call me on ",
                        "my number is ",
                        "You can reach me at ",
                        "ring me back on ",
                        "phone: ",
                    ],
                ));
                b.pii("phone", &phone(rng));
                b.push(one(rng, &[". ", " please. ", " after 5. ", "\n"]));
            }
            7 => {
                b.push(one(
                    rng,
                    &["My email is ", "write to ", "the account is under "],
                ));
                b.pii("email", &email(rng));
                b.push(". ");
            }
            8 => {
                b.push(one(
                    rng,
                    &[
                        "My IP address is ",
                        "the router shows ",
                        "it connects from ",
                    ],
                ));
                b.pii("ip", &ip(rng));
                b.push(". ");
            }
            9 => {
                if rng.gen_bool(0.5) {
                    b.push("My SSN is ");
                    b.pii("ssn", &ssn(rng));
                } else {
                    b.push("NI number ");
                    b.pii("nino", &nino(rng));
                }
                b.push(". ");
            }
            _ => {
                let lead = one(
                    rng,
                    &[
                        "About ",
                        "Regarding ",
                        "I'm asking about ",
                        "Still nothing for ",
                        "See ",
                        "It failed ",
                    ],
                );
                b.push(lead);
                b.decoy(&decoy(rng));
                b.push(one(
                    rng,
                    &[". ", ", any news? ", " - it never arrived. ", ". Thanks. "],
                ));
            }
        }
    }
    if !email_channel && rng.gen_bool(0.15) {
        b.push(one(rng, &["\n- ", " -- ", "\nthanks, "]));
        b.pii("person_name", &name(rng));
    }
    if email_channel {
        b.push(one(
            rng,
            &[
                "\n\nKind regards,\n",
                "\n\nThanks,\n",
                "\n\nRegards,\n",
                "\n\nSincerely,\n",
            ],
        ));
        b.pii("person_name", &sign_name);
    }
    Sample {
        channel: if email_channel { "email" } else { "chat" },
        text: b.text,
        labels: b.labels,
        decoys: b.decoys,
    }
}

/// `n` messages from `seed`.
pub fn generate(seed: u64, n: usize) -> Vec<Sample> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| message(&mut rng)).collect()
}

/// Matching counts per kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub tp: u32,
    pub fp: u32,
    pub fn_: u32,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// F-beta with beta 2 (recall weighs four times as much as precision).
    pub fn f2(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            5.0 * p * r / (4.0 * p + r)
        }
    }
}

fn ratio(a: u32, b: u32) -> f64 {
    if b == 0 {
        1.0
    } else {
        f64::from(a) / f64::from(b)
    }
}

/// Name of a detected kind in the report.
pub fn kind_name(k: rapport_interpret::PiiKind) -> &'static str {
    use rapport_interpret::PiiKind::*;
    match k {
        Email => "email",
        Phone => "phone",
        Card => "card",
        Iban => "iban",
        Ssn => "ssn",
        Nino => "nino",
        Ipv4 | Ipv6 => "ip",
        Address => "address",
        PersonName => "person_name",
    }
}

/// A prediction matches a label of the same kind whose span it overlaps by at least half of
/// their union (character intersection over union >= 0.5).
pub fn matches(a: (usize, usize), b: (usize, usize)) -> bool {
    let inter = a.1.min(b.1).saturating_sub(a.0.max(b.0));
    let union = a.1.max(b.1) - a.0.min(b.0);
    union > 0 && inter * 2 >= union
}

/// Per-kind counts (index as `KINDS`, last = all kinds together), plus the share of labelled
/// characters covered by any prediction (what redaction hides).
pub fn evaluate(
    interp: &rapport_interpret::Interpreter,
    samples: &[Sample],
) -> (Vec<Counts>, f64, Vec<String>) {
    let mut counts = vec![Counts::default(); KINDS.len()];
    let (mut covered, mut total) = (0usize, 0usize);
    let mut errors = Vec::new();
    for s in samples {
        let preds: Vec<(&str, usize, usize)> = interp
            .pii(&s.text)
            .into_iter()
            .map(|e| (kind_name(e.kind), e.span.start, e.span.end))
            .collect();
        let mut used = vec![false; preds.len()];
        for l in &s.labels {
            let k = KINDS.iter().position(|x| *x == l.kind).expect("kind");
            let hit = preds.iter().enumerate().position(|(i, p)| {
                !used[i] && p.0 == l.kind && matches((p.1, p.2), (l.start, l.end))
            });
            match hit {
                Some(i) => {
                    used[i] = true;
                    counts[k].tp += 1;
                }
                None => {
                    counts[k].fn_ += 1;
                    errors.push(format!(
                        "missed {} {:?} in {:?}",
                        l.kind,
                        slice(&s.text, l.start, l.end),
                        s.text
                    ));
                }
            }
            total += l.end - l.start;
            covered += (l.start..l.end)
                .filter(|c| preds.iter().any(|p| p.1 <= *c && *c < p.2))
                .count();
        }
        for (i, p) in preds.iter().enumerate() {
            if !used[i] {
                let k = KINDS.iter().position(|x| *x == p.0).expect("kind");
                counts[k].fp += 1;
                errors.push(format!(
                    "false {} {:?} in {:?}",
                    p.0,
                    slice(&s.text, p.1, p.2),
                    s.text
                ));
            }
        }
    }
    let all = KINDS.len() - 1;
    for k in 0..all {
        let c = counts[k];
        counts[all].tp += c.tp;
        counts[all].fp += c.fp;
        counts[all].fn_ += c.fn_;
    }
    (counts, covered as f64 / total.max(1) as f64, errors)
}

fn slice(text: &str, a: usize, b: usize) -> String {
    text.chars().skip(a).take(b - a).collect()
}

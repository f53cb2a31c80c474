//! A seeded synthetic population of person records with ground truth, for benchmarking
//! record matching. People live in households that share an address, a landline, sometimes a
//! family email and a tablet; each person appears a Zipf-distributed number of times, and
//! every appearance is corrupted the way real CRM exports are: typos, nicknames, first and
//! last name swapped, day and month swapped, missing values, other formats for phones and
//! addresses, a move to a new address.
//!
//! The same seed and size always give the same records.

use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::IdentityError;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticOptions {
    /// Number of records (the last household may be cut short to hit it exactly).
    pub records: usize,
    pub seed: u64,
    /// Largest number of records of one person; counts follow Zipf up to this.
    pub max_duplicates: usize,
    /// Zipf exponent of the duplicate counts (larger: fewer duplicates).
    pub zipf_exponent: f64,
}

impl Default for SyntheticOptions {
    fn default() -> Self {
        Self {
            records: 10_000,
            seed: 7,
            max_duplicates: 8,
            zipf_exponent: 1.6,
        }
    }
}

const FIRST_NAMES: &[&str] = &[
    "james",
    "mary",
    "robert",
    "patricia",
    "john",
    "jennifer",
    "michael",
    "linda",
    "william",
    "elizabeth",
    "david",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "christopher",
    "nancy",
    "daniel",
    "lisa",
    "matthew",
    "margaret",
    "anthony",
    "betty",
    "donald",
    "sandra",
    "mark",
    "ashley",
    "paul",
    "dorothy",
    "steven",
    "kimberly",
    "andrew",
    "emily",
    "kenneth",
    "donna",
    "joshua",
    "michelle",
    "kevin",
    "carol",
    "brian",
    "amanda",
    "george",
    "melissa",
    "edward",
    "deborah",
    "ronald",
    "stephanie",
    "timothy",
    "rebecca",
    "jason",
    "laura",
    "jeffrey",
    "sharon",
    "ryan",
    "cynthia",
    "jacob",
    "kathleen",
    "gary",
    "amy",
    "nicholas",
    "shirley",
    "eric",
    "angela",
    "jonathan",
    "helen",
    "stephen",
    "anna",
    "larry",
    "brenda",
    "justin",
    "pamela",
    "scott",
    "nicole",
    "brandon",
    "samantha",
    "benjamin",
    "katherine",
    "samuel",
    "christine",
    "gregory",
    "debra",
    "frank",
    "rachel",
    "alexander",
    "catherine",
    "raymond",
    "carolyn",
    "patrick",
    "janet",
    "jack",
    "maria",
    "dennis",
    "heather",
    "jerry",
    "diane",
    "tyler",
    "virginia",
    "aaron",
    "julie",
    "jose",
    "joyce",
    "adam",
    "victoria",
    "henry",
    "olivia",
    "nathan",
    "kelly",
    "douglas",
    "christina",
    "zachary",
    "lauren",
    "peter",
    "joan",
    "kyle",
    "evelyn",
    "walter",
    "judith",
    "ethan",
    "megan",
    "jeremy",
    "cheryl",
    "harold",
    "andrea",
    "keith",
    "hannah",
    "christian",
    "martha",
    "roger",
    "jacqueline",
    "noah",
    "frances",
    "gerald",
    "gloria",
    "carl",
    "ann",
    "terry",
    "teresa",
    "sean",
    "kathryn",
    "austin",
    "sara",
    "arthur",
    "janice",
    "lawrence",
    "jean",
    "jesse",
    "alice",
    "dylan",
    "madison",
    "bryan",
    "doris",
    "joe",
    "abigail",
    "jordan",
    "julia",
    "billy",
    "judy",
    "bruce",
    "grace",
    "albert",
    "denise",
    "willie",
    "amber",
    "gabriel",
    "marilyn",
    "logan",
    "beverly",
    "alan",
    "danielle",
    "juan",
    "theresa",
    "wayne",
    "sophia",
    "roy",
    "marie",
    "ralph",
    "diana",
    "randy",
    "brittany",
    "eugene",
    "natalie",
    "vincent",
    "isabella",
    "russell",
    "charlotte",
    "elijah",
    "rose",
    "louis",
    "alexis",
    "bobby",
    "kayla",
    "philip",
    "ingrid",
    "siobhan",
    "yusuf",
    "priya",
    "mateo",
    "chloe",
    "aurelien",
    "dagny",
];

/// Nicknames a person may go by in some records (the formal name is the entity's).
const NICKNAMES: &[(&str, &[&str])] = &[
    ("robert", &["bob", "rob", "bobby"]),
    ("william", &["bill", "will", "billy"]),
    ("elizabeth", &["liz", "beth", "betty"]),
    ("james", &["jim", "jimmy"]),
    ("john", &["jack", "johnny"]),
    ("michael", &["mike", "mick"]),
    ("richard", &["rick", "dick"]),
    ("joseph", &["joe", "joey"]),
    ("thomas", &["tom", "tommy"]),
    ("charles", &["charlie", "chuck"]),
    ("christopher", &["chris"]),
    ("daniel", &["dan", "danny"]),
    ("matthew", &["matt"]),
    ("anthony", &["tony"]),
    ("steven", &["steve"]),
    ("andrew", &["andy", "drew"]),
    ("kenneth", &["ken", "kenny"]),
    ("joshua", &["josh"]),
    ("edward", &["ed", "eddie", "ted"]),
    ("ronald", &["ron"]),
    ("timothy", &["tim"]),
    ("jeffrey", &["jeff"]),
    ("nicholas", &["nick"]),
    ("jonathan", &["jon"]),
    ("stephen", &["steve"]),
    ("samuel", &["sam"]),
    ("benjamin", &["ben"]),
    ("gregory", &["greg"]),
    ("alexander", &["alex"]),
    ("patricia", &["pat", "patty", "trish"]),
    ("jennifer", &["jen", "jenny"]),
    ("margaret", &["maggie", "peggy", "meg"]),
    ("katherine", &["kate", "kathy", "katie"]),
    ("catherine", &["cathy", "cat"]),
    ("susan", &["sue", "suzy"]),
    ("deborah", &["deb", "debbie"]),
    ("rebecca", &["becky"]),
    ("kimberly", &["kim"]),
    ("samantha", &["sam"]),
    ("christine", &["chris", "tina"]),
    ("victoria", &["vicky", "tori"]),
    ("pamela", &["pam"]),
    ("stephanie", &["steph"]),
    ("jacqueline", &["jackie"]),
    ("abigail", &["abby"]),
    ("dorothy", &["dot", "dottie"]),
    ("barbara", &["barb"]),
];

const SURNAMES: &[&str] = &[
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "torres",
    "nguyen",
    "hill",
    "flores",
    "green",
    "adams",
    "nelson",
    "baker",
    "hall",
    "rivera",
    "campbell",
    "mitchell",
    "carter",
    "roberts",
    "gomez",
    "phillips",
    "evans",
    "turner",
    "diaz",
    "parker",
    "cruz",
    "edwards",
    "collins",
    "reyes",
    "stewart",
    "morris",
    "morales",
    "murphy",
    "cook",
    "rogers",
    "gutierrez",
    "ortiz",
    "morgan",
    "cooper",
    "peterson",
    "bailey",
    "reed",
    "kelly",
    "howard",
    "ramos",
    "kim",
    "cox",
    "ward",
    "richardson",
    "watson",
    "brooks",
    "chavez",
    "wood",
    "james",
    "bennett",
    "gray",
    "mendoza",
    "ruiz",
    "hughes",
    "price",
    "alvarez",
    "castillo",
    "sanders",
    "patel",
    "myers",
    "long",
    "ross",
    "foster",
    "jimenez",
];

/// Syllables that make rarer surnames, so the population has a long tail like real ones.
const SURNAME_HEADS: &[&str] = &[
    "ash", "black", "brad", "brom", "carl", "dun", "ell", "fair", "gar", "hal", "hart", "kel",
    "lang", "mar", "mont", "nor", "oak", "pem", "rad", "ros", "shel", "stan", "thorn", "wal",
    "wes", "whit", "win", "york", "ab", "bel", "cal", "dra", "fen", "gil", "hol", "ives", "kirk",
    "lind", "mer", "pres", "quin", "sut", "tal", "ver", "wick", "bran", "cor", "dal", "eck",
];
const SURNAME_TAILS: &[&str] = &[
    "ford", "ton", "ley", "wood", "field", "well", "worth", "by", "more", "stone", "bury", "ham",
    "dale", "brook", "win", "ridge", "mont", "son", "er", "man", "croft", "hurst", "land", "shaw",
    "wick", "berg", "ski", "ov", "ini", "ez", "sen", "ova", "ling",
];

const STREETS: &[&str] = &[
    "oak",
    "maple",
    "cedar",
    "pine",
    "elm",
    "washington",
    "lake",
    "hill",
    "park",
    "main",
    "church",
    "mill",
    "river",
    "spring",
    "north",
    "south",
    "highland",
    "sunset",
    "forest",
    "meadow",
    "willow",
    "jefferson",
    "lincoln",
    "madison",
    "franklin",
    "chestnut",
    "walnut",
    "birch",
    "dogwood",
    "laurel",
    "cherry",
    "ridge",
    "valley",
    "harbor",
    "bay",
    "prospect",
    "union",
    "center",
    "market",
    "liberty",
    "grove",
    "orchard",
    "broad",
    "king",
    "queen",
];
/// Street types with their abbreviation; records use either.
const STREET_TYPES: &[(&str, &str)] = &[
    ("street", "st"),
    ("avenue", "ave"),
    ("road", "rd"),
    ("drive", "dr"),
    ("lane", "ln"),
    ("court", "ct"),
    ("boulevard", "blvd"),
    ("place", "pl"),
];
const CITIES: &[&str] = &[
    "springfield",
    "riverside",
    "franklin",
    "greenville",
    "bristol",
    "clinton",
    "fairview",
    "salem",
    "madison",
    "georgetown",
    "arlington",
    "ashland",
    "burlington",
    "manchester",
    "oxford",
    "milton",
    "newport",
    "dover",
    "hudson",
    "kingston",
    "marion",
    "auburn",
    "dayton",
    "lexington",
    "jackson",
    "winchester",
    "centerville",
    "chester",
    "shelby",
    "lebanon",
];
const DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "aol.com",
    "proton.me",
    "comcast.net",
];

/// One person as they really are.
#[derive(Debug, Clone)]
struct Person {
    first: &'static str,
    last: String,
    dob: (i32, u32, u32),
    email: String,
    mobile: String,
    address: Address,
    device: String,
}

#[derive(Debug, Clone)]
struct Address {
    number: u32,
    street: &'static str,
    kind: usize,
    city: &'static str,
    postcode: String,
}

/// The household a person belongs to: what its members share.
#[derive(Debug, Clone)]
struct Household {
    last: String,
    address: Address,
    landline: String,
    family_email: Option<String>,
    tablet: Option<String>,
}

struct Generator {
    rng: ChaCha8Rng,
    first_weights: WeightedIndex<f64>,
    surname_weights: WeightedIndex<f64>,
    dup_weights: WeightedIndex<f64>,
    postcodes: Vec<String>,
    postcode_city: Vec<&'static str>,
    next_device: u64,
}

fn zipf_weights(n: usize, s: f64) -> Vec<f64> {
    (1..=n).map(|k| 1.0 / (k as f64).powf(s)).collect()
}

impl Generator {
    fn new(seed: u64, records: usize, max_dup: usize, zipf: f64) -> Result<Self, IdentityError> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // About one postcode per 40 people, as in dense suburbs.
        let n_postcodes = (records / 40).clamp(50, 60_000);
        let mut postcodes = Vec::with_capacity(n_postcodes);
        let mut postcode_city = Vec::with_capacity(n_postcodes);
        let mut seen = std::collections::HashSet::new();
        while postcodes.len() < n_postcodes {
            let p = format!("{:05}", rng.gen_range(10_000..99_999));
            if seen.insert(p.clone()) {
                postcodes.push(p);
                postcode_city.push(*CITIES.choose(&mut rng).unwrap_or(&"springfield"));
            }
        }
        let weights = |n: usize, s: f64| {
            WeightedIndex::new(zipf_weights(n, s))
                .map_err(|e| IdentityError::InvalidSettings(vec![e.to_string()]))
        };
        Ok(Self {
            first_weights: weights(FIRST_NAMES.len(), 0.7)?,
            // Real surnames take half the population; generated ones the long tail.
            surname_weights: weights(SURNAMES.len(), 0.9)?,
            dup_weights: weights(max_dup, zipf)?,
            rng,
            postcodes,
            postcode_city,
            next_device: 0,
        })
    }

    fn surname(&mut self) -> String {
        if self.rng.gen_bool(0.5) {
            SURNAMES[self.surname_weights.sample(&mut self.rng)].to_owned()
        } else {
            let h = SURNAME_HEADS.choose(&mut self.rng).unwrap_or(&"ash");
            let t = SURNAME_TAILS.choose(&mut self.rng).unwrap_or(&"ford");
            format!("{h}{t}")
        }
    }

    fn phone(&mut self) -> String {
        let area = self.rng.gen_range(201..990);
        let exchange = self.rng.gen_range(200..999);
        let line = self.rng.gen_range(0..10_000);
        format!("{area}{exchange}{line:04}")
    }

    fn device(&mut self) -> String {
        self.next_device += 1;
        let salt: u32 = self.rng.gen();
        format!("dev-{:08x}{:06x}", salt, self.next_device)
    }

    fn address(&mut self) -> Address {
        let p = self.rng.gen_range(0..self.postcodes.len());
        Address {
            number: self.rng.gen_range(1..2_000),
            street: STREETS.choose(&mut self.rng).unwrap_or(&"main"),
            kind: self.rng.gen_range(0..STREET_TYPES.len()),
            city: self.postcode_city[p],
            postcode: self.postcodes[p].clone(),
        }
    }

    fn household(&mut self) -> Household {
        let last = self.surname();
        let address = self.address();
        let landline = self.phone();
        let family_email = self.rng.gen_bool(0.15).then(|| {
            let d = DOMAINS.choose(&mut self.rng).unwrap_or(&"gmail.com");
            format!("the{last}s{}@{d}", self.rng.gen_range(1..99))
        });
        let tablet = self.rng.gen_bool(0.2).then(|| self.device());
        Household {
            last,
            address,
            landline,
            family_email,
            tablet,
        }
    }

    fn person(&mut self, h: &Household) -> Person {
        let first = FIRST_NAMES[self.first_weights.sample(&mut self.rng)];
        // Most members carry the household's surname; a partner may keep their own.
        let last = if self.rng.gen_bool(0.8) {
            h.last.clone()
        } else {
            self.surname()
        };
        let dob = (
            self.rng.gen_range(1940..2006),
            self.rng.gen_range(1..13),
            self.rng.gen_range(1..29),
        );
        let d = DOMAINS.choose(&mut self.rng).unwrap_or(&"gmail.com");
        let email = match self.rng.gen_range(0..4) {
            0 => format!("{first}.{last}@{d}"),
            1 => format!("{}{last}{}@{d}", &first[..1], self.rng.gen_range(1..999)),
            2 => format!("{first}{}@{d}", self.rng.gen_range(1..9999)),
            _ => format!("{first}_{last}{}@{d}", dob.0 % 100),
        };
        let mobile = self.phone();
        let device = self.device();
        Person {
            first,
            last,
            dob,
            email,
            mobile,
            address: h.address.clone(),
            device,
        }
    }

    fn typo(&mut self, s: &str) -> String {
        let mut c: Vec<char> = s.chars().collect();
        if c.len() < 2 {
            return s.to_owned();
        }
        let i = self.rng.gen_range(0..c.len());
        let letter = (b'a' + self.rng.gen_range(0..26u8)) as char;
        match self.rng.gen_range(0..4) {
            0 => c[i] = letter,
            1 => {
                c.remove(i);
            }
            2 => c.insert(i, letter),
            _ => {
                let j = if i + 1 < c.len() { i + 1 } else { i - 1 };
                c.swap(i, j);
            }
        }
        c.into_iter().collect()
    }

    fn digit_typo(&mut self, s: &str) -> String {
        let mut c: Vec<char> = s.chars().collect();
        let positions: Vec<usize> = (0..c.len()).filter(|&i| c[i].is_ascii_digit()).collect();
        if let Some(&i) = positions.choose(&mut self.rng) {
            c[i] = (b'0' + self.rng.gen_range(0..10u8)) as char;
        }
        c.into_iter().collect()
    }

    fn case(&mut self, s: &str) -> String {
        match self.rng.gen_range(0..10) {
            0 => s.to_uppercase(),
            1..=6 => {
                let mut out = String::with_capacity(s.len());
                let mut start = true;
                for ch in s.chars() {
                    if start {
                        out.extend(ch.to_uppercase());
                    } else {
                        out.push(ch);
                    }
                    start = ch == ' ' || ch == '-';
                }
                out
            }
            _ => s.to_owned(),
        }
    }

    fn format_phone(&mut self, digits: &str) -> String {
        let (a, b, c) = (&digits[..3], &digits[3..6], &digits[6..]);
        match self.rng.gen_range(0..4) {
            0 => format!("({a}) {b}-{c}"),
            1 => format!("{a}-{b}-{c}"),
            2 => format!("+1 {a} {b} {c}"),
            _ => digits.to_owned(),
        }
    }

    /// One appearance of a person in some system, corrupted.
    fn record(&mut self, p: &Person, h: &Household) -> [Option<String>; 9] {
        let r = &mut self.rng;
        let mut first = p.first.to_owned();
        if r.gen_bool(0.15) {
            if let Some((_, nicks)) = NICKNAMES.iter().find(|(f, _)| *f == p.first) {
                first = (*nicks.choose(r).unwrap_or(&p.first)).to_owned();
            }
        }
        let mut last = p.last.clone();
        if self.rng.gen_bool(0.12) {
            first = self.typo(&first);
        }
        if self.rng.gen_bool(0.12) {
            last = self.typo(&last);
        }
        if self.rng.gen_bool(0.04) {
            std::mem::swap(&mut first, &mut last);
        }
        let (y, mut m, mut d) = p.dob;
        if self.rng.gen_bool(0.04) && d <= 12 {
            std::mem::swap(&mut m, &mut d);
        }
        let mut dob = format!("{y:04}-{m:02}-{d:02}");
        if self.rng.gen_bool(0.05) {
            dob = self.digit_typo(&dob);
        }
        let mut email = if h.family_email.is_some() && self.rng.gen_bool(0.4) {
            h.family_email.clone().unwrap_or_default()
        } else {
            p.email.clone()
        };
        if self.rng.gen_bool(0.05) {
            email = self.typo(&email);
        }
        if self.rng.gen_bool(0.2) {
            email = email.to_uppercase();
        }
        let phone_digits = if self.rng.gen_bool(0.3) {
            h.landline.clone()
        } else {
            p.mobile.clone()
        };
        let mut phone = self.format_phone(&phone_digits);
        if self.rng.gen_bool(0.04) {
            phone = self.digit_typo(&phone);
        }
        // Some records were taken after a move.
        let addr = if self.rng.gen_bool(0.05) {
            self.address()
        } else {
            p.address.clone()
        };
        let (full, abbr) = STREET_TYPES[addr.kind];
        let kind = if self.rng.gen_bool(0.5) { full } else { abbr };
        let mut address = format!("{} {} {kind}", addr.number, addr.street);
        if self.rng.gen_bool(0.08) {
            address = self.typo(&address);
        }
        let mut postcode = addr.postcode.clone();
        if self.rng.gen_bool(0.03) {
            postcode = self.digit_typo(&postcode);
        }
        let device = if h.tablet.is_some() && self.rng.gen_bool(0.3) {
            h.tablet.clone().unwrap_or_default()
        } else {
            p.device.clone()
        };
        let first = self.case(&first);
        let last = self.case(&last);
        let address = self.case(&address);
        let city = self.case(addr.city);
        let mut fields = [
            Some(first),
            Some(last),
            Some(dob),
            Some(email),
            Some(phone),
            Some(address),
            Some(city),
            Some(postcode),
            Some(device),
        ];
        // Missing values, more often for the fields forms leave optional.
        const MISSING: [f64; 9] = [0.02, 0.02, 0.12, 0.25, 0.3, 0.1, 0.1, 0.08, 0.5];
        for (f, p) in fields.iter_mut().zip(MISSING) {
            if self.rng.gen_bool(p) {
                *f = None;
            }
        }
        fields
    }
}

/// Header of `records.csv`.
pub const COLUMNS: [&str; 10] = [
    "id",
    "first_name",
    "last_name",
    "dob",
    "email",
    "phone",
    "address",
    "city",
    "postcode",
    "device_id",
];

/// Generated records (id and fields) and the entity each belongs to.
pub struct Population {
    pub records: Vec<(String, [Option<String>; 9])>,
    pub entity: Vec<usize>,
}

/// Builds `records` records from `seed`.
pub fn generate(args: &SyntheticOptions) -> Result<Population, IdentityError> {
    let mut problems = Vec::new();
    if args.records == 0 {
        problems.push("records must be at least 1".to_owned());
    }
    if args.max_duplicates == 0 || args.zipf_exponent.is_nan() || args.zipf_exponent <= 0.0 {
        problems.push("max_duplicates must be at least 1 and zipf_exponent above 0".to_owned());
    }
    if !problems.is_empty() {
        return Err(IdentityError::InvalidSettings(problems));
    }
    let mut g = Generator::new(
        args.seed,
        args.records,
        args.max_duplicates,
        args.zipf_exponent,
    )?;
    let mut rows: Vec<([Option<String>; 9], usize)> = Vec::with_capacity(args.records);
    let mut entity = 0usize;
    'fill: loop {
        let h = g.household();
        let members = *[1, 1, 2, 2, 2, 3, 3, 4, 5].choose(&mut g.rng).unwrap_or(&1);
        for _ in 0..members {
            let p = g.person(&h);
            let copies = g.dup_weights.sample(&mut g.rng) + 1;
            for _ in 0..copies {
                rows.push((g.record(&p, &h), entity));
                if rows.len() == args.records {
                    break 'fill;
                }
            }
            entity += 1;
        }
    }
    rows.shuffle(&mut g.rng);
    let (records, entity) = rows
        .into_iter()
        .enumerate()
        .map(|(i, (fields, e))| ((format!("r{i:07}"), fields), e))
        .unzip();
    Ok(Population { records, entity })
}

/// A generated population as a [`Dataset`] (columns [`COLUMNS`] after the id) and the entity of
/// each record, for tests.
#[cfg(test)]
pub(crate) fn test_dataset(records: usize, seed: u64) -> (super::Dataset, Vec<usize>) {
    let pop = generate(&SyntheticOptions {
        records,
        seed,
        ..SyntheticOptions::default()
    })
    .expect("population");
    let rows = pop
        .records
        .into_iter()
        .map(|(id, values)| super::Record {
            id,
            values: values.into_iter().collect(),
        })
        .collect();
    let columns = COLUMNS[1..].iter().map(|c| (*c).to_owned()).collect();
    (
        super::Dataset::new("people", columns, rows).expect("dataset"),
        pop.entity,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(records: usize, seed: u64) -> SyntheticOptions {
        SyntheticOptions {
            records,
            seed,
            ..SyntheticOptions::default()
        }
    }

    #[test]
    fn same_seed_same_population_and_exact_size() {
        let a = generate(&args(2_000, 7)).expect("a");
        let b = generate(&args(2_000, 7)).expect("b");
        let c = generate(&args(2_000, 8)).expect("c");
        assert_eq!(a.records.len(), 2_000);
        assert_eq!(a.records, b.records);
        assert_eq!(a.entity, b.entity);
        assert_ne!(a.records, c.records);
    }

    #[test]
    fn duplicates_follow_a_decreasing_distribution_with_corruption() {
        let pop = generate(&args(20_000, 3)).expect("pop");
        let entities = pop.entity.iter().max().map_or(0, |m| m + 1);
        let mut sizes = vec![0usize; entities];
        for e in &pop.entity {
            sizes[*e] += 1;
        }
        let count = |k: usize| sizes.iter().filter(|s| **s == k).count();
        // Zipf: singletons outnumber pairs, which outnumber triples.
        assert!(count(1) > count(2) && count(2) > count(3), "{sizes:?}");
        assert!(sizes.iter().all(|s| (1..=8).contains(s)));
        // Duplicates of one person do not all look the same, and values go missing.
        let missing_email = pop.records.iter().filter(|(_, f)| f[3].is_none()).count();
        assert!(missing_email > 2_000 && missing_email < 8_000);
        let mut by_entity: std::collections::HashMap<usize, Vec<&[Option<String>; 9]>> =
            Default::default();
        for ((_, f), e) in pop.records.iter().zip(&pop.entity) {
            by_entity.entry(*e).or_default().push(f);
        }
        let differing = by_entity
            .values()
            .filter(|v| v.len() > 1 && v.iter().any(|f| f[0] != v[0][0]))
            .count();
        assert!(differing > 0);
    }
}

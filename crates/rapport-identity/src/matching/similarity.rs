//! String similarity measures and derived blocking keys.

/// Jaro-Winkler similarity in [0, 1]; 1 means equal. ASCII strings take an allocation-free
/// path over bytes; others are compared by `char`. Both give `strsim::jaro_winkler`'s value.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    if a.is_ascii() && b.is_ascii() {
        let (x, y) = (a.as_bytes(), b.as_bytes());
        if !x.is_empty() && !y.is_empty() && x.len() <= 64 && y.len() <= 64 {
            return winkler(jaro_bits(x, y), x, y);
        }
        jaro_winkler_slices(x, y)
    } else {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        jaro_winkler_slices(&a, &b)
    }
}

/// Jaro similarity of two sequences, with match flags on the stack for up to 64 elements.
fn jaro_slices<T: PartialEq>(a: &[T], b: &[T]) -> f64 {
    let (la, lb) = (a.len(), b.len());
    if la == 0 && lb == 0 {
        return 1.0;
    }
    if la == 0 || lb == 0 {
        return 0.0;
    }
    let range = (la.max(lb) / 2).saturating_sub(1);
    let mut small = [false; 128];
    let mut big = Vec::new();
    let flags: &mut [bool] = if la + lb <= small.len() {
        &mut small[..la + lb]
    } else {
        big.resize(la + lb, false);
        &mut big
    };
    let (fa, fb) = flags.split_at_mut(la);
    let mut matches = 0usize;
    for (i, x) in a.iter().enumerate() {
        let lo = i.saturating_sub(range);
        let hi = (i + range + 1).min(lb);
        for j in lo..hi {
            if !fb[j] && *x == b[j] {
                fa[i] = true;
                fb[j] = true;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut j = 0usize;
    for (i, x) in a.iter().enumerate() {
        if !fa[i] {
            continue;
        }
        while !fb[j] {
            j += 1;
        }
        if *x != b[j] {
            transpositions += 1;
        }
        j += 1;
    }
    let m = matches as f64;
    let t = (transpositions / 2) as f64;
    (m / la as f64 + m / lb as f64 + (m - t) / m) / 3.0
}

/// Jaro similarity of two non-empty ASCII strings of at most 64 bytes with bit masks: for
/// each byte of `a`, the first unmatched equal byte of `b` inside the window is the lowest set
/// bit of one AND, which is the match the quadratic scan would find.
fn jaro_bits(a: &[u8], b: &[u8]) -> f64 {
    let (la, lb) = (a.len(), b.len());
    let range = (la.max(lb) / 2).saturating_sub(1);
    let mut peq = [0u64; 128];
    for (j, &c) in b.iter().enumerate() {
        peq[usize::from(c & 0x7f)] |= 1u64 << j;
    }
    let bits_below = |n: usize| if n >= 64 { !0u64 } else { (1u64 << n) - 1 };
    let (mut fa, mut fb) = (0u64, 0u64);
    let mut matches = 0usize;
    for (i, &c) in a.iter().enumerate() {
        let lo = i.saturating_sub(range);
        let hi = (i + range + 1).min(lb);
        if lo >= hi {
            continue;
        }
        let window = bits_below(hi) & !bits_below(lo);
        let cand = peq[usize::from(c & 0x7f)] & window & !fb;
        if cand != 0 {
            fb |= cand & cand.wrapping_neg();
            fa |= 1u64 << i;
            matches += 1;
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let (mut xa, mut xb) = (fa, fb);
    while xa != 0 {
        let i = xa.trailing_zeros() as usize;
        let j = xb.trailing_zeros() as usize;
        if a[i] != b[j] {
            transpositions += 1;
        }
        xa &= xa - 1;
        xb &= xb - 1;
    }
    let m = matches as f64;
    let t = (transpositions / 2) as f64;
    (m / la as f64 + m / lb as f64 + (m - t) / m) / 3.0
}

fn winkler<T: PartialEq>(sim: f64, a: &[T], b: &[T]) -> f64 {
    if sim > 0.7 {
        let prefix = a.iter().take(4).zip(b).take_while(|(x, y)| x == y).count();
        sim + 0.1 * prefix as f64 * (1.0 - sim)
    } else {
        sim
    }
}

fn jaro_winkler_slices<T: PartialEq>(a: &[T], b: &[T]) -> f64 {
    let sim = jaro_slices(a, b);
    if sim > 0.7 {
        let prefix = a.iter().take(4).zip(b).take_while(|(x, y)| x == y).count();
        sim + 0.1 * prefix as f64 * (1.0 - sim)
    } else {
        sim
    }
}

/// Levenshtein edit distance (insertions, deletions, substitutions) in characters.
pub fn levenshtein(a: &str, b: &str) -> usize {
    if a.is_ascii() && b.is_ascii() {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.is_empty() {
            return b.len();
        }
        if a.len() <= 64 {
            return levenshtein_myers(a, b);
        }
        levenshtein_slices(a, b)
    } else {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        levenshtein_slices(&a, &b)
    }
}

/// Whether the Levenshtein distance is at most `max`, skipping the work when the lengths
/// alone rule it out.
pub fn levenshtein_within(a: &str, b: &str, max: usize) -> bool {
    if a.len().abs_diff(b.len()) > max * 4 {
        // Byte lengths differ by more than any `max` edits of up to 4-byte characters.
        return false;
    }
    if a.is_ascii() && b.is_ascii() && a.len().abs_diff(b.len()) > max {
        return false;
    }
    levenshtein(a, b) <= max
}

/// Levenshtein distance by Myers' bit-parallel algorithm (Hyyro's formulation), for ASCII
/// `a` of 1 to 64 bytes: one pass over `b` with a handful of word operations per byte.
fn levenshtein_myers(a: &[u8], b: &[u8]) -> usize {
    let m = a.len();
    debug_assert!((1..=64).contains(&m));
    let mut peq = [0u64; 128];
    for (i, &c) in a.iter().enumerate() {
        peq[usize::from(c & 0x7f)] |= 1u64 << i;
    }
    let mut pv: u64 = if m == 64 { !0 } else { (1u64 << m) - 1 };
    let mut mv: u64 = 0;
    let last = 1u64 << (m - 1);
    let mut score = m;
    for &c in b {
        let eq = peq[usize::from(c & 0x7f)];
        let xv = eq | mv;
        let xh = ((eq & pv).wrapping_add(pv) ^ pv) | eq;
        let mut ph = mv | !(xh | pv);
        let mut mh = pv & xh;
        if ph & last != 0 {
            score += 1;
        } else if mh & last != 0 {
            score -= 1;
        }
        ph = (ph << 1) | 1;
        mh <<= 1;
        pv = mh | !(xv | ph);
        mv = ph & xv;
    }
    score
}

fn levenshtein_slices<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let lb = b.len();
    if a.is_empty() {
        return lb;
    }
    let mut small = [0usize; 65];
    let mut big = Vec::new();
    let row: &mut [usize] = if lb < small.len() {
        &mut small[..=lb]
    } else {
        big.resize(lb + 1, 0);
        &mut big
    };
    for (j, r) in row.iter_mut().enumerate() {
        *r = j;
    }
    for (i, x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for j in 0..lb {
            let substitute = diagonal + usize::from(*x != b[j]);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[lb]
}

/// Damerau-Levenshtein distance: Levenshtein plus transpositions of adjacent characters
/// (the unrestricted form, as `strsim::damerau_levenshtein`). Short ASCII strings take an
/// allocation-free path.
pub fn damerau_levenshtein(a: &str, b: &str) -> usize {
    if a.is_ascii() && b.is_ascii() && a.len() <= 30 && b.len() <= 30 {
        damerau_ascii(a.as_bytes(), b.as_bytes())
    } else {
        strsim::damerau_levenshtein(a, b)
    }
}

/// A lower bound on the (Damerau-)Levenshtein distance of two ASCII strings: every edit
/// changes the two strings' character counts by at most two, a transposition not at all.
pub fn edit_lower_bound_ascii(a: &[u8], b: &[u8]) -> usize {
    let mut count = [0i16; 128];
    for &c in a {
        count[usize::from(c & 0x7f)] += 1;
    }
    for &c in b {
        count[usize::from(c & 0x7f)] -= 1;
    }
    let diff: usize = count.iter().map(|c| c.unsigned_abs() as usize).sum();
    diff.div_ceil(2).max(a.len().abs_diff(b.len()))
}

/// Lowrance-Wagner over bytes, in a (32 x 32) table on the stack.
fn damerau_ascii(a: &[u8], b: &[u8]) -> usize {
    const W: usize = 32;
    let (n, m) = (a.len(), b.len());
    let inf = n + m;
    let mut d = [[0usize; W]; W];
    // Only the (n + 2) x (m + 2) corner is used; every cell of it is written before it is read.
    let mut last_row_of = [0usize; 128];
    d[0][0] = inf;
    for i in 0..=n {
        d[i + 1][0] = inf;
        d[i + 1][1] = i;
    }
    for j in 0..=m {
        d[0][j + 1] = inf;
        d[1][j + 1] = j;
    }
    for i in 1..=n {
        let mut last_col = 0usize;
        for j in 1..=m {
            let k = last_row_of[usize::from(b[j - 1] & 0x7f)];
            let l = last_col;
            let cost = if a[i - 1] == b[j - 1] {
                last_col = j;
                0
            } else {
                1
            };
            d[i + 1][j + 1] = (d[i][j] + cost)
                .min(d[i + 1][j] + 1)
                .min(d[i][j + 1] + 1)
                .min(d[k][l] + (i - k - 1) + 1 + (j - l - 1));
        }
        last_row_of[usize::from(a[i - 1] & 0x7f)] = i;
    }
    d[n + 1][m + 1]
}

/// Jaccard similarity of the two strings' word sets, in [0, 1]. Robust to word order
/// ("apple pan the" against "the apple pan").
pub fn token_jaccard(a: &str, b: &str) -> f64 {
    let sa: std::collections::BTreeSet<&str> = a.split_whitespace().collect();
    let sb: std::collections::BTreeSet<&str> = b.split_whitespace().collect();
    if sa.is_empty() && sb.is_empty() {
        return 1.0;
    }
    let inter = sa.intersection(&sb).count();
    let union = sa.union(&sb).count();
    inter as f64 / union as f64
}

/// A Soundex-like phonetic key: first letter, then digits for consonant groups, four
/// characters long (`robert` and `rupert` both give `R163`). Non-letters are ignored; empty
/// when there is no ASCII letter.
pub fn soundex(s: &str) -> String {
    let code = |c: char| match c {
        'b' | 'f' | 'p' | 'v' => Some('1'),
        'c' | 'g' | 'j' | 'k' | 'q' | 's' | 'x' | 'z' => Some('2'),
        'd' | 't' => Some('3'),
        'l' => Some('4'),
        'm' | 'n' => Some('5'),
        'r' => Some('6'),
        _ => None,
    };
    let letters: Vec<char> = s
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let Some(&first) = letters.first() else {
        return String::new();
    };
    let mut out = String::new();
    out.push(first.to_ascii_uppercase());
    let mut last = code(first);
    for &c in &letters[1..] {
        let d = code(c);
        if d.is_some() && d != last {
            if let Some(d) = d {
                out.push(d);
            }
            if out.len() == 4 {
                break;
            }
        }
        // 'h' and 'w' do not separate equal codes; vowels do.
        if c != 'h' && c != 'w' {
            last = d;
        }
    }
    while out.len() < 4 {
        out.push('0');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn soundex_examples() {
        assert_eq!(soundex("Robert"), "R163");
        assert_eq!(soundex("Rupert"), "R163");
        assert_eq!(soundex("Ashcraft"), "A261");
        assert_eq!(soundex("Tymczak"), "T522");
        assert_eq!(soundex("Pfister"), "P236");
        assert_eq!(soundex("Lee"), "L000");
        assert_eq!(soundex("123"), "");
    }

    #[test]
    fn token_jaccard_ignores_order() {
        assert_eq!(token_jaccard("apple pan the", "the apple pan"), 1.0);
        assert!((token_jaccard("a b", "b c") - 1.0 / 3.0).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn jaro_winkler_is_bounded_symmetric_and_reflexive(a in "[a-z ]{0,12}", b in "[a-z ]{0,12}") {
            let s = jaro_winkler(&a, &b);
            prop_assert!((0.0..=1.0).contains(&s));
            prop_assert!((s - jaro_winkler(&b, &a)).abs() < 1e-12);
            prop_assert!((jaro_winkler(&a, &a) - 1.0).abs() < 1e-12);
        }

        #[test]
        fn edit_distances_are_bounded_and_symmetric(a in "[a-d]{0,10}", b in "[a-d]{0,10}") {
            let (la, lb) = (a.chars().count(), b.chars().count());
            let l = levenshtein(&a, &b);
            let d = damerau_levenshtein(&a, &b);
            prop_assert_eq!(l, levenshtein(&b, &a));
            prop_assert_eq!(d, damerau_levenshtein(&b, &a));
            prop_assert!(l <= la.max(lb));
            prop_assert!(l >= la.abs_diff(lb));
            prop_assert!(d <= l);
            prop_assert_eq!(l == 0, a == b);
        }

        #[test]
        fn fast_paths_equal_strsim(a in "[a-dé ]{0,14}", b in "[a-dé ]{0,14}") {
            prop_assert!((jaro_winkler(&a, &b) - strsim::jaro_winkler(&a, &b)).abs() < 1e-12);
            prop_assert_eq!(levenshtein(&a, &b), strsim::levenshtein(&a, &b));
            prop_assert_eq!(damerau_levenshtein(&a, &b), strsim::damerau_levenshtein(&a, &b));
            for max in 0..3 {
                prop_assert_eq!(levenshtein_within(&a, &b, max), strsim::levenshtein(&a, &b) <= max);
            }
        }

        #[test]
        fn ascii_fast_paths_equal_strsim_on_longer_text(a in "[a-f0-9@. -]{0,40}", b in "[a-f0-9@. -]{0,40}") {
            prop_assert!((jaro_winkler(&a, &b) - strsim::jaro_winkler(&a, &b)).abs() < 1e-12);
            prop_assert_eq!(levenshtein(&a, &b), strsim::levenshtein(&a, &b));
            let dl = damerau_levenshtein(&a, &b);
            prop_assert_eq!(dl, strsim::damerau_levenshtein(&a, &b));
            prop_assert!(edit_lower_bound_ascii(a.as_bytes(), b.as_bytes()) <= dl);
        }

        #[test]
        fn bit_parallel_paths_hold_up_to_and_past_64_bytes(a in "[ab]{55,70}", b in "[ab]{55,70}") {
            prop_assert!((jaro_winkler(&a, &b) - strsim::jaro_winkler(&a, &b)).abs() < 1e-12);
            prop_assert_eq!(levenshtein(&a, &b), strsim::levenshtein(&a, &b));
        }

        #[test]
        fn similar_strings_agree_with_strsim(a in "[a-z]{1,12}", edits in proptest::collection::vec((0usize..12, 0u8..26, 0u8..3), 0..3)) {
            // Near-duplicates exercise the match and transposition logic more than random pairs.
            let mut b: Vec<u8> = a.clone().into_bytes();
            for (i, c, op) in edits {
                let i = i % (b.len() + 1);
                match op {
                    0 if i < b.len() => b[i] = b'a' + c,
                    1 => b.insert(i, b'a' + c),
                    _ if i + 1 < b.len() => b.swap(i, i + 1),
                    _ => {}
                }
            }
            let b = String::from_utf8(b).expect("ascii");
            prop_assert!((jaro_winkler(&a, &b) - strsim::jaro_winkler(&a, &b)).abs() < 1e-12);
            prop_assert_eq!(levenshtein(&a, &b), strsim::levenshtein(&a, &b));
            prop_assert_eq!(damerau_levenshtein(&a, &b), strsim::damerau_levenshtein(&a, &b));
        }

        #[test]
        fn token_jaccard_is_bounded(a in "[a-c ]{0,10}", b in "[a-c ]{0,10}") {
            let s = token_jaccard(&a, &b);
            prop_assert!((0.0..=1.0).contains(&s));
            prop_assert!((s - token_jaccard(&b, &a)).abs() < 1e-12);
        }
    }
}

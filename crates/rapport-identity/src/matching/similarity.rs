//! String similarity measures and derived blocking keys.

/// Jaro-Winkler similarity in [0, 1]; 1 means equal.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    strsim::jaro_winkler(a, b)
}

/// Levenshtein edit distance (insertions, deletions, substitutions) in characters.
pub fn levenshtein(a: &str, b: &str) -> usize {
    strsim::levenshtein(a, b)
}

/// Damerau-Levenshtein distance: Levenshtein plus transpositions of adjacent characters.
pub fn damerau_levenshtein(a: &str, b: &str) -> usize {
    strsim::damerau_levenshtein(a, b)
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
        fn token_jaccard_is_bounded(a in "[a-c ]{0,10}", b in "[a-c ]{0,10}") {
            let s = token_jaccard(&a, &b);
            prop_assert!((0.0..=1.0).contains(&s));
            prop_assert!((s - token_jaccard(&b, &a)).abs() < 1e-12);
        }
    }
}

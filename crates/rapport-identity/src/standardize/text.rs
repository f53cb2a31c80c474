//! Small text helpers shared by the standardizers and the matcher.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// NFKC, then whitespace collapsed to single spaces and trimmed. Repeated until stable so that
/// applying it twice gives the same result as once.
pub fn nfkc_collapse(raw: &str) -> String {
    let mut current = collapse_ws(&raw.nfkc().collect::<String>());
    for _ in 0..4 {
        let next = collapse_ws(&current.nfkc().collect::<String>());
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// [`nfkc_collapse`] plus lowercase, iterated to a fixed point (lowercasing can produce text
/// that NFKC changes again, and the other way round).
pub fn fold(raw: &str) -> String {
    let mut current = nfkc_collapse(raw).to_lowercase();
    for _ in 0..4 {
        let next = nfkc_collapse(&current).to_lowercase();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// Collapses every run of whitespace to one space and trims the ends.
pub fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes accents: decomposes and drops combining marks (`é` becomes `e`).
pub fn strip_accents(s: &str) -> String {
    s.nfkd().filter(|c| !is_combining_mark(*c)).collect()
}

/// The matcher's default cleaning: folded, accents removed, apostrophes and dots dropped
/// (so `Morton's` meets `Mortons` and `St.` meets `St`), other punctuation turned into spaces.
pub fn clean_for_matching(raw: &str) -> String {
    let folded = strip_accents(&fold(raw));
    let mut out = String::with_capacity(folded.len());
    for c in folded.chars() {
        if c == '\'' || c == '’' || c == '.' {
            continue;
        }
        if c.is_alphanumeric() || c.is_whitespace() {
            out.push(c);
        } else {
            out.push(' ');
        }
    }
    collapse_ws(&out)
}

/// The ASCII digits of a string.
pub fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_is_stable() {
        assert_eq!(fold("  Ａda   LOVELACE "), "ada lovelace");
        assert_eq!(fold(&fold("ǅemal")), fold("ǅemal"));
    }

    #[test]
    fn cleaning_drops_apostrophes_and_punctuation() {
        assert_eq!(
            clean_for_matching("Arnie Morton's of Chicago"),
            "arnie mortons of chicago"
        );
        assert_eq!(
            clean_for_matching("12224 Ventura Blvd."),
            "12224 ventura blvd"
        );
        assert_eq!(clean_for_matching("Café-Bizou"), "cafe bizou");
    }
}

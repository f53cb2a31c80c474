//! The matcher's text preparation with a fast path for ASCII values. Unicode normalisation
//! leaves ASCII text unchanged, so for ASCII input the result only depends on lowercasing,
//! punctuation and whitespace, which one pass over the bytes does without the NFKC rounds of
//! [`clean_for_matching`] and [`fold`]. Other text goes to those functions, so the output is
//! the same for every input.

use crate::standardize::text::{clean_for_matching, fold};

/// Same as [`clean_for_matching`].
pub(crate) fn clean(raw: &str) -> String {
    if !raw.is_ascii() {
        return clean_for_matching(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut gap = false;
    for &b in raw.as_bytes() {
        if b == b'\'' || b == b'.' {
            continue;
        }
        if b.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(char::from(b.to_ascii_lowercase()));
        } else {
            // Whitespace, and punctuation turned into whitespace, separate words.
            gap = true;
        }
    }
    out
}

/// Same as [`fold`]: lowercased, whitespace runs collapsed to one space, trimmed.
pub(crate) fn lower(raw: &str) -> String {
    if !raw.is_ascii() {
        return fold(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut gap = false;
    for &b in raw.as_bytes() {
        if char::from(b).is_whitespace() {
            gap = true;
        } else {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(char::from(b.to_ascii_lowercase()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_fast_path_agrees_with_the_general_functions() {
        let mut samples: Vec<String> = vec![
            "Arnie Morton's of Chicago".into(),
            "  12224 Ventura Blvd. ".into(),
            "a . b".into(),
            "x\u{b}y\u{c}z\u{1c}w\u{1f}v".into(),
            "...".into(),
            String::new(),
            "O'NEIL--smith__jr".into(),
            "Café-Bizou".into(),
        ];
        // Every ASCII byte between letters, alone and doubled.
        for b in 0u8..128 {
            let c = char::from(b);
            samples.push(format!("Ab{c}Cd"));
            samples.push(format!("{c}{c}x{c} {c}Y"));
        }
        // A deterministic spread of mixed strings.
        let mut state = 12345u64;
        for _ in 0..2000 {
            let len = (state % 12) as usize;
            let mut s = String::new();
            for _ in 0..len {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push(char::from(((state >> 33) % 128) as u8));
            }
            samples.push(s);
        }
        for s in &samples {
            assert_eq!(clean(s), clean_for_matching(s), "clean {s:?}");
            assert_eq!(lower(s), fold(s), "lower {s:?}");
        }
    }
}

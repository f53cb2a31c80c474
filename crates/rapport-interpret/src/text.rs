//! Tokens, spans and offsets shared by every analyzer.
//!
//! All offsets Rapport reports are **character offsets** (Unicode scalar values, what Rust's
//! `str::chars` yields), end-exclusive, because the dashboard and most clients index strings by
//! character rather than by UTF-8 byte.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

/// A half-open range `[start, end)` of character offsets into the analysed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    /// First character of the range.
    pub start: usize,
    /// One past the last character of the range.
    pub end: usize,
}

impl Span {
    /// A span; `start` and `end` are swapped if given in the wrong order.
    pub fn new(start: usize, end: usize) -> Self {
        if start <= end {
            Span { start, end }
        } else {
            Span {
                start: end,
                end: start,
            }
        }
    }

    /// Number of characters covered.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the span covers nothing.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether two spans share at least one character.
    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The text this span covers in `text` (empty if out of range).
    pub fn slice<'a>(&self, text: &'a str) -> &'a str {
        let map = CharMap::new(text);
        match (map.byte(self.start), map.byte(self.end)) {
            (Some(a), Some(b)) if a <= b => &text[a..b],
            _ => "",
        }
    }
}

/// Maps between byte and character offsets of one text.
#[derive(Debug, Clone)]
pub(crate) struct CharMap {
    /// Byte offset of each character, plus the text length at the end.
    starts: Vec<usize>,
}

impl CharMap {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        starts.push(text.len());
        CharMap { starts }
    }

    /// Character offset of a byte offset (which must be a char boundary; otherwise the
    /// character containing it).
    pub(crate) fn char_of(&self, byte: usize) -> usize {
        match self.starts.binary_search(&byte) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// Byte offset of a character offset.
    pub(crate) fn byte(&self, ch: usize) -> Option<usize> {
        self.starts.get(ch).copied()
    }

    pub(crate) fn span(&self, byte_start: usize, byte_end: usize) -> Span {
        Span::new(self.char_of(byte_start), self.char_of(byte_end))
    }
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Word,
    Number,
    Emoji,
    Emoticon,
    Punct,
}

/// One token of a text, with its lowercase form and offsets.
#[derive(Debug, Clone)]
pub(crate) struct Token<'a> {
    pub raw: &'a str,
    /// Lowercase form with `’` as `'`; borrowed from the text when it is that already.
    pub lower: Cow<'a, str>,
    pub kind: TokenKind,
    pub byte_start: usize,
    pub byte_end: usize,
}

impl Token<'_> {
    /// Whether the token is an ALL-CAPS word of at least two letters.
    pub(crate) fn is_shouting(&self) -> bool {
        self.kind == TokenKind::Word
            && self.raw.chars().filter(|c| c.is_alphabetic()).count() >= 2
            && self.raw.chars().all(|c| !c.is_lowercase())
    }

    /// Whether the token ends a clause (for negation scope).
    pub(crate) fn is_clause_break(&self) -> bool {
        self.kind == TokenKind::Punct && matches!(self.raw, "." | "!" | "?" | ";" | "," | ":")
    }
}

/// Emoticons recognised as tokens, longest first so `:-)` wins over `:-`.
const EMOTICONS: &[&str] = &[
    ":'-(", ":'(", ":-))", ":))", ":-)", ":)", ":-(", ":((", ":(", ":-D", ":D", ";-)", ";)", ":-P",
    ":P", ":p", ":-/", ":/", ":-|", ":|", ":-o", ":o", ":O", "=)", "=(", "<3", "</3", "xD", "XD",
    ">:(", "D:", "^_^", "-_-", "T_T",
];

/// Whether some emoticon of [`EMOTICONS`] starts with `c`.
fn starts_emoticon(c: char) -> bool {
    matches!(
        c,
        ':' | ';' | '=' | '<' | '>' | 'x' | 'X' | 'D' | '^' | '-' | 'T'
    )
}

pub(crate) fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F300..=0x1FAFF | 0x2600..=0x27BF | 0x2B50 | 0x2B55 | 0x2190..=0x21FF | 0x2300..=0x23FF)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits text into words (with inner apostrophes and hyphens), numbers, emoji, emoticons and
/// punctuation. Whitespace is dropped.
pub(crate) fn tokenize(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let Some(c) = rest.chars().next() else { break };
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        // Emoticons only when not glued to a preceding word character (avoid "http://").
        // Checked first: most tokens are words, and most words cannot start an emoticon.
        let may_be_emoticon = starts_emoticon(c);
        let prev_is_word =
            may_be_emoticon && text[..i].chars().next_back().is_some_and(is_word_char);
        if may_be_emoticon && !prev_is_word {
            if let Some(e) = EMOTICONS.iter().find(|e| rest.starts_with(**e)) {
                let end = i + e.len();
                let next_is_word = text[end..].chars().next().is_some_and(is_word_char);
                if !next_is_word {
                    out.push(Token {
                        raw: &text[i..end],
                        lower: Cow::Borrowed(&text[i..end]),
                        kind: TokenKind::Emoticon,
                        byte_start: i,
                        byte_end: end,
                    });
                    i = end;
                    continue;
                }
            }
        }
        if is_word_char(c) {
            let mut end = i;
            let mut all_digits = true;
            let mut chars = rest.char_indices().peekable();
            while let Some((off, ch)) = chars.next() {
                let inner_joiner = matches!(ch, '\'' | '’' | '-')
                    && off > 0
                    && chars.peek().is_some_and(|&(_, n)| is_word_char(n));
                if is_word_char(ch) || inner_joiner {
                    if !ch.is_ascii_digit() {
                        all_digits = false;
                    }
                    end = i + off + ch.len_utf8();
                } else {
                    break;
                }
            }
            let raw = &text[i..end];
            out.push(Token {
                raw,
                lower: lowercase(raw),
                kind: if all_digits {
                    TokenKind::Number
                } else {
                    TokenKind::Word
                },
                byte_start: i,
                byte_end: end,
            });
            i = end;
            continue;
        }
        let end = i + c.len_utf8();
        let kind = if is_emoji(c) {
            TokenKind::Emoji
        } else {
            TokenKind::Punct
        };
        // Skip variation selectors and zero-width joiners glued to emoji.
        if matches!(c as u32, 0xFE0F | 0x200D) {
            i = end;
            continue;
        }
        out.push(Token {
            raw: &text[i..end],
            lower: Cow::Borrowed(&text[i..end]),
            kind,
            byte_start: i,
            byte_end: end,
        });
        i = end;
    }
    out
}

/// The lowercase form of a word with `’` as `'`, borrowed when nothing changes (the usual
/// case for chat text).
fn lowercase(raw: &str) -> Cow<'_, str> {
    if raw.bytes().all(|b| !b.is_ascii_uppercase() && b.is_ascii()) {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(raw.to_lowercase().replace('’', "'"))
    }
}

/// Byte ranges of the sentences of a text: split after `.`, `!`, `?` (and runs of them) that
/// are followed by whitespace, and at line breaks. Leading/trailing whitespace is trimmed.
pub(crate) fn sentence_ranges(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let is_end = match c {
            '\n' => true,
            '.' | '!' | '?' | '…' => {
                // Consume the run of terminators.
                let mut last = i + c.len_utf8();
                while let Some(&(j, n)) = iter.peek() {
                    if matches!(n, '.' | '!' | '?' | '…') {
                        last = j + n.len_utf8();
                        iter.next();
                    } else {
                        break;
                    }
                }
                let next = text[last..].chars().next();
                if next.is_none_or(char::is_whitespace) {
                    push_trimmed(text, start, last, &mut out);
                    start = last;
                }
                false
            }
            _ => false,
        };
        if is_end {
            push_trimmed(text, start, i, &mut out);
            start = i + c.len_utf8();
        }
    }
    push_trimmed(text, start, text.len(), &mut out);
    out
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let piece = &text[start..end];
    let lead = piece.len() - piece.trim_start().len();
    let trail = piece.len() - piece.trim_end().len();
    if lead + trail < piece.len() {
        out.push((start + lead, end - trail));
    }
}

/// Cuts `text` to at most `max` characters, on a character boundary; true when it was cut.
/// The API and the CLI both cut long texts this way before analysing them.
pub fn truncate_chars(text: &str, max: usize) -> (&str, bool) {
    match text.char_indices().nth(max) {
        Some((i, _)) => (&text[..i], true),
        None => (text, false),
    }
}

/// FNV-1a 64-bit hash: stable across platforms and releases (unlike `DefaultHasher`), used for
/// feature hashing and deterministic data splits.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    Fnv::new().bytes(bytes).finish()
}

/// A map for the hot look-up tables of the analyzers (lexicon words, model weights, feature
/// columns). Their keys are short words or numbers that are hashes already, for which
/// SipHash (the std default, built to resist collision flooding) costs more than the look-up
/// itself; these tables are built once from shipped data or training, so flooding them is
/// not a concern. Hand-written because it is a few lines over [`Fnv`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// FNV-1a over bytes; integer keys are mixed with one multiplication (they are uniform
/// hashes or bucket numbers already, but the map needs their high bits to vary too).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Default for FastHasher {
    fn default() -> Self {
        FastHasher(Fnv::new().finish())
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = Fnv(self.0).bytes(bytes).finish();
    }

    fn write_u32(&mut self, k: u32) {
        self.write_u64(u64::from(k));
    }

    fn write_u64(&mut self, k: u64) {
        self.0 = (self.0 ^ k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The streaming form of [`stable_hash`]: hashing pieces one after the other gives the same
/// value as hashing their concatenation, so feature keys such as `"u\u{1}" + word` are hashed
/// without building the string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    #[must_use]
    pub(crate) fn bytes(mut self, bytes: &[u8]) -> Self {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    #[must_use]
    pub(crate) fn str(self, s: &str) -> Self {
        self.bytes(s.as_bytes())
    }

    #[must_use]
    pub(crate) fn char(self, c: char) -> Self {
        if c.is_ascii() {
            return self.bytes(&[c as u8]);
        }
        let mut buf = [0u8; 4];
        self.bytes(c.encode_utf8(&mut buf).as_bytes())
    }

    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_words_emoticons_emoji() {
        let t = tokenize("I don't like it :( 😡 NOT good!!");
        let raws: Vec<&str> = t.iter().map(|t| t.raw).collect();
        assert_eq!(
            raws,
            ["I", "don't", "like", "it", ":(", "😡", "NOT", "good", "!", "!"]
        );
        assert_eq!(t[4].kind, TokenKind::Emoticon);
        assert_eq!(t[5].kind, TokenKind::Emoji);
        assert!(t[6].is_shouting());
        assert!(!t[0].is_shouting());
    }

    #[test]
    fn every_emoticon_has_a_known_first_character() {
        for e in EMOTICONS {
            assert!(e.chars().next().is_some_and(starts_emoticon), "{e}");
        }
    }

    #[test]
    fn urls_are_not_emoticons() {
        let t = tokenize("see http://x.io");
        assert!(t.iter().all(|t| t.kind != TokenKind::Emoticon));
    }

    #[test]
    fn sentences_split() {
        let text = "Hello there. Is it 3.5 now?! Yes\nok";
        let s: Vec<&str> = sentence_ranges(text)
            .into_iter()
            .map(|(a, b)| &text[a..b])
            .collect();
        assert_eq!(s, ["Hello there.", "Is it 3.5 now?!", "Yes", "ok"]);
    }

    #[test]
    fn streaming_hash_equals_hash_of_the_concatenation() {
        let whole = stable_hash("c\u{1}<héllo>".as_bytes());
        let parts = Fnv::new().str("c\u{1}").char('<').str("héllo").char('>');
        assert_eq!(parts.finish(), whole);
        assert_eq!(stable_hash(b""), Fnv::new().finish());
    }

    #[test]
    fn span_slices_chars() {
        let text = "héllo wörld";
        assert_eq!(Span::new(6, 11).slice(text), "wörld");
        assert_eq!(Span::new(6, 99).slice(text), "");
    }
}

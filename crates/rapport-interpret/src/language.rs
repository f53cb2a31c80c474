//! Language identification (whatlang), with a guard for short texts.

use serde::{Deserialize, Serialize};

/// The language the lexicon models are written for.
pub const SUPPORTED_LANGUAGE: &str = "en";

/// Below this many characters whatlang guesses too often; the workspace default is assumed.
const SHORT_TEXT_CHARS: usize = 20;

/// Which language a text is in, and how sure we are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageGuess {
    /// ISO 639-1 code where one exists (`en`, `fr`, ...), otherwise ISO 639-3 (`cmn`).
    pub code: String,
    /// English name of the language.
    pub name: String,
    /// 0..=1; low when the text is short or whatlang is unsure.
    pub confidence: f32,
    /// Whether the lexicon models are built for this language. When false, the other scores
    /// are low-confidence rather than confidently wrong.
    pub supported: bool,
    /// True when the default language was assumed instead of detected.
    pub assumed: bool,
}

/// Detects the language of `text`; `default_code` (ISO 639-1) is assumed for short or
/// undecidable texts.
pub fn detect(text: &str, default_code: &str) -> LanguageGuess {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let assumed = |confidence: f32| LanguageGuess {
        code: default_code.to_string(),
        name: name_of(default_code).to_string(),
        confidence,
        supported: default_code == SUPPORTED_LANGUAGE,
        assumed: true,
    };
    if letters < SHORT_TEXT_CHARS {
        // A short text in a non-Latin script is still clearly not English.
        if let Some(info) = whatlang::detect(text) {
            if info.script() != whatlang::Script::Latin && letters >= 2 {
                return from_info(&info, 0.5);
            }
        }
        return assumed(if letters == 0 { 0.1 } else { 0.3 });
    }
    match whatlang::detect(text) {
        Some(info) => {
            let guess = from_info(&info, 1.0);
            // whatlang often mistakes short English for Portuguese or Latin; when it is unsure
            // and the text is full of English function words, trust those instead.
            if !info.is_reliable() && !guess.supported && english_ratio(text) >= 0.3 {
                LanguageGuess {
                    code: SUPPORTED_LANGUAGE.to_string(),
                    name: "English".to_string(),
                    confidence: 0.5,
                    supported: true,
                    assumed: false,
                }
            } else {
                guess
            }
        }
        None => assumed(0.2),
    }
}

/// Share of words that are common English function words.
fn english_ratio(text: &str) -> f32 {
    const COMMON: &[&str] = &[
        "the", "a", "an", "and", "or", "but", "is", "are", "was", "were", "it", "to", "of", "in",
        "on", "for", "with", "my", "your", "i", "you", "we", "this", "that", "so", "not", "be",
        "have", "has", "had", "do", "does", "did", "at", "by", "me", "can", "will", "just", "up",
    ];
    let mut total = 0usize;
    let mut hits = 0usize;
    for w in text
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
    {
        total += 1;
        if COMMON.contains(&w.to_lowercase().as_str()) {
            hits += 1;
        }
    }
    if total == 0 {
        0.0
    } else {
        hits as f32 / total as f32
    }
}

fn from_info(info: &whatlang::Info, scale: f64) -> LanguageGuess {
    let code = iso639_1(info.lang().code());
    let mut confidence = info.confidence() * scale;
    if !info.is_reliable() {
        confidence = confidence.min(0.5);
    }
    LanguageGuess {
        supported: code == SUPPORTED_LANGUAGE,
        name: info.lang().eng_name().to_string(),
        code: code.to_string(),
        confidence: confidence as f32,
        assumed: false,
    }
}

fn name_of(code: &str) -> &'static str {
    LANGS
        .iter()
        .find(|(_, two, _)| *two == code)
        .map_or("Unknown", |(_, _, n)| n)
}

/// ISO 639-3 (as whatlang reports) to ISO 639-1 where one exists.
fn iso639_1(code3: &'static str) -> &'static str {
    LANGS
        .iter()
        .find(|(three, _, _)| *three == code3)
        .map_or(code3, |(_, two, _)| two)
}

const LANGS: &[(&str, &str, &str)] = &[
    ("afr", "af", "Afrikaans"),
    ("aka", "ak", "Akan"),
    ("amh", "am", "Amharic"),
    ("ara", "ar", "Arabic"),
    ("aze", "az", "Azerbaijani"),
    ("bel", "be", "Belarusian"),
    ("ben", "bn", "Bengali"),
    ("bul", "bg", "Bulgarian"),
    ("cat", "ca", "Catalan"),
    ("ces", "cs", "Czech"),
    ("cmn", "zh", "Mandarin"),
    ("cym", "cy", "Welsh"),
    ("dan", "da", "Danish"),
    ("deu", "de", "German"),
    ("ell", "el", "Greek"),
    ("eng", "en", "English"),
    ("epo", "eo", "Esperanto"),
    ("est", "et", "Estonian"),
    ("fin", "fi", "Finnish"),
    ("fra", "fr", "French"),
    ("guj", "gu", "Gujarati"),
    ("heb", "he", "Hebrew"),
    ("hin", "hi", "Hindi"),
    ("hrv", "hr", "Croatian"),
    ("hun", "hu", "Hungarian"),
    ("hye", "hy", "Armenian"),
    ("ind", "id", "Indonesian"),
    ("ita", "it", "Italian"),
    ("jav", "jv", "Javanese"),
    ("jpn", "ja", "Japanese"),
    ("kan", "kn", "Kannada"),
    ("kat", "ka", "Georgian"),
    ("khm", "km", "Khmer"),
    ("kor", "ko", "Korean"),
    ("lat", "la", "Latin"),
    ("lav", "lv", "Latvian"),
    ("lit", "lt", "Lithuanian"),
    ("mal", "ml", "Malayalam"),
    ("mar", "mr", "Marathi"),
    ("mkd", "mk", "Macedonian"),
    ("mya", "my", "Burmese"),
    ("nep", "ne", "Nepali"),
    ("nld", "nl", "Dutch"),
    ("nob", "nb", "Norwegian Bokmål"),
    ("ori", "or", "Oriya"),
    ("pan", "pa", "Punjabi"),
    ("pes", "fa", "Persian"),
    ("pol", "pl", "Polish"),
    ("por", "pt", "Portuguese"),
    ("ron", "ro", "Romanian"),
    ("rus", "ru", "Russian"),
    ("sin", "si", "Sinhala"),
    ("slk", "sk", "Slovak"),
    ("slv", "sl", "Slovenian"),
    ("sna", "sn", "Shona"),
    ("spa", "es", "Spanish"),
    ("srp", "sr", "Serbian"),
    ("swe", "sv", "Swedish"),
    ("tam", "ta", "Tamil"),
    ("tel", "te", "Telugu"),
    ("tgl", "tl", "Tagalog"),
    ("tha", "th", "Thai"),
    ("tuk", "tk", "Turkmen"),
    ("tur", "tr", "Turkish"),
    ("ukr", "uk", "Ukrainian"),
    ("urd", "ur", "Urdu"),
    ("uzb", "uz", "Uzbek"),
    ("vie", "vi", "Vietnamese"),
    ("yid", "yi", "Yiddish"),
    ("zul", "zu", "Zulu"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_detected_and_supported() {
        let g = detect(
            "My internet has been down since Monday and nobody has called me back.",
            "en",
        );
        assert_eq!(g.code, "en");
        assert!(g.supported && !g.assumed);
    }

    #[test]
    fn french_is_unsupported() {
        let g = detect(
            "Bonjour, ma connexion ne fonctionne plus depuis lundi et personne ne répond.",
            "en",
        );
        assert_eq!(g.code, "fr");
        assert!(!g.supported);
    }

    #[test]
    fn unsure_detection_falls_back_to_english_function_words() {
        let g = detect("It was so easy to set up, great job", "en");
        assert_eq!(g.code, "en");
    }

    #[test]
    fn short_text_assumes_default_with_low_confidence() {
        let g = detect("ok thx", "en");
        assert!(g.assumed && g.supported);
        assert!(g.confidence <= 0.3);
    }
}

//! Emotions, multi-label with an intensity 1..=5, from cue phrases with negation handling.

use serde::{Deserialize, Serialize};

use crate::cues::CueSet;
use crate::error::InterpretError;
use crate::evidence::{Analyzer, Evidence};
use crate::lexicon;
use crate::text::CharMap;

/// The emotions Rapport tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmotionKind {
    /// Hostility toward the company or a person.
    Anger,
    /// Blocked progress, repetition, things not working.
    Frustration,
    /// Worry, fear, stress.
    Anxiety,
    /// Disappointment, being let down.
    Sadness,
    /// Not understanding.
    Confusion,
    /// Happiness, delight.
    Joy,
    /// Thanks, appreciation.
    Gratitude,
}

impl EmotionKind {
    /// snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            EmotionKind::Anger => "anger",
            EmotionKind::Frustration => "frustration",
            EmotionKind::Anxiety => "anxiety",
            EmotionKind::Sadness => "sadness",
            EmotionKind::Confusion => "confusion",
            EmotionKind::Joy => "joy",
            EmotionKind::Gratitude => "gratitude",
        }
    }

    fn is_negative(self) -> bool {
        !matches!(self, EmotionKind::Joy | EmotionKind::Gratitude)
    }
}

/// Intensity of an emotion, 1 (faint) ..= 5 (extreme).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Intensity(u8);

impl Intensity {
    /// An intensity; rejects values outside 1..=5.
    pub fn new(v: u8) -> Result<Self, InterpretError> {
        if (1..=5).contains(&v) {
            Ok(Intensity(v))
        } else {
            Err(InterpretError::OutOfRange(format!(
                "intensity {v} not in 1..=5"
            )))
        }
    }

    /// An intensity clamped into 1..=5.
    pub fn clamped(v: i32) -> Self {
        Intensity(v.clamp(1, 5) as u8)
    }

    /// The value.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Intensity {
    type Error = InterpretError;
    fn try_from(v: u8) -> Result<Self, Self::Error> {
        Intensity::new(v)
    }
}

impl From<Intensity> for u8 {
    fn from(i: Intensity) -> u8 {
        i.0
    }
}

/// One detected emotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Emotion {
    /// Which emotion.
    pub kind: EmotionKind,
    /// How strong.
    pub intensity: Intensity,
}

use EmotionKind::*;

/// (pattern, emotion, base intensity). Patterns are regex fragments, case-insensitive.
const CUES: &[(&str, EmotionKind, f32)] = &[
    // anger
    (r"angry|angrier|mad at (you|this|your)", Anger, 2.0),
    (r"furious|livid|outraged|enraged|irate|seething", Anger, 3.0),
    (
        r"pissed( off)?|infuriat\w*|disgust\w*|appall\w*|outrageous",
        Anger,
        3.0,
    ),
    (
        r"how dare|disgrace(ful)?|bullshit|screw (you|this|your \w+)",
        Anger,
        3.0,
    ),
    (r"hate (you|this|your|it|dealing)|i hate", Anger, 2.0),
    (
        r"unacceptable|scam(med|mers?)?|rip[- ]?off|thie(f|ves)|stealing|robbery",
        Anger,
        2.0,
    ),
    (
        r"incompetent|useless|pathetic|clueless|a joke|wtf",
        Anger,
        2.0,
    ),
    (r"thanks for nothing", Anger, 3.0),
    // Added after the hand-labelled dev set (tests/data): blame and complaint phrasing.
    (
        r"worst (customer service|service|company|experience)|are a joke|total(ly)? (rip[- ]?off|joke)|shocking|rude|theft",
        Anger,
        3.0,
    ),
    (
        r"not good enough|sort it out|dissatisfied|formal(ly)? complain\w*|false advertising|harass\w*|data breach|hopeless",
        Anger,
        2.0,
    ),
    (
        r"(can'?t|cannot) believe|how you treat|never been so angry|one more chance",
        Anger,
        2.0,
    ),
    (r"~😡|🤬|😠", Anger, 3.0),
    // frustration
    (
        r"frustrat\w*|annoy\w*|irritat\w*|exasperat\w*",
        Frustration,
        2.0,
    ),
    (
        r"fed up|sick of|sick and tired|had enough|getting nowhere",
        Frustration,
        3.0,
    ),
    (
        r"tired of|ridiculous|unbelievable|absurd|ugh+|argh+",
        Frustration,
        2.0,
    ),
    (
        r"going (round|around) in circles|back and forth|waste of (my )?time",
        Frustration,
        3.0,
    ),
    (
        r"yet again|again and again|nothing (has )?changed|still (not|no|broken|waiting)",
        Frustration,
        2.0,
    ),
    (
        r"(second|third|fourth|fifth|\d+(st|nd|rd|th)) time",
        Frustration,
        2.0,
    ),
    (
        r"how many times|so many times|keeps? (happening|crashing|dropping|failing|breaking)",
        Frustration,
        2.0,
    ),
    (r"i'?m done|i am done|seriously\?", Frustration, 2.0),
    (
        r"still (hasn'?t|haven'?t|doesn'?t|won'?t|can'?t|not|no|don'?t)|nothing (helps|works|changed)|(keeps?|kept) \w+ing",
        Frustration,
        3.0,
    ),
    (
        r"(no one|nobody) (ever )?(calls?|called|answers|answering|rang|came|can help|knows|reads)|on hold|been waiting|waiting (since|for)",
        Frustration,
        3.0,
    ),
    (
        r"(won'?t|doesn'?t|didn'?t|can'?t|cannot) (work|connect|load|turn on|let me|find|get through|hear)|never (arrives|arrived|turned up|came)",
        Frustration,
        2.0,
    ),
    (
        r"nightmare|(lose|losing) (my )?patience|exhausted|talking to a wall|whatever|another (week|day|month)|chas(e|ing)|(so )?annoying|terrible|awful|a mess|for (weeks|months)",
        Frustration,
        3.0,
    ),
    (r"~!!!|\?\?", Frustration, 2.0),
    // anxiety
    (
        r"worr(y|ied|ying)|anxious|nervous|afraid|uneasy|stress(ed|ful)?",
        Anxiety,
        2.0,
    ),
    (
        r"scared|frightened|panic\w*|freaking out|desperate(ly)?|losing sleep",
        Anxiety,
        3.0,
    ),
    (r"terrified|petrified", Anxiety, 4.0),
    (r"concerned|what if", Anxiety, 1.0),
    (
        r"please help|help!|panick\w*|dreading|stressful|hacked|someone else is using|is (that|this|it) (real|safe)|will i lose|lose my|overdrawn|(can'?t|cannot) (access|pay)|emergency|run out of",
        Anxiety,
        3.0,
    ),
    (
        r"due (today|tomorrow)|before (my|the) (interview|flight|appointment)|rent is due",
        Anxiety,
        2.0,
    ),
    // sadness
    (
        r"sad|unhappy|upset|disappoint\w*|let down|regret\w*|lonely",
        Sadness,
        2.0,
    ),
    (
        r"depressed|miserable|gutted|hopeless|in tears|crying",
        Sadness,
        3.0,
    ),
    (r"heartbroken|devastated", Sadness, 4.0),
    (
        r"loyal customer|passed away|late (husband|wife|father|mother)|no longer afford|disappointing|really sad",
        Sadness,
        3.0,
    ),
    (r"~😭|😢|☹|🙁|😞", Sadness, 3.0),
    // confusion
    (r"confus\w*|puzzled|perplexed|baffled", Confusion, 2.0),
    (
        r"(don'?t|do not|doesn'?t|does not|can'?t|cannot) understand",
        Confusion,
        2.0,
    ),
    (
        r"makes? no sense|(doesn'?t|does not|don'?t) make (any )?sense",
        Confusion,
        2.0,
    ),
    (
        r"no idea (how|what|why|where|if)|wait,? what|what does .{1,40} mean",
        Confusion,
        2.0,
    ),
    (
        r"unclear|not sure (how|what|why|where|if|whether|which)|mixed messages|doesn'?t seem right|what is going on|(can'?t|cannot) work out|where do i find|is that real|a mistake",
        Confusion,
        1.0,
    ),
    (
        r"why (is|was|did|does|do|am|has|have|are|would)\b[^?.!]{0,80}\?",
        Confusion,
        2.0,
    ),
    // joy
    (
        r"happy|glad|pleased|excited|enjoy\w*|love[ds]?|loving|perfect|brilliant",
        Joy,
        2.0,
    ),
    (
        r"delighted|thrilled|amazing|fantastic|wonderful|superb|made my day|woo+hoo+",
        Joy,
        3.0,
    ),
    (r"awesome|excellent|yay|so good", Joy, 2.0),
    (r"great", Joy, 1.0),
    (
        r"impressed|great job|so much (faster|better)|(works?|working) perfectly|relieved|not bad|just worked|easiest",
        Joy,
        3.0,
    ),
    (r"~😀|😃|😄|😁|😊|🙂|😍|🥰|🤩|🎉|❤|:\)|:-\)|:d\b", Joy, 2.0),
    // gratitude
    (
        r"thanks?|thank you|thank u|thx|ty|cheers|kudos",
        Gratitude,
        2.0,
    ),
    (r"appreciated?|appreciate it", Gratitude, 2.0),
    (
        r"grateful|many thanks|thanks (so|very) much|thank you (so|very) much|thanks a (lot|million)",
        Gratitude,
        3.0,
    ),
    (
        r"you('re| are) (the best|a star|amazing|a lifesaver)",
        Gratitude,
        3.0,
    ),
    (r"~🙏", Gratitude, 2.0),
    (
        r"danke|merci|gracias|shout-?out|above and beyond|so helpful|really helpful|excellent service",
        Gratitude,
        3.0,
    ),
    // Sarcasm: praise words wrapped around a complaint.
    (
        r"(oh|just) (great|wonderful|brilliant|perfect|fantastic)|great, another|wonderful, you'?ve",
        Frustration,
        3.0,
    ),
];

#[derive(Debug, Clone)]
pub(crate) struct EmotionDetector {
    cues: CueSet<EmotionKind>,
}

impl EmotionDetector {
    pub(crate) fn new() -> Result<Self, InterpretError> {
        Ok(EmotionDetector {
            cues: CueSet::new(CUES)?,
        })
    }

    pub(crate) fn detect(&self, text: &str, map: &CharMap) -> (Vec<Emotion>, Vec<Evidence>) {
        let mut matches = self.cues.find(text);
        // Sarcastic thanks ("thanks for nothing") is anger, not gratitude.
        let anger: Vec<(usize, usize)> = matches
            .iter()
            .filter(|m| m.tag == Anger || m.tag == Frustration)
            .map(|m| (m.byte_start, m.byte_end))
            .collect();
        matches.retain(|m| {
            !matches!(m.tag, Gratitude | Joy)
                || !anger
                    .iter()
                    .any(|&(a, b)| m.byte_start < b && a < m.byte_end)
        });

        let exclaims = text.matches('!').count();
        let shouting = text
            .split(|c: char| !c.is_alphabetic())
            .any(|w| w.chars().count() >= 3 && w.chars().all(char::is_uppercase));

        let mut best: Vec<(EmotionKind, f32, usize)> = Vec::new();
        let mut evidence = Vec::new();
        for m in &matches {
            let (kind, mut value) = (m.tag, m.value);
            let phrase = &text[m.byte_start..m.byte_end];
            let kind = if m.negated {
                // "not happy" reads as disappointment; other negated cues are dropped
                // ("not angry", "no worries", "no thanks").
                if kind == Joy {
                    value = 2.0;
                    Sadness
                } else {
                    continue;
                }
            } else {
                kind
            };
            let prev_word = text[..m.byte_start]
                .split_whitespace()
                .next_back()
                .map(str::to_lowercase);
            if prev_word
                .as_deref()
                .and_then(lexicon::intensifier)
                .is_some()
            {
                value += 1.0;
            }
            if phrase.chars().filter(|c| c.is_alphabetic()).count() >= 3
                && phrase.chars().all(|c| !c.is_lowercase())
            {
                value += 1.0;
            }
            evidence.push(Evidence {
                analyzer: Analyzer::Emotion,
                label: kind.as_str().to_string(),
                phrase: phrase.to_string(),
                span: map.span(m.byte_start, m.byte_end),
                weight: value,
            });
            match best.iter_mut().find(|(k, _, _)| *k == kind) {
                Some(entry) => {
                    entry.1 = entry.1.max(value);
                    entry.2 += 1;
                }
                None => best.push((kind, value, 1)),
            }
        }
        let mut emotions: Vec<Emotion> = best
            .into_iter()
            .map(|(kind, value, count)| {
                let mut v = value;
                if count >= 2 {
                    v += 1.0;
                }
                if kind.is_negative() || kind == Joy {
                    if exclaims >= 2 {
                        v += 1.0;
                    }
                    if shouting && kind.is_negative() {
                        v += 1.0;
                    }
                }
                Emotion {
                    kind,
                    intensity: Intensity::clamped(v.round() as i32),
                }
            })
            .collect();
        emotions.sort_by(|a, b| b.intensity.cmp(&a.intensity).then(a.kind.cmp(&b.kind)));
        (emotions, evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(text: &str) -> Vec<Emotion> {
        let d = EmotionDetector::new().expect("cues");
        d.detect(text, &CharMap::new(text)).0
    }

    fn has(e: &[Emotion], k: EmotionKind) -> Option<u8> {
        e.iter().find(|e| e.kind == k).map(|e| e.intensity.get())
    }

    #[test]
    fn detects_basic_emotions() {
        assert!(has(&detect("I am so frustrated with this"), Frustration).is_some());
        assert!(has(&detect("Thank you so much!"), Gratitude).is_some());
        assert!(has(&detect("I'm worried my data leaked"), Anxiety).is_some());
        assert!(has(&detect("I don't understand the bill"), Confusion).is_some());
        assert!(detect("The parcel arrived on Tuesday.").is_empty());
    }

    #[test]
    fn negation_drops_or_turns() {
        assert!(has(&detect("I'm not angry, just asking"), Anger).is_none());
        let e = detect("I am not happy with this");
        assert!(has(&e, Joy).is_none());
        assert!(has(&e, Sadness).is_some());
        assert!(has(&detect("no thanks"), Gratitude).is_none());
    }

    #[test]
    fn intensity_grows_with_caps_and_exclamations() {
        let calm = has(&detect("I am angry"), Anger).unwrap_or(0);
        let loud = has(&detect("I am ANGRY!!!"), Anger).unwrap_or(0);
        assert!(loud > calm && loud <= 5);
    }

    #[test]
    fn sarcastic_thanks_is_anger() {
        let e = detect("thanks for nothing");
        assert!(has(&e, Gratitude).is_none());
        assert!(has(&e, Anger).is_some());
    }

    #[test]
    fn intensity_bounds() {
        assert!(Intensity::new(0).is_err());
        assert!(Intensity::new(6).is_err());
        assert_eq!(Intensity::clamped(9).get(), 5);
    }
}

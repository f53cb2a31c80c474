//! Customer effort: -5 (very hard) ..= 5 (very easy), or nothing when the text says nothing
//! about effort.

use serde::{Deserialize, Serialize};

use crate::cues::CueSet;
use crate::error::InterpretError;
use crate::evidence::{Analyzer, Evidence};
use crate::text::CharMap;

/// Effort score, -5 (very hard) ..= 5 (very easy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i8", into = "i8")]
pub struct EffortScore(i8);

impl EffortScore {
    /// A score; rejects values outside -5..=5.
    pub fn new(v: i8) -> Result<Self, InterpretError> {
        if (-5..=5).contains(&v) {
            Ok(EffortScore(v))
        } else {
            Err(InterpretError::OutOfRange(format!(
                "effort {v} not in -5..=5"
            )))
        }
    }

    /// The value.
    pub fn get(self) -> i8 {
        self.0
    }
}

impl TryFrom<i8> for EffortScore {
    type Error = InterpretError;
    fn try_from(v: i8) -> Result<Self, Self::Error> {
        EffortScore::new(v)
    }
}

impl From<EffortScore> for i8 {
    fn from(s: EffortScore) -> i8 {
        s.0
    }
}

/// Unit tag for the effort cue set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EffortCue;

const CONTACT: &str = r"(called|phoned|rang|contacted|emailed|messaged|chatted with|written to|wrote to|reached out to)";
const TIMES: &str = r"(twice|two times|three times|four times|five times|\d+ times|several times|multiple times|many times|numerous times|so many times)";

fn cues() -> Vec<(String, EffortCue, f32)> {
    let e = EffortCue;
    let mut v: Vec<(String, EffortCue, f32)> = [
        // easy
        (r"(so|very|really|super|incredibly) easy", 4.0),
        (r"easy|easily|simple to|user[- ]friendly|intuitive", 3.0),
        (r"effortless(ly)?|(sorted|fixed|resolved|solved)( it| this| everything)? (right away|immediately|in minutes|on the first call|first time)", 5.0),
        (r"seamless(ly)?|painless(ly)?|hassle[- ]free|no hassle|smooth(ly)?", 4.0),
        (r"straightforward|in (seconds|no time|a few minutes)|on the first (call|try|attempt)", 3.0),
        (r"took (only |just )?(a |one )?(minute|few minutes|couple of minutes|seconds)", 3.0),
        (r"quick(ly)?|(so|very|really|nice and) simple", 2.0),
        // Added after the hand-labelled dev set (tests/data).
        (r"easiest|easier|just worked|no (issues|trouble|problems?|hassle) at all|so much faster|(took|in|within) (five|ten|two|\d+) minutes", 4.0),
        (r"tried everything|i'?ve tried|nobody can help|no one can help|locked out|passed between|spent (the whole|all|hours|\d+)|phone up|too many steps", -3.0),
        (r"(keeps?|kept) (getting|disconnecting|dropping|logging)|(been )?waiting (since|for (over )?(an|\d+|two|three) (hours?|minutes))|(over|more than) an hour|(for|in) (\d+|two|three|four|five) (hours|days|weeks|months)", -3.0),
        (r"(twice|(two|three|four|five|six|ten|\d+|several|many|multiple) times)", -3.0),
        (r"make no sense|makes no sense|a maze|the whole weekend|going (round|around) in circles", -4.0),
        // hard
        (r"took (forever|ages|hours|days|weeks|months)|(hours|ages) on hold", -4.0),
        (r"forever|for ages", -3.0),
        (r"on hold", -3.0),
        (r"(second|third|fourth|fifth|\d+(st|nd|rd|th)) time (i'?ve |i have |i am |i'?m )?(called|contacting|calling|asking|writing|reaching out|emailing|trying|chasing)", -4.0),
        (r"(couldn'?t|could not|can'?t|cannot|unable to) (find|figure out|work out|get through|reach)", -3.0),
        (r"(had|have|having) to (explain|repeat|tell you|go through)( it| this| myself| everything| my (story|issue|problem))? (again|all over again|every time|twice)", -4.0),
        (r"repeat(ing)? myself|explain(ed|ing)? (it |this |everything )?again", -4.0),
        (r"transferred (\w+ ){0,3}(times|again|around)|passed (around|from one)", -3.0),
        (r"(hard|difficult|impossible|complicated|confusing) to (find|use|reach|contact|cancel|understand|navigate|get|follow)", -4.0),
        (r"nightmare|runaround|run around|jump through hoops|so many hoops", -4.0),
        (r"difficult|complicated|cumbersome|tedious|hassle", -2.0),
        (r"impossible", -3.0),
        (r"still waiting|waiting (for|on) (\w+ ){0,3}(days|weeks|months)", -3.0),
        (r"(no one|nobody) (gets back|answers|answered|responds|responded|replies|replied|called me back)", -3.0),
        (r"(kept|keep|keeps) (me )?(waiting|on hold)|back and forth|chas(e|ing) (you|this|it|them)", -3.0),
        (r"waste of (my )?time|wasted (\w+ ){0,2}(time|hours|day|morning|afternoon)", -3.0),
    ]
    .iter()
    .map(|(p, w)| (p.to_string(), e, *w))
    .collect();
    v.push((
        format!(r"{CONTACT}( to)?( you| your \w+| support| customer service)?( guys)? {TIMES}"),
        e,
        -4.0,
    ));
    v.push((format!(r"already {CONTACT}"), e, -3.0));
    v
}

/// How easy or hard the customer found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effort {
    /// -5 (very hard) ..= 5 (very easy).
    pub score: EffortScore,
}

#[derive(Debug, Clone)]
pub(crate) struct EffortDetector {
    cues: CueSet<EffortCue>,
}

impl EffortDetector {
    pub(crate) fn new() -> Result<Self, InterpretError> {
        let owned = cues();
        let borrowed: Vec<(&str, EffortCue, f32)> =
            owned.iter().map(|(p, t, v)| (p.as_str(), *t, *v)).collect();
        Ok(EffortDetector {
            cues: CueSet::new(&borrowed)?,
        })
    }

    pub(crate) fn detect(&self, text: &str, map: &CharMap) -> (Option<Effort>, Vec<Evidence>) {
        let mut evidence = Vec::new();
        let mut values = Vec::new();
        for m in self.cues.find(text) {
            // "a quick question" says nothing about effort.
            let phrase = &text[m.byte_start..m.byte_end];
            if phrase.eq_ignore_ascii_case("quick")
                && text[m.byte_end..].to_lowercase().starts_with(" question")
            {
                continue;
            }
            // "not easy" is hard; "wasn't difficult" is fairly easy.
            let v = if m.negated { -m.value * 0.6 } else { m.value };
            values.push(v);
            evidence.push(Evidence {
                analyzer: Analyzer::Effort,
                label: if v >= 0.0 { "easy" } else { "hard" }.to_string(),
                phrase: text[m.byte_start..m.byte_end].to_string(),
                span: map.span(m.byte_start, m.byte_end),
                weight: v,
            });
        }
        if values.is_empty() {
            return (None, evidence);
        }
        let mean = values.iter().sum::<f32>() / values.len() as f32;
        // More cues in the same direction push further toward the end of the scale.
        let pushed = mean + mean.signum() * 0.5 * (values.len() as f32 - 1.0);
        let score = pushed.round().clamp(-5.0, 5.0) as i8;
        let effort = EffortScore::new(score).ok().map(|score| Effort { score });
        (effort, evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(text: &str) -> Option<i8> {
        let d = EffortDetector::new().expect("cues");
        d.detect(text, &CharMap::new(text)).0.map(|e| e.score.get())
    }

    #[test]
    fn hard_and_easy() {
        assert!(score("I've called three times about this").is_some_and(|s| s <= -4));
        assert!(score("It took forever to get an answer").is_some_and(|s| s <= -3));
        assert!(score("so easy, thanks").is_some_and(|s| s >= 4));
        assert!(score("I couldn't find the cancel button").is_some_and(|s| s < 0));
        assert!(score("I had to explain again what happened").is_some_and(|s| s < 0));
        assert_eq!(score("My order number is 1234."), None);
    }

    #[test]
    fn negation_flips_effort() {
        assert!(score("it was not easy").is_some_and(|s| s < 0));
        assert!(score("it wasn't difficult").is_some_and(|s| s > 0));
    }

    #[test]
    fn bounds() {
        assert!(EffortScore::new(6).is_err());
        assert!(EffortScore::new(-5).is_ok());
    }
}

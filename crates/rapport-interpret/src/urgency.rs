//! Urgency: low / normal / high / critical, with the reasons (and the phrases) behind it.

use serde::{Deserialize, Serialize};

use crate::cues::CueSet;
use crate::error::InterpretError;
use crate::evidence::{Analyzer, Evidence};
use crate::text::{CharMap, Span};

/// How soon someone should look at this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UrgencyLevel {
    /// No urgency cue and positive sentiment (thanks, praise).
    Low,
    /// The default for anything that needs an answer.
    Normal,
    /// Outage, money lost, cancellation, or several reasons together.
    High,
    /// Safety, a legal threat, or outage with money lost.
    Critical,
}

impl UrgencyLevel {
    /// snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            UrgencyLevel::Low => "low",
            UrgencyLevel::Normal => "normal",
            UrgencyLevel::High => "high",
            UrgencyLevel::Critical => "critical",
        }
    }
}

/// Why a message is urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UrgencyReasonKind {
    /// A service is down or not working.
    Outage,
    /// The customer lost or was wrongly charged money.
    MoneyLost,
    /// Lawyers, courts, regulators, ombudsmen.
    LegalThreat,
    /// The customer wants to cancel or leave.
    Cancellation,
    /// Risk to health or property.
    Safety,
    /// A date or time limit.
    Deadline,
    /// The customer has been in touch before about this.
    RepeatedContact,
    /// The customer asks for a human, a manager or a supervisor.
    HumanRequest,
}

impl UrgencyReasonKind {
    /// snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            UrgencyReasonKind::Outage => "outage",
            UrgencyReasonKind::MoneyLost => "money_lost",
            UrgencyReasonKind::LegalThreat => "legal_threat",
            UrgencyReasonKind::Cancellation => "cancellation",
            UrgencyReasonKind::Safety => "safety",
            UrgencyReasonKind::Deadline => "deadline",
            UrgencyReasonKind::RepeatedContact => "repeated_contact",
            UrgencyReasonKind::HumanRequest => "human_request",
        }
    }
}

/// One reason, with the phrase that showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrgencyReason {
    /// Which reason.
    pub kind: UrgencyReasonKind,
    /// The phrase as written.
    pub phrase: String,
    /// Where, in character offsets.
    pub span: Span,
}

/// Urgency of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Urgency {
    /// The level.
    pub level: UrgencyLevel,
    /// Every reason found, in text order.
    pub reasons: Vec<UrgencyReason>,
}

impl Urgency {
    /// Whether a reason of this kind was found.
    pub fn has(&self, kind: UrgencyReasonKind) -> bool {
        self.reasons.iter().any(|r| r.kind == kind)
    }
}

use UrgencyReasonKind::*;

const CUES: &[(&str, UrgencyReasonKind, f32)] = &[
    (
        r"outages?|service (is |went )?down|(is|are|went|been|goes|keeps going) down|down (again|for \w+|since)",
        Outage,
        1.0,
    ),
    (
        r"(not|isn'?t|aren'?t|stopped|doesn'?t|don'?t|won'?t) (working|work|connecting|loading|responding)",
        Outage,
        1.0,
    ),
    (
        r"no (internet|service|signal|connection|power|electricity|water|heating|hot water|dial tone|network)",
        Outage,
        1.0,
    ),
    (
        r"(can'?t|cannot|unable to) (log ?in|sign ?in|access|connect|make calls|get online|use)",
        Outage,
        1.0,
    ),
    (
        r"offline|crash(ed|es|ing)|error \d{3}|dropp(ing|ed) (out|calls|connection)",
        Outage,
        1.0,
    ),
    // Added after the hand-labelled dev set (tests/data).
    (
        r"without (internet|tv|service|power|a working \w+|hot water|heating|a landline|phone|broadband)|no (broadband|tv|landline|phone|hot water)|(is|are) dead|(been|went|goes|going) (down|off)|(stopped|won'?t|doesn'?t|didn'?t) (working|connecting|turn on|connect|load)",
        Outage,
        1.0,
    ),
    (
        r"lights are (all )?red|locked out|fault on|broke the app|call quality|(lost|losing) (all )?(the )?(\w+ )?channels|(page|app|site) (just )?errors|none of my data loads|payment terminal",
        Outage,
        1.0,
    ),
    (
        r"refund(ed|s)?|money back|my money|compensation|deposit|late fee|(a|the|this) fee|charged?|billed|overdrawn|out of pocket|(losing|lost) money",
        MoneyLost,
        1.0,
    ),
    (
        r"(took|taken|left|gone) (\w+ ){0,3}(from|of) my account|payment (went out|was taken)|went out twice|payment i didn'?t make|(never|not) arrived|nothing arrived|is missing|delivered to the wrong|damaged|ruined|scammed|(can'?t|cannot) pay|bill doubled",
        MoneyLost,
        1.0,
    ),
    (
        r"charged (me )?(twice|double|two times|again)|double[- ]charged|overcharged|over[- ]charged",
        MoneyLost,
        1.0,
    ),
    (
        r"unauthori[sz]ed (charge|transaction|payment|debit|withdrawal)s?|fraud(ulent)?( charge| transaction)?s?",
        MoneyLost,
        1.0,
    ),
    (
        r"(money|funds|payment|deposit) (is |has )?(gone|missing|disappeared|lost|taken|stolen|never arrived)",
        MoneyLost,
        1.0,
    ),
    (
        r"(lost|stole|took|owe me|out of pocket) (\$|£|€)?\d[\d,.]*|(\$|£|€)\d[\d,.]* (gone|missing|lost|taken)",
        MoneyLost,
        1.0,
    ),
    (
        r"wrong(ly)? (charged|billed|amount)|still (not )?(been )?refunded|never (got|received) (my|a) refund",
        MoneyLost,
        1.0,
    ),
    (
        r"lawyers?|attorneys?|solicitors?|sue|suing|lawsuit|legal action|take (you|this|it) to court|court|small claims",
        LegalThreat,
        1.0,
    ),
    (
        r"regulators?|ombudsm[ae]n|fcc|cfpb|ftc|ofcom|ofgem|fca|trading standards|better business bureau|bbb|attorney general|consumer protection",
        LegalThreat,
        1.0,
    ),
    (r"report (you|this|your company) to", LegalThreat, 1.0),
    (
        r"gdpr|data protection|data breach|false advertising|harassment",
        LegalThreat,
        1.0,
    ),
    (
        r"cancel(l?ing|l?ed|lation)?|terminate (my|the) (contract|account|service|subscription)|close my account",
        Cancellation,
        1.0,
    ),
    (
        r"switch(ing)? (to|provider)|(leave|leaving|moving to) (you|another provider|a competitor|\w+ instead)",
        Cancellation,
        1.0,
    ),
    (
        r"leaving for \w+|close (the|this) account|regret switching",
        Cancellation,
        1.0,
    ),
    (
        r"i'?m done|i am done|never again|take my business elsewhere|end my (contract|subscription)",
        Cancellation,
        1.0,
    ),
    (
        r"fire|smoke|smoking|sparks?|sparking|overheat(ing|ed)?|explod(ed|ing)|gas leak|leaking gas|carbon monoxide",
        Safety,
        1.0,
    ),
    (
        r"smell of (gas|burning)|burning smell|(gets|getting|is|very|so) hot\b|leak(s|ing)?|flood(ed|ing)?|safe to drink|fallen cable|exposed wires?|cut off my (electricity|gas|power|heating)",
        Safety,
        1.0,
    ),
    (
        r"insulin|medication|prescription|heart monitor|medical|oxygen|wheelchair|newborn|baby monitor|emergency alarm|lives alone|home alone|small children|minus \d+|freezing|hot water|heating",
        Safety,
        1.0,
    ),
    (
        r"injur(ed|y|ies)|hurt (me|my|him|her|myself)|burn(ed|t) (me|my|myself)|electric shock|electrocuted|unsafe|dangerous|hospital|emergency",
        Safety,
        1.0,
    ),
    (
        r"urgent(ly)?|asap|as soon as possible|immediately|right now|right away|deadline|running out of time",
        Deadline,
        1.0,
    ),
    (
        r"(need|want|have|get|fix|sort|deliver|done)( it| this| that| them| my \w+)? (by |before )?(today|tonight|tomorrow)|by (today|tonight|tomorrow|monday|tuesday|wednesday|thursday|friday|saturday|sunday|the end of (the )?(day|week)|eod|noon|\d{1,2}(am|pm| ?o'?clock))",
        Deadline,
        1.0,
    ),
    (
        r"today|tonight|tomorrow|midnight|(this|the) weekend|(on|by|before|for|until) (mon|tues|wednes|thurs|fri|satur|sun)day|(end|start) of the (day|week|month|billing period)|on the \d+(st|nd|rd|th)|next month|at \d{1,2}\b",
        Deadline,
        1.0,
    ),
    (
        r"within (the next )?\d+ (hours?|days?|minutes?)|before my (flight|trip|move|surgery|appointment|exam)",
        Deadline,
        1.0,
    ),
    (
        r"(called|phoned|rang|contacted|emailed|messaged|chatted with|written to|wrote to|reached out to)( to)?( you| your \w+| support| customer service)?( guys)? (twice|two times|three times|four times|five times|\d+ times|several times|multiple times|many times|numerous times|so many times|again|before)",
        RepeatedContact,
        1.0,
    ),
    (
        r"(second|third|fourth|fifth|\d+(st|nd|rd|th)) time (i'?ve |i have |i am |i'?m )?(contacting|calling|asking|writing|reaching out|emailing|chatting|complaining|reporting|called|contacted)",
        RepeatedContact,
        1.0,
    ),
    (
        r"(second|third|fourth|fifth|\d+(st|nd|rd|th)) (call|email|message|time)|already (called|contacted|emailed|asked|told|explained|reported|complained|spoke)",
        RepeatedContact,
        1.0,
    ),
    (
        r"again|(three|four|five|six|ten|\d+|several|many|multiple) times|twice|every time|each time|back and forth|passed between|promised|chas(e|ed|ing)|keeps? (happening|disconnecting)",
        RepeatedContact,
        1.0,
    ),
    (
        r"still (hasn'?t|haven'?t|not|no|don'?t)|(second|third|fourth|fifth) (router|engineer|modem)|last month|(three|two|four) engineers|told you so|repeatedly",
        RepeatedContact,
        1.0,
    ),
    (
        r"yet again|again and again|how many times|keep (calling|asking|contacting|chasing)|still (haven'?t|have not|no) (heard|had|got|received)",
        RepeatedContact,
        1.0,
    ),
    (
        r"(talk|speak|chat|transfer me) (to|with) (a |an |your )?(real |actual |live )?(person|human|agent|manager|supervisor|someone)",
        HumanRequest,
        1.0,
    ),
    (
        r"(get|want|need) (me )?(a |an |your )?(real |actual |live )?(person|human|manager|supervisor)|escalate (this|my)|human please|agent please|someone senior|(need|want) a human",
        HumanRequest,
        1.0,
    ),
];

#[derive(Debug, Clone)]
pub(crate) struct UrgencyDetector {
    cues: CueSet<UrgencyReasonKind>,
}

impl UrgencyDetector {
    pub(crate) fn new() -> Result<Self, InterpretError> {
        Ok(UrgencyDetector {
            cues: CueSet::new(CUES)?,
        })
    }

    /// `sentiment` is the message score, used for the level when no reason is found.
    pub(crate) fn detect(
        &self,
        text: &str,
        map: &CharMap,
        sentiment: f32,
    ) -> (Urgency, Vec<Evidence>) {
        let mut reasons = Vec::new();
        for m in self.cues.find(text) {
            // "not urgent", "no rush" style negations only matter for deadlines; a negated
            // legal or cancellation mention ("I don't want to cancel") is still a signal.
            if m.negated && m.tag == Deadline {
                continue;
            }
            // "my flight was cancelled" is not the customer leaving; "thanks again" is not a
            // repeated contact.
            let phrase = text[m.byte_start..m.byte_end].to_lowercase();
            let prev = text[..m.byte_start]
                .split_whitespace()
                .next_back()
                .map(|w| {
                    w.trim_matches(|c: char| !c.is_alphanumeric())
                        .to_lowercase()
                });
            let prev = prev.as_deref().unwrap_or("");
            if m.tag == Cancellation
                && phrase.starts_with("cancel")
                && phrase.ends_with("ed")
                && matches!(prev, "was" | "got" | "been" | "were" | "is" | "be")
            {
                continue;
            }
            if m.tag == RepeatedContact && phrase == "again" && matches!(prev, "thanks" | "thank") {
                continue;
            }
            reasons.push(UrgencyReason {
                kind: m.tag,
                phrase: text[m.byte_start..m.byte_end].to_string(),
                span: map.span(m.byte_start, m.byte_end),
            });
        }
        let level = level_of(&reasons, sentiment);
        let evidence = reasons
            .iter()
            .map(|r| Evidence {
                analyzer: Analyzer::Urgency,
                label: r.kind.as_str().to_string(),
                phrase: r.phrase.clone(),
                span: r.span,
                weight: 1.0,
            })
            .collect();
        (Urgency { level, reasons }, evidence)
    }
}

fn level_of(reasons: &[UrgencyReason], sentiment: f32) -> UrgencyLevel {
    let has = |k| reasons.iter().any(|r| r.kind == k);
    let mut kinds: Vec<UrgencyReasonKind> = reasons.iter().map(|r| r.kind).collect();
    kinds.sort();
    kinds.dedup();
    if has(Safety) || has(LegalThreat) || (has(Outage) && has(MoneyLost)) || kinds.len() >= 4 {
        UrgencyLevel::Critical
    } else if has(Outage)
        || has(MoneyLost)
        || has(Cancellation)
        || has(RepeatedContact)
        || has(Deadline)
        || kinds.len() >= 2
        || (has(HumanRequest) && sentiment < -0.15)
    {
        UrgencyLevel::High
    } else if kinds.is_empty() && sentiment > 0.15 {
        // Praise and thanks with nothing pending.
        UrgencyLevel::Low
    } else {
        UrgencyLevel::Normal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(text: &str) -> Urgency {
        let d = UrgencyDetector::new().expect("cues");
        d.detect(text, &CharMap::new(text), 0.0).0
    }

    #[test]
    fn reasons_and_levels() {
        let u = detect("I will contact my lawyer and the CFPB");
        assert!(u.has(LegalThreat));
        assert_eq!(u.level, UrgencyLevel::Critical);
        let u = detect("My internet is down since Monday");
        assert!(u.has(Outage));
        assert_eq!(u.level, UrgencyLevel::High);
        let u = detect("Please cancel my subscription");
        assert!(u.has(Cancellation));
        let u = detect("I was charged twice this month");
        assert!(u.has(MoneyLost));
        let u = detect("The charger started to smoke");
        assert!(u.has(Safety));
        assert_eq!(u.level, UrgencyLevel::Critical);
        let u = detect("I need it by Friday");
        assert!(u.has(Deadline));
        let u = detect("Third time contacting you about this");
        assert!(u.has(RepeatedContact));
        let u = detect("Can I talk to a real person please");
        assert!(u.has(HumanRequest));
        let d = UrgencyDetector::new().expect("cues");
        let text = "Thanks, all sorted!";
        assert_eq!(
            d.detect(text, &CharMap::new(text), 0.6).0.level,
            UrgencyLevel::Low
        );
        assert_eq!(
            detect("What are your opening hours?").level,
            UrgencyLevel::Normal
        );
    }

    #[test]
    fn phrases_slice_back() {
        let text = "Ça ne marche pas, I already called twice!";
        let u = detect(text);
        assert!(!u.reasons.is_empty());
        for r in &u.reasons {
            assert_eq!(r.span.slice(text), r.phrase);
        }
    }

    #[test]
    fn not_urgent_is_not_a_deadline() {
        assert!(!detect("it's not urgent").has(Deadline));
    }
}

//! Conversation-level view over the customer's inbound messages: sentiment trajectory, trend,
//! levels dropped, repeated contact and escalation signals.

use serde::{Deserialize, Serialize};

use crate::emotion::EmotionKind;
use crate::evidence::ModelInfo;
use crate::sentiment::SentimentLabel;
use crate::text::Span;
use crate::urgency::UrgencyReasonKind;
use crate::MessageAnalysis;

/// Why a conversation may need escalating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationKind {
    /// Lawyers, courts, regulators.
    LegalThreat,
    /// Risk to health or property.
    Safety,
    /// Asked for a human, manager or supervisor.
    HumanRequest,
    /// Wants to cancel or leave.
    Cancellation,
    /// Anger or frustration grew across messages.
    RisingAnger,
    /// Sentiment fell by two levels or more.
    SentimentDrop,
}

/// A signal found in one message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSignal {
    /// Index of the message (0-based, in the order given).
    pub message: usize,
    /// The phrase, or a short description for derived signals.
    pub phrase: String,
    /// Where in that message, when the signal is a phrase.
    pub span: Option<Span>,
}

/// An escalation signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationSignal {
    /// What kind.
    pub kind: EscalationKind,
    /// Where and what.
    pub signal: ConversationSignal,
}

/// The conversation seen as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationAnalysis {
    /// Number of customer messages.
    pub messages: usize,
    /// Sentiment score per message, in order.
    pub trajectory: Vec<f32>,
    /// Least-squares slope of the trajectory, per message (negative = getting worse).
    pub trend: f32,
    /// Last score minus first score.
    pub change: f32,
    /// Label of the first message.
    pub first_label: Option<SentimentLabel>,
    /// Label of the last message.
    pub last_label: Option<SentimentLabel>,
    /// Worst label seen.
    pub worst_label: Option<SentimentLabel>,
    /// How many of the five levels sentiment fell from the first to the last message (0 if it
    /// rose or stayed).
    pub levels_dropped: u8,
    /// Phrases showing the customer had been in touch before.
    pub repeated_contact: Vec<ConversationSignal>,
    /// Reasons to escalate.
    pub escalation: Vec<EscalationSignal>,
    /// Whether any escalation signal was found.
    pub escalate: bool,
    /// Short human-readable evidence lines.
    pub evidence: Vec<String>,
    /// The model that read the latest message. A conversation that spans a change of model
    /// (a retrained intent model, the neural path switched on) has earlier messages read by
    /// another; each message's own analysis names its model.
    pub model: ModelInfo,
}

fn slope(ys: &[f32]) -> f32 {
    let n = ys.len() as f32;
    if ys.len() < 2 {
        return 0.0;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = ys.iter().sum::<f32>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f32 - mean_x;
        num += dx * (y - mean_y);
        den += dx * dx;
    }
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

fn anger_of(m: &MessageAnalysis) -> u8 {
    m.emotions
        .iter()
        .filter(|e| matches!(e.kind, EmotionKind::Anger | EmotionKind::Frustration))
        .map(|e| e.intensity.get())
        .max()
        .unwrap_or(0)
}

/// Builds the conversation view from message analyses in order.
pub fn analyze(messages: &[MessageAnalysis]) -> ConversationAnalysis {
    let trajectory: Vec<f32> = messages.iter().map(|m| m.sentiment.score.get()).collect();
    let labels: Vec<SentimentLabel> = messages.iter().map(|m| m.sentiment.label).collect();
    let first_label = labels.first().copied();
    let last_label = labels.last().copied();
    let worst_label = labels.iter().min().copied();
    let levels_dropped = match (first_label, last_label) {
        (Some(f), Some(l)) => (f.level() - l.level()).max(0) as u8,
        _ => 0,
    };
    let change = match (trajectory.first(), trajectory.last()) {
        (Some(f), Some(l)) => l - f,
        _ => 0.0,
    };

    let mut repeated_contact = Vec::new();
    let mut escalation = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        for r in &m.urgency.reasons {
            let signal = ConversationSignal {
                message: i,
                phrase: r.phrase.clone(),
                span: Some(r.span),
            };
            let kind = match r.kind {
                UrgencyReasonKind::RepeatedContact => {
                    repeated_contact.push(signal);
                    continue;
                }
                UrgencyReasonKind::LegalThreat => EscalationKind::LegalThreat,
                UrgencyReasonKind::Safety => EscalationKind::Safety,
                UrgencyReasonKind::HumanRequest => EscalationKind::HumanRequest,
                UrgencyReasonKind::Cancellation => EscalationKind::Cancellation,
                _ => continue,
            };
            escalation.push(EscalationSignal { kind, signal });
        }
        if m.intent.label.as_deref() == Some("human_request")
            && !m.urgency.has(UrgencyReasonKind::HumanRequest)
        {
            escalation.push(EscalationSignal {
                kind: EscalationKind::HumanRequest,
                signal: ConversationSignal {
                    message: i,
                    phrase: "intent human_request".to_string(),
                    span: None,
                },
            });
        }
    }
    let angers: Vec<u8> = messages.iter().map(anger_of).collect();
    if let (Some(&first), Some(&last)) = (angers.first(), angers.last()) {
        if messages.len() >= 2 && last >= 3 && last > first {
            escalation.push(EscalationSignal {
                kind: EscalationKind::RisingAnger,
                signal: ConversationSignal {
                    message: messages.len() - 1,
                    phrase: format!("anger/frustration intensity {first} -> {last}"),
                    span: None,
                },
            });
        }
    }
    if levels_dropped >= 2 {
        escalation.push(EscalationSignal {
            kind: EscalationKind::SentimentDrop,
            signal: ConversationSignal {
                message: messages.len().saturating_sub(1),
                phrase: format!("sentiment fell {levels_dropped} levels"),
                span: None,
            },
        });
    }

    let mut evidence = Vec::new();
    if let (Some(f), Some(l)) = (first_label, last_label) {
        evidence.push(format!(
            "sentiment {} -> {} over {} messages (trend {:+.2}/message)",
            label_str(f),
            label_str(l),
            messages.len(),
            slope(&trajectory)
        ));
    }
    for s in &repeated_contact {
        evidence.push(format!(
            "repeated contact: \"{}\" (message {})",
            s.phrase,
            s.message + 1
        ));
    }
    for e in &escalation {
        evidence.push(format!(
            "{}: \"{}\" (message {})",
            kind_str(e.kind),
            e.signal.phrase,
            e.signal.message + 1
        ));
    }
    evidence.truncate(8);

    ConversationAnalysis {
        messages: messages.len(),
        trend: slope(&trajectory),
        trajectory,
        change,
        first_label,
        last_label,
        worst_label,
        levels_dropped,
        escalate: !escalation.is_empty(),
        repeated_contact,
        escalation,
        evidence,
        model: messages
            .last()
            .map_or_else(ModelInfo::embedded, |m| m.model.clone()),
    }
}

fn label_str(l: SentimentLabel) -> &'static str {
    match l {
        SentimentLabel::VeryNegative => "very_negative",
        SentimentLabel::Negative => "negative",
        SentimentLabel::Neutral => "neutral",
        SentimentLabel::Positive => "positive",
        SentimentLabel::VeryPositive => "very_positive",
    }
}

fn kind_str(k: EscalationKind) -> &'static str {
    match k {
        EscalationKind::LegalThreat => "legal threat",
        EscalationKind::Safety => "safety",
        EscalationKind::HumanRequest => "asks for a human",
        EscalationKind::Cancellation => "cancellation",
        EscalationKind::RisingAnger => "rising anger",
        EscalationKind::SentimentDrop => "sentiment drop",
    }
}

#[cfg(test)]
mod tests {
    use super::slope;

    #[test]
    fn slope_of_line() {
        assert!((slope(&[0.0, -0.5, -1.0]) + 0.5).abs() < 1e-6);
        assert_eq!(slope(&[0.3]), 0.0);
    }
}

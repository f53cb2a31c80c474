//! How the interpretation stage's conclusions look on the conversation page: the customer's
//! sentiment trajectory as a sparkline, and per message the phrases that drove the scores
//! highlighted, with chips for sentiment, emotions, urgency, intent, effort and personal data.

use maud::{html, Markup, PreEscaped};
use rapport_interpret::{ConversationAnalysis, MessageAnalysis};
use serde::Serialize;

/// The snake_case name an enum serialises to.
fn name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
        .replace('_', " ")
}

/// Sentiment scores in [-1, 1] as a small line chart, worst at the bottom.
pub fn sparkline(scores: &[f32]) -> Markup {
    let (w, h, pad) = (220.0f32, 48.0f32, 5.0f32);
    let x = |i: usize| {
        if scores.len() < 2 {
            w / 2.0
        } else {
            pad + (w - 2.0 * pad) * i as f32 / (scores.len() - 1) as f32
        }
    };
    let y = |s: f32| pad + (h - 2.0 * pad) * (1.0 - (s.clamp(-1.0, 1.0) + 1.0) / 2.0);
    let points: Vec<String> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{:.1},{:.1}", x(i), y(*s)))
        .collect();
    let svg = format!(
        r##"<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="sentiment trajectory">
<line x1="0" y1="{mid:.1}" x2="{w}" y2="{mid:.1}" stroke="#d0d4de" stroke-dasharray="3 3"/>
<polyline fill="none" stroke="#3b5bdb" stroke-width="2" points="{pts}"/>{dots}</svg>"##,
        mid = y(0.0),
        pts = points.join(" "),
        dots = scores
            .iter()
            .enumerate()
            .map(|(i, s)| format!(
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"##,
                x(i),
                y(*s),
                if *s < -0.15 {
                    "#c92a2a"
                } else if *s > 0.15 {
                    "#2b8a3e"
                } else {
                    "#6b7385"
                }
            ))
            .collect::<String>()
    );
    PreEscaped(svg)
}

/// The customer's reading across the conversation.
pub fn conversation_panel(c: &ConversationAnalysis) -> Markup {
    html! {
        div.card #conversation-analysis {
            div style="display:flex; gap:24px; align-items:center; flex-wrap:wrap" {
                div {
                    div.l.muted { "Customer sentiment across " (c.messages) " message(s)" }
                    (sparkline(&c.trajectory))
                }
                div {
                    @if let (Some(f), Some(l)) = (c.first_label, c.last_label) {
                        p { "From " strong { (name(&f)) } " to " strong #last-sentiment { (name(&l)) } }
                    }
                    @if c.levels_dropped > 0 {
                        p.error { "Fell " (c.levels_dropped) " level(s) since the first message" }
                    }
                    @if c.escalate { p { span.chip.hot { "escalate" } } }
                }
                div {
                    @for (kind, phrases) in escalation_kinds(c) { span.chip.hot title=(phrases) { (kind) } }
                    @if !c.repeated_contact.is_empty() { span.chip.warn { "repeated contact" } }
                }
            }
            @if !c.evidence.is_empty() {
                ul.muted { @for line in c.evidence.iter().take(5) { li { (line) } } }
            }
            p.muted style="font-size:12px" {
                "Model " (c.model.name) " " (c.model.version)
                @if let Some(n) = &c.model.neural {
                    " with " (n.name) " (" (n.version) ") for sentiment"
                    @if n.emotion { @if n.intent { ", emotion" } @else { " and emotion" } }
                    @if n.intent { " and intent" }
                }
            }
        }
    }
}

/// Each kind of escalation signal once, with the phrases behind it.
fn escalation_kinds(c: &ConversationAnalysis) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for e in &c.escalation {
        let kind = name(&e.kind);
        match out.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, phrases)) => {
                phrases.push_str("; ");
                phrases.push_str(&e.signal.phrase);
            }
            None => out.push((kind, e.signal.phrase.clone())),
        }
    }
    out
}

/// The message text with evidence phrases marked (character offsets, overlaps skipped).
fn highlighted(text: &str, a: &MessageAnalysis) -> Markup {
    let mut spans: Vec<(usize, usize, String)> = a
        .evidence
        .iter()
        .map(|e| {
            (
                e.span.start,
                e.span.end,
                format!("{}: {}", name(&e.analyzer), e.label),
            )
        })
        .chain(a.urgency.reasons.iter().map(|r| {
            (
                r.span.start,
                r.span.end,
                format!("urgency: {}", name(&r.kind)),
            )
        }))
        .filter(|(s, e, _)| s < e)
        .collect();
    spans.sort_by_key(|(s, e, _)| (*s, std::cmp::Reverse(*e)));
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut at = 0usize;
    for (start, end, title) in spans {
        if start < at || end > chars.len() {
            continue;
        }
        out.push_str(&maud::html! { (chars[at..start].iter().collect::<String>()) }.into_string());
        out.push_str(
            &html! { mark title=(title) { (chars[start..end].iter().collect::<String>()) } }
                .into_string(),
        );
        at = end;
    }
    out.push_str(
        &html! { (chars[at.min(chars.len())..].iter().collect::<String>()) }.into_string(),
    );
    PreEscaped(out)
}

/// One customer message with what was read in it.
pub fn message_panel(text: &str, a: &MessageAnalysis) -> Markup {
    let s = &a.sentiment;
    let tone = if s.score.get() < -0.15 {
        "hot"
    } else if s.score.get() > 0.15 {
        "good"
    } else {
        ""
    };
    html! {
        pre.analysed { (highlighted(text, a)) }
        div.chips {
            span class=(format!("chip {tone}")) title=(format!("confidence {:.2}", s.confidence)) {
                (name(&s.label)) " " (format!("{:+.2}", s.score.get()))
            }
            @for e in &a.emotions { span.chip.warn { (name(&e.kind)) " " (e.intensity.get()) "/5" } }
            @if a.urgency.level != rapport_interpret::UrgencyLevel::Normal || !a.urgency.reasons.is_empty() {
                span.chip.hot { "urgency " (name(&a.urgency.level)) }
            }
            @for r in &a.urgency.reasons { span.chip { (name(&r.kind)) } }
            @match (&a.intent.label, a.intent.out_of_scope) {
                (Some(l), false) => { span.chip.intent title=(format!("confidence {:.2}, intent model v{}", a.intent.confidence, a.model.intent_model_version.unwrap_or(0))) { "intent " (l.replace('_', " ")) } }
                _ => { span.chip.muted { "intent: out of scope" } }
            }
            @if let Some(e) = &a.effort { span.chip { "effort " (e.score.get()) } }
            @for p in &a.pii { span.chip.warn { "PII " (name(&p.kind)) } }
            @if !a.language.supported { span.chip.muted { "language " (a.language.code) " (low confidence)" } }
        }
    }
}

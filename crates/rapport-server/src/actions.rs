//! Actions and decisions: the one road from "do this for this customer" to it being done.
//!
//! Every action (a message, an offer, a refund, a credit, an account closure) is asked for
//! through [`Engine::request_action`] and becomes a decision record with a plain-language
//! explanation. On the way it passes, in this order:
//!
//! 1. the pause a customer's request for a person puts on automated messages;
//! 2. the consent gate ([`rapport_govern::consent::Gate`]), which alone makes a
//!    [`Permitted`] value;
//! 3. the oversight policy ([`rapport_govern::policy::Policy`]): a high-stakes action waits in
//!    the approval queue and only an approver's decision turns it into a [`Cleared`] value.
//!
//! [`Engine::execute`] takes nothing but a `Cleared` action, so nothing unchecked or
//! unapproved can be carried out. Every step is audited, by decision id and codes only.
//!
//! "Carried out" means handed over: an automated message is added to the customer's
//! conversation with the AI disclosure; refunds, credits, offers and closures are recorded as
//! executed decisions for the systems that perform them (billing, CRM) to pick up from
//! `GET /v1/decisions?status=executed`.

use std::sync::Arc;

use chrono::Utc;
use rapport_core::{
    Actor, ApprovalDemand, AuditEntry, ConversationId, DecisionRecord, DecisionStatus, Direction,
    Handoff, MessageText, NewMessage, ProfileId, Purpose, Reason, WorkspaceId,
};
use rapport_govern::consent::{Action, Permitted};
use rapport_govern::policy::{self, Policy, Progress, Subject};
use rapport_store::{DecisionQuery, StoreError};
use serde_json::{json, Map, Value};

use crate::engine::Engine;

/// The action kinds Rapport can carry out, with the consent each needs.
pub const KINDS: &[(&str, &str)] = &[
    (
        "message.service",
        "a service message in a conversation (no consent needed)",
    ),
    (
        "message.marketing",
        "a marketing message (marketing consent for its channel)",
    ),
    (
        "offer.retention",
        "a retention offer (personalization consent)",
    ),
    (
        "offer.discount",
        "a discount offer (personalization consent)",
    ),
    ("offer.upsell", "an upgrade offer (personalization consent)"),
    ("refund", "a refund of an amount"),
    ("credit", "a credit to the customer's account"),
    ("account.close", "closing the customer's account"),
];

/// An action as asked for.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    pub kind: String,
    pub params: Map<String, Value>,
}

impl ActionRequest {
    fn channel(&self) -> Option<&str> {
        self.params.get("channel").and_then(Value::as_str)
    }

    pub fn is_message(&self) -> bool {
        self.kind.starts_with("message.")
    }
}

impl Action for ActionRequest {
    fn kind(&self) -> &str {
        &self.kind
    }

    fn purposes(&self) -> Vec<Purpose> {
        let marketing_channel = || match self.channel() {
            Some("email") => Purpose::parse("marketing_email"),
            Some("sms") => Purpose::parse("marketing_sms"),
            _ => None,
        };
        let mut out = Vec::new();
        if self.kind == "message.marketing" {
            out.extend(marketing_channel().or_else(|| Purpose::parse("personalization")));
        } else if self.kind.starts_with("offer.") {
            out.extend(Purpose::parse("personalization"));
            out.extend(marketing_channel());
        }
        out
    }
}

/// An action both the consent gate and the oversight policy let through. Made only by
/// [`clear`] (no rule holds it) or [`clear_approved`] (enough approvers said yes).
#[derive(Debug)]
pub struct Cleared<A> {
    permitted: Permitted<A>,
}

fn clear(
    policy: &Policy,
    permitted: Permitted<ActionRequest>,
    traits: &Map<String, Value>,
) -> Result<Cleared<ActionRequest>, Box<(Permitted<ActionRequest>, policy::Assessment)>> {
    let a = permitted.action();
    let assessment = policy.assess(&Subject {
        kind: &a.kind,
        params: &a.params,
        traits,
    });
    if assessment.is_high_stakes() {
        Err(Box::new((permitted, assessment)))
    } else {
        Ok(Cleared { permitted })
    }
}

fn clear_approved<A>(permitted: Permitted<A>, demand: &ApprovalDemand) -> Option<Cleared<A>> {
    (policy::progress(demand) == Progress::Approved).then_some(Cleared { permitted })
}

/// Why an action request or an approval was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{1}")]
    Invalid(&'static str, String),
    #[error("{0} not found")]
    NotFound(String),
    /// The request is valid but the decision is not in a state to take it.
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("{1}")]
    Forbidden(&'static str, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An action request as the API states it.
#[derive(Debug, Clone)]
pub struct ActionInput {
    pub profile: ProfileId,
    pub kind: String,
    pub params: Map<String, Value>,
    pub reasons: Vec<Reason>,
    pub conversation: Option<ConversationId>,
    /// Whether software decided this (an automated message carries the AI disclosure).
    pub automated: bool,
}

fn number(params: &Map<String, Value>, key: &str) -> Option<f64> {
    params.get(key).and_then(Value::as_f64)
}

fn plain_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.2}")
    }
}

fn money(params: &Map<String, Value>) -> String {
    let amount = number(params, "amount")
        .map(plain_number)
        .unwrap_or_default();
    match params.get("currency").and_then(Value::as_str) {
        Some(c) => format!("{amount} {c}"),
        None => amount,
    }
}

/// One sentence for the customer: what was decided, because of what.
pub fn explain(kind: &str, params: &Map<String, Value>, reasons: &[Reason]) -> String {
    let what = match kind {
        k if k.starts_with("offer.") => match (number(params, "percent"), params.get("title")) {
            (Some(p), _) => format!("You were offered {}% off", plain_number(p)),
            (None, Some(Value::String(t))) => format!("You were offered {t}"),
            _ if number(params, "amount").is_some() => {
                format!("You were offered {}", money(params))
            }
            _ => "You were sent an offer".to_owned(),
        },
        "refund" => format!("You were refunded {}", money(params)),
        "credit" => format!("Your account was credited {}", money(params)),
        "account.close" => "Your account is being closed".to_owned(),
        "message.marketing" => "You were sent this message".to_owned(),
        _ => "You received this reply".to_owned(),
    };
    let texts: Vec<&str> = reasons
        .iter()
        .map(|r| r.text.trim().trim_end_matches('.'))
        .collect();
    let because = match texts.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    format!("{what} because {because}.")
}

fn validate(input: &ActionInput) -> Result<(), ActionError> {
    if !KINDS.iter().any(|(k, _)| *k == input.kind) {
        return Err(ActionError::Invalid(
            "unknown_action",
            format!(
                "unknown action kind `{}`; known kinds: {}",
                input.kind,
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    if input.reasons.is_empty() {
        return Err(ActionError::Invalid(
            "reason_required",
            "every decision needs at least one reason in plain words (reasons: [{code, text}])"
                .into(),
        ));
    }
    if input.reasons.len() > 10 {
        return Err(ActionError::Invalid(
            "too_many_reasons",
            "at most 10 reasons".into(),
        ));
    }
    for r in &input.reasons {
        if r.code.trim().is_empty() || r.text.trim().is_empty() || r.text.chars().count() > 300 {
            return Err(ActionError::Invalid(
                "invalid_reason",
                "each reason needs a code and a text of 1 to 300 characters".into(),
            ));
        }
    }
    for key in ["amount", "percent"] {
        if let Some(v) = input.params.get(key) {
            let ok = v.as_f64().is_some_and(|x| x.is_finite() && x >= 0.0);
            if !ok {
                return Err(ActionError::Invalid(
                    "invalid_params",
                    format!("{key} must be a number of zero or more"),
                ));
            }
        }
    }
    if number(&input.params, "percent").is_some_and(|p| p > 100.0) {
        return Err(ActionError::Invalid(
            "invalid_params",
            "percent must be at most 100".into(),
        ));
    }
    if matches!(input.kind.as_str(), "refund" | "credit")
        && number(&input.params, "amount").is_none()
    {
        return Err(ActionError::Invalid(
            "invalid_params",
            format!("a {} needs an amount", input.kind),
        ));
    }
    if input.kind.starts_with("message.") {
        let text = input
            .params
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("");
        if MessageText::parse(text).is_err() {
            return Err(ActionError::Invalid(
                "invalid_params",
                "a message needs a text (not blank, within the message size limit)".into(),
            ));
        }
        if input.conversation.is_none() {
            return Err(ActionError::Invalid(
                "invalid_params",
                "a message needs the conversation_id it is sent in".into(),
            ));
        }
    }
    Ok(())
}

fn new_id() -> String {
    format!("dec_{}", uuid::Uuid::now_v7().simple())
}

fn audit(
    ws: &WorkspaceId,
    actor: &Actor,
    action: &str,
    d: &DecisionRecord,
    details: Value,
) -> AuditEntry {
    let mut details = details;
    if let Value::Object(m) = &mut details {
        m.insert("kind".into(), json!(d.kind));
        m.insert("profile".into(), json!(d.profile_id));
    }
    AuditEntry::new(
        Some(ws.clone()),
        actor.clone(),
        action,
        Some(d.id.clone()),
        details,
    )
}

impl Engine {
    /// The oversight policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().expect("policy lock").clone()
    }

    /// Replaces the policy in force; the old one stays when `text` has errors.
    pub fn reload_policy(&self, text: &str) -> Result<usize, Vec<policy::PolicyError>> {
        let p = Policy::parse(text)?;
        let n = p.rules().len();
        *self.policy.write().expect("policy lock") = Arc::new(p);
        Ok(n)
    }

    /// Asks for an action for a customer: refused, held for approval, or carried out, and in
    /// every case recorded as a decision with its explanation.
    pub async fn request_action(
        &self,
        ws: &WorkspaceId,
        input: ActionInput,
        actor: Actor,
    ) -> Result<DecisionRecord, ActionError> {
        validate(&input)?;
        let profile = self
            .store
            .profile(ws, &input.profile)
            .await?
            .ok_or_else(|| ActionError::NotFound(format!("profile {}", input.profile)))?;
        if let Some(c) = &input.conversation {
            let detail = self
                .store
                .conversation(ws, c)
                .await?
                .filter(|d| d.conversation.profile_id == profile.id)
                .ok_or_else(|| ActionError::NotFound(format!("conversation {c}")))?;
            let _ = detail;
        }
        let now = Utc::now();
        let request = ActionRequest {
            kind: input.kind.clone(),
            params: input.params.clone(),
        };
        let mut decision = DecisionRecord {
            id: new_id(),
            profile_id: profile.id.clone(),
            kind: input.kind.clone(),
            explanation: explain(&input.kind, &input.params, &input.reasons),
            params: Value::Object(input.params),
            status: DecisionStatus::Refused,
            reasons: input.reasons,
            automated: input.automated,
            requested_by: actor.encode(),
            conversation_id: input.conversation.as_ref().map(|c| c.to_string()),
            refusal: None,
            approval: None,
            created_at: now,
            updated_at: now,
            version: 0,
        };

        // 1. A customer waiting for a person gets no automated messages.
        if input.automated && request.is_message() {
            if let Some(h) = self.store.handoff(ws, &profile.id).await? {
                if h.resolved_at.is_none() {
                    decision.refusal = Some(
                        "the customer asked for a person, so automated replies are paused".into(),
                    );
                    let entry = audit(
                        ws,
                        &actor,
                        "decision.refused",
                        &decision,
                        json!({"reason": "handoff_open"}),
                    );
                    return Ok(self
                        .store
                        .save_decision(ws, decision, None, vec![entry])
                        .await?);
                }
            }
        }

        // 2. Consent.
        let permitted = match self.permit(ws, &profile.id, request, actor.clone()).await? {
            Ok(p) => p,
            Err(refusal) => {
                decision.refusal = Some(refusal.reason.clone());
                let entry = audit(
                    ws,
                    &actor,
                    "decision.refused",
                    &decision,
                    json!({"reason": "consent", "purpose": refusal.purpose.as_str(), "standing": refusal.standing}),
                );
                return Ok(self
                    .store
                    .save_decision(ws, decision, None, vec![entry])
                    .await?);
            }
        };

        // 3. Oversight.
        let policy = self.policy();
        match clear(&policy, permitted, &profile.traits) {
            Ok(cleared) => {
                decision.status = DecisionStatus::Executed;
                let executed = self.execute(ws, cleared, &decision).await?;
                let entry = audit(
                    ws,
                    &actor,
                    "decision.executed",
                    &decision,
                    json!({"automated": decision.automated}),
                );
                let mut saved = self
                    .store
                    .save_decision(ws, decision, None, vec![entry])
                    .await?;
                if let Some(message_id) = executed {
                    saved.params["message_id"] = json!(message_id);
                }
                Ok(saved)
            }
            Err(held) => {
                let (_permitted, assessment) = *held;
                let demand = assessment.demand(now).expect("held means a demand");
                decision.status = DecisionStatus::PendingApproval;
                let notes: Vec<&str> = assessment
                    .held
                    .iter()
                    .filter_map(|h| h.note.as_deref())
                    .collect();
                let entry = audit(
                    ws,
                    &actor,
                    "decision.held",
                    &decision,
                    json!({"rules": demand.rules, "approvers_needed": demand.approvers_needed,
                           "expires_at": demand.expires_at, "notes": notes}),
                );
                decision.approval = Some(demand);
                Ok(self
                    .store
                    .save_decision(ws, decision, None, vec![entry])
                    .await?)
            }
        }
    }

    /// Carries out a cleared action. Messages go into the conversation (automated ones with
    /// the AI disclosure); other kinds are recorded as executed for the systems that perform
    /// them. Returns the id of the message sent, if any.
    async fn execute(
        &self,
        ws: &WorkspaceId,
        cleared: Cleared<ActionRequest>,
        decision: &DecisionRecord,
    ) -> Result<Option<String>, ActionError> {
        let action = cleared.permitted.into_inner();
        if !action.is_message() {
            return Ok(None);
        }
        let conversation = decision
            .conversation_id
            .as_deref()
            .and_then(ConversationId::parse)
            .ok_or_else(|| {
                ActionError::Invalid("invalid_params", "a message needs a conversation".into())
            })?;
        let text = action
            .params
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let text = MessageText::parse(text).map_err(|_| {
            ActionError::Invalid("invalid_params", "message text is not valid".into())
        })?;
        let author = if decision.automated {
            rapport_core::Author::Bot
        } else {
            rapport_core::Author::Agent
        };
        let (message, _) = self
            .add_message(
                ws,
                &conversation,
                NewMessage {
                    direction: Direction::Outbound,
                    author,
                    text,
                    sent_at: Utc::now(),
                    external_id: Some(decision.id.clone()),
                    analysis: None,
                },
            )
            .await?;
        Ok(Some(message.id.to_string()))
    }

    /// One approver's answer on a held decision. Enough approvals carry the action out (after
    /// checking consent again: it may have changed while the action waited); a rejection ends
    /// it.
    pub async fn answer_approval(
        &self,
        ws: &WorkspaceId,
        id: &str,
        approver: Actor,
        approved: bool,
        note: Option<String>,
    ) -> Result<DecisionRecord, ActionError> {
        let mut d = self
            .store
            .decision(ws, id)
            .await?
            .ok_or_else(|| ActionError::NotFound(format!("decision {id}")))?;
        if d.status != DecisionStatus::PendingApproval {
            return Err(ActionError::Conflict(
                "not_pending",
                format!(
                    "decision {id} is {}, not waiting for approval",
                    d.status.as_str()
                ),
            ));
        }
        let now = Utc::now();
        let version = d.version;
        let mut demand = d.approval.clone().ok_or_else(|| {
            StoreError::Internal(format!("pending decision {id} has no approval demand"))
        })?;
        match policy::answer(
            &mut demand,
            &d.requested_by,
            &approver.encode(),
            approved,
            note,
            now,
        ) {
            Ok(progress) => {
                d.approval = Some(demand);
                d.updated_at = now;
                let step = if approved {
                    "approval.approved"
                } else {
                    "approval.rejected"
                };
                let mut entries = vec![audit(ws, &approver, step, &d, json!({}))];
                match progress {
                    Progress::Waiting { approvals, needed } => {
                        entries[0] = audit(
                            ws,
                            &approver,
                            step,
                            &d,
                            json!({"approvals": approvals, "needed": needed}),
                        );
                    }
                    Progress::Rejected => {
                        d.status = DecisionStatus::Rejected;
                        d.refusal = Some("an approver rejected it".into());
                    }
                    Progress::Approved => {
                        let request = ActionRequest {
                            kind: d.kind.clone(),
                            params: d.params.as_object().cloned().unwrap_or_default(),
                        };
                        match self
                            .permit(ws, &d.profile_id, request, approver.clone())
                            .await?
                        {
                            Err(refusal) => {
                                d.status = DecisionStatus::Refused;
                                d.refusal = Some(refusal.reason);
                                entries.push(audit(
                                    ws,
                                    &Actor::System,
                                    "decision.refused",
                                    &d,
                                    json!({"reason": "consent"}),
                                ));
                            }
                            Ok(permitted) => {
                                let demand = d.approval.as_ref().expect("set above");
                                let cleared = clear_approved(permitted, demand)
                                    .expect("progress said approved");
                                // Claim the decision before acting, so a second approver racing
                                // this one cannot carry it out twice.
                                d.status = DecisionStatus::Executed;
                                entries.push(audit(
                                    ws,
                                    &approver,
                                    "decision.executed",
                                    &d,
                                    json!({"automated": d.automated}),
                                ));
                                let saved = self
                                    .store
                                    .save_decision(ws, d, Some(version), entries)
                                    .await?;
                                self.execute(ws, cleared, &saved).await?;
                                return Ok(saved);
                            }
                        }
                    }
                }
                Ok(self
                    .store
                    .save_decision(ws, d, Some(version), entries)
                    .await?)
            }
            Err(policy::ApprovalError::Expired(_)) => {
                self.expire(ws, d).await?;
                Err(ActionError::Conflict(
                    "approval_expired",
                    format!("decision {id} expired before it was approved"),
                ))
            }
            Err(e @ policy::ApprovalError::OwnRequest) => {
                Err(ActionError::Forbidden(e.code(), e.to_string()))
            }
            Err(e) => Err(ActionError::Conflict(e.code(), e.to_string())),
        }
    }

    async fn expire(&self, ws: &WorkspaceId, mut d: DecisionRecord) -> Result<(), StoreError> {
        let version = d.version;
        d.status = DecisionStatus::Expired;
        d.updated_at = Utc::now();
        let entry = audit(ws, &Actor::System, "decision.expired", &d, json!({}));
        match self
            .store
            .save_decision(ws, d, Some(version), vec![entry])
            .await
        {
            // Someone answered it meanwhile: their answer stands.
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Marks every held decision past its deadline as expired; returns how many.
    pub async fn expire_due(&self, ws: &WorkspaceId) -> Result<usize, StoreError> {
        let now = Utc::now();
        let pending = self
            .store
            .decisions(DecisionQuery {
                workspace: ws.clone(),
                profile: None,
                status: Some(DecisionStatus::PendingApproval),
                limit: 10_000,
            })
            .await?;
        let mut n = 0;
        for d in pending {
            if d.approval.as_ref().is_some_and(|a| a.expires_at <= now) {
                self.expire(ws, d).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Records a customer's request for a person: automated messages to them stop until an
    /// agent resolves it.
    pub async fn request_human(
        &self,
        ws: &WorkspaceId,
        profile: &ProfileId,
        conversation: Option<&ConversationId>,
        source: &str,
        actor: Actor,
    ) -> Result<Handoff, StoreError> {
        let handoff = Handoff {
            profile_id: profile.clone(),
            conversation_id: conversation.map(|c| c.to_string()),
            source: source.to_owned(),
            requested_at: Utc::now(),
            resolved_at: None,
        };
        let entry = AuditEntry::new(
            Some(ws.clone()),
            actor,
            "handoff.requested",
            Some(profile.to_string()),
            json!({"source": source, "conversation": conversation}),
        );
        self.store.save_handoff(ws, handoff, vec![entry]).await
    }

    /// An agent took over: automation may resume for this customer.
    pub async fn resolve_handoff(
        &self,
        ws: &WorkspaceId,
        profile: &ProfileId,
        actor: Actor,
    ) -> Result<Option<Handoff>, StoreError> {
        let Some(mut h) = self.store.handoff(ws, profile).await? else {
            return Ok(None);
        };
        if h.resolved_at.is_some() {
            return Ok(Some(h));
        }
        h.resolved_at = Some(Utc::now());
        let entry = AuditEntry::new(
            Some(ws.clone()),
            actor,
            "handoff.resolved",
            Some(h.profile_id.to_string()),
            json!({}),
        );
        Ok(Some(self.store.save_handoff(ws, h, vec![entry]).await?))
    }
}

/// Whether a customer's message asks for a person rather than a bot.
pub fn asks_for_human(text: &str) -> bool {
    let t = text.to_lowercase();
    const PHRASES: &[&str] = &[
        "speak to a human",
        "talk to a human",
        "speak to a person",
        "talk to a person",
        "speak to a real person",
        "talk to a real person",
        "real person",
        "real human",
        "human agent",
        "live agent",
        "speak to an agent",
        "talk to an agent",
        "speak to someone",
        "talk to someone",
        "speak with someone",
        "speak with a person",
        "speak with a human",
        "not a bot",
        "stop the bot",
        "no more bots",
        "operator please",
    ];
    PHRASES.iter().any(|p| t.contains(p)) || t.trim() == "human" || t.trim() == "agent"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(texts: &[&str]) -> Vec<Reason> {
        texts
            .iter()
            .map(|t| Reason {
                code: "c".into(),
                text: (*t).into(),
            })
            .collect()
    }

    #[test]
    fn explanations_read_as_one_sentence() {
        let params = json!({"percent": 20}).as_object().cloned().unwrap();
        assert_eq!(
            explain(
                "offer.retention",
                &params,
                &reasons(&[
                    "your contract renews in 14 days",
                    "you contacted support 3 times this month."
                ])
            ),
            "You were offered 20% off because your contract renews in 14 days and you contacted support 3 times this month."
        );
        let refund = json!({"amount": 149.5, "currency": "EUR"})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(
            explain("refund", &refund, &reasons(&["your order arrived damaged"])),
            "You were refunded 149.50 EUR because your order arrived damaged."
        );
        assert_eq!(
            explain(
                "credit",
                &json!({"amount": 10}).as_object().cloned().unwrap(),
                &reasons(&["a", "b", "c"])
            ),
            "Your account was credited 10 because a, b and c."
        );
    }

    #[test]
    fn offers_need_personalization_and_the_channel_consent() {
        let offer = ActionRequest {
            kind: "offer.retention".into(),
            params: json!({"channel": "email"}).as_object().cloned().unwrap(),
        };
        let names: Vec<String> = offer
            .purposes()
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect();
        assert_eq!(names, ["personalization", "marketing_email"]);
        let refund = ActionRequest {
            kind: "refund".into(),
            params: Map::new(),
        };
        assert!(refund.purposes().is_empty());
    }

    #[test]
    fn requests_for_a_person_are_recognised() {
        assert!(asks_for_human("Can I please talk to a real person?"));
        assert!(asks_for_human("HUMAN"));
        assert!(!asks_for_human("The human resources portal is down"));
    }
}

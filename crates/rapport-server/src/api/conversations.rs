//! Conversations: open one for a customer, append messages, read one back.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use rapport_core::time::parse_timestamp;
use rapport_core::{
    Author, ConversationChannel, ConversationId, CustomerRef, Direction, Identifier,
    IdentifierKind, MessageText, NewConversation, NewMessage, ProfileId,
};

use super::dto::{
    AddMessageRequest, ConversationDetailDto, ConversationDto, MessageDto, OpenConversationRequest,
};
use super::extract::{Json, Path};
use crate::auth::{perm, Can};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

fn when(raw: Option<&str>) -> ApiResult<chrono::DateTime<Utc>> {
    match raw {
        None => Ok(Utc::now()),
        Some(t) => parse_timestamp(t).ok_or_else(|| {
            ApiError::invalid(
                "invalid_timestamp",
                format!("timestamp {t:?} is not ISO 8601"),
            )
        }),
    }
}

impl TryFrom<OpenConversationRequest> for (CustomerRef, NewConversation) {
    type Error = ApiError;

    fn try_from(req: OpenConversationRequest) -> ApiResult<Self> {
        let invalid = |m: String| ApiError::invalid("invalid_field", m);
        let named: Vec<(&str, &String)> = [
            ("profileId", &req.profile_id),
            ("userId", &req.user_id),
            ("email", &req.email),
            ("anonymousId", &req.anonymous_id),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let customer = match named.as_slice() {
            [("profileId", v)] => CustomerRef::Profile(
                ProfileId::parse(v).ok_or_else(|| ApiError::not_found(format!("profile {v}")))?,
            ),
            [(field, v)] => {
                let kind = match *field {
                    "userId" => IdentifierKind::UserId,
                    "email" => IdentifierKind::Email,
                    _ => IdentifierKind::AnonymousId,
                };
                CustomerRef::Identifier(
                    Identifier::new(kind, v).map_err(|e| invalid(format!("{field}: {e}")))?,
                )
            }
            [] => {
                return Err(ApiError::invalid(
                    "missing_identity",
                    "name the customer by profileId, userId, email or anonymousId",
                ))
            }
            _ => {
                return Err(invalid(
                    "name the customer by exactly one of profileId, userId, email or anonymousId"
                        .into(),
                ))
            }
        };
        let channel = ConversationChannel::parse(&req.channel).ok_or_else(|| {
            invalid(format!(
                "channel {:?} is not one of chat, email, voice, sms, social",
                req.channel
            ))
        })?;
        let subject = req
            .subject
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if subject.as_ref().is_some_and(|s| s.chars().count() > 500) {
            return Err(invalid("subject is longer than 500 characters".into()));
        }
        Ok((
            customer,
            NewConversation {
                channel,
                subject,
                opened_at: when(req.timestamp.as_deref())?,
            },
        ))
    }
}

impl TryFrom<AddMessageRequest> for NewMessage {
    type Error = ApiError;

    fn try_from(req: AddMessageRequest) -> ApiResult<Self> {
        let invalid = |m: String| ApiError::invalid("invalid_field", m);
        let direction = Direction::parse(&req.direction).ok_or_else(|| {
            invalid(format!(
                "direction {:?} is not inbound or outbound",
                req.direction
            ))
        })?;
        let author = Author::parse(&req.author).ok_or_else(|| {
            invalid(format!(
                "author {:?} is not customer, agent or bot",
                req.author
            ))
        })?;
        let text = MessageText::parse(&req.text).map_err(invalid)?;
        if let Some(id) = &req.message_id {
            if id.trim().is_empty() || id.chars().count() > 256 {
                return Err(invalid("messageId must be 1 to 256 characters".into()));
            }
        }
        Ok(NewMessage {
            direction,
            author,
            text,
            sent_at: when(req.timestamp.as_deref())?,
            external_id: req.message_id,
            analysis: None,
        })
    }
}

/// Opens a conversation with a customer on a channel.
#[utoipa::path(post, path = "/v1/conversations", tag = "conversations", request_body = OpenConversationRequest,
    responses((status = 201, body = ConversationDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn open(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::Ingest>,
    Json(req): Json<OpenConversationRequest>,
) -> ApiResult<(StatusCode, axum::Json<ConversationDto>)> {
    let (customer, new) = req.try_into()?;
    // Emails and phones are looked up as the identity stage stores them.
    let customer = match customer {
        CustomerRef::Identifier(i) => CustomerRef::Identifier(
            state
                .engine
                .identifier(i.kind(), i.value())
                .map_err(|e| ApiError::invalid("invalid_field", e))?,
        ),
        other => other,
    };
    let conv = state
        .store
        .open_conversation(&caller.workspace_id, customer, new)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(conv.into())))
}

fn conversation_id(raw: &str) -> ApiResult<ConversationId> {
    ConversationId::parse(raw).ok_or_else(|| ApiError::not_found(format!("conversation {raw}")))
}

/// Appends a message. Answers 201 when stored, 200 when its messageId was already stored.
#[utoipa::path(post, path = "/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")), request_body = AddMessageRequest,
    responses((status = 201, body = MessageDto), (status = 200, body = MessageDto, description = "Repeated messageId"),
               (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn add_message(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::Ingest>,
    Path(id): Path<String>,
    Json(req): Json<AddMessageRequest>,
) -> ApiResult<(StatusCode, axum::Json<MessageDto>)> {
    let id = conversation_id(&id)?;
    let msg: NewMessage = req.try_into()?;
    if msg.author == Author::Bot && msg.direction == rapport_core::Direction::Outbound {
        // A customer waiting for a person gets no more automated replies.
        if let Some(detail) = state.store.conversation(&caller.workspace_id, &id).await? {
            let profile = detail.conversation.profile_id;
            if super::actions::automation_paused(&state, &caller.workspace_id, &profile).await? {
                return Err(super::actions::paused_error());
            }
        }
    }
    let (stored, created) = state
        .engine
        .add_message(&caller.workspace_id, &id, msg)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(stored.into())))
}

/// A conversation with its messages in order.
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = ConversationDetailDto), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn get_conversation(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ConversationDetailDto>> {
    let id = conversation_id(&id)?;
    let detail = state
        .store
        .conversation(&caller.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("conversation {id}")))?;
    let analysis = state
        .engine
        .conversation_analysis(&detail.messages)
        .and_then(|a| serde_json::to_value(a).ok());
    Ok(axum::Json(ConversationDetailDto {
        conversation: detail.conversation.into(),
        messages: detail.messages.into_iter().map(Into::into).collect(),
        analysis,
    }))
}

//! The OpenAPI document, generated from the handlers' annotations. A test checks that the
//! committed `openapi.json` at the repository root matches it.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{
    actions, alerts, analyze, conversations, dead_letters, dto, fairness, governance, ingest,
    intents, nba, profiles, routing, users,
};
use crate::api::{dedupe, matching, models};
use crate::error::{ErrorBody, ItemErrorBody};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Rapport API", description = "Segment-compatible ingestion, unified customer profiles and conversations. Authenticate with your key as the Basic-auth user name (as Segment's libraries do) or as a Bearer token. Write keys can only send data; admin keys can also read."),
    paths(
        ingest::identify, ingest::track, ingest::page, ingest::screen, ingest::group, ingest::alias, ingest::batch,
        profiles::lookup, profiles::search, profiles::get_profile, profiles::events, profiles::conversations, profiles::merges, profiles::stats,
        conversations::open, conversations::add_message, conversations::get_conversation,
        governance::get_consents, governance::put_consents, governance::export, governance::erase, governance::audit,
        crate::why::issue_link, fairness::audit, analyze::analyze,
        dead_letters::list, dead_letters::replay, dead_letters::discard,
        actions::request, actions::list, actions::get, actions::of_profile, actions::approve, actions::reject,
        actions::get_policy, actions::reload_policy, actions::handoffs, actions::open_handoff, actions::resolve_handoff,
        users::create, users::list, users::update, users::set_password,
        alerts::list, alerts::acknowledge, alerts::scheduled, alerts::run,
        matching::match_record,
        profiles::unmerge,
        dedupe::run, dedupe::list, dedupe::show, dedupe::merge, dedupe::reject,
        routing::list_queues, routing::create_queue, routing::queue_entries, routing::list_agents,
        routing::create_agent, routing::update_agent, routing::accept, routing::finish,
        nba::next_best_action, nba::outcome, nba::reload_catalog,
        models::profile_features, models::train, models::versions, models::activate,
        intents::correct, intents::corrections, intents::models, intents::retrain, intents::activate,
    ),
    components(schemas(ErrorBody, ItemErrorBody, dto::IngestResponse, dto::ProfileDto, dto::DataQualityDto, dto::MergeDto, dto::MergeListDto, dto::IdentityDto,
        dto::ProfileSummaryDto, dto::ProfileListDto, dto::EventDto, dto::EventPageDto, dto::ConversationDto,
        dto::ConversationListDto, dto::MessageDto, dto::ConversationDetailDto, dto::OpenConversationRequest,
        dto::AddMessageRequest, dto::StatsDto, dto::ChannelCountDto,
        governance::ConsentItem, governance::ConsentRequest, governance::ConsentStateDto, governance::ConsentRecordDto,
        governance::ConsentsDto, governance::ErasureDto, governance::AuditRecordDto, governance::AuditPageDto,
        crate::why::WhyLinkRequest, crate::why::WhyLinkDto, fairness::FairnessRequest,
        analyze::AnalyzeItem, analyze::AnalyzeRequest,
        dead_letters::DeadLetterDto, dead_letters::DeadLetterListDto, dead_letters::ReplayDto,
        actions::ReasonDto, actions::ActionRequestDto, actions::ApprovalStepDto, actions::ApprovalDto, actions::DecisionDto,
        actions::DecisionListDto, actions::ApprovalRequest, actions::PolicyRuleDto, actions::PolicyDto,
        actions::HandoffDto, actions::HandoffListDto,
        users::CreateUserRequest, users::UserDto, users::UserListDto, users::UpdateUserRequest,
        users::SetPasswordRequest,
        alerts::AlertDto, alerts::AlertListDto, alerts::ScheduledAuditDto,
        matching::MatchRequest, matching::MatchFieldDto, matching::MatchCandidateDto, matching::MatchResponseDto,
        dto::UnmergeDto, dto::UnmergeResultDto,
        dedupe::DedupeRequest, crate::dedupe::DedupeReport, crate::dedupe::DedupeAction,
        dedupe::ReviewPairDto, dedupe::ReviewListDto, dedupe::ReviewDetailDto, dedupe::ReviewDecisionDto,
        routing::QueueDto, routing::QueueListDto, routing::CreateQueueRequest, routing::PartDto, routing::StepDto,
        routing::EntryDto, routing::QueueEntriesDto, routing::AgentDto, routing::AgentListDto,
        routing::CreateAgentRequest, routing::UpdateAgentRequest, routing::AgentStepRequest,
        nba::NbaRequestDto, nba::NbaResponseDto, nba::RankedActionDto, nba::FilteredActionDto, nba::PriorityPartsDto,
        nba::AppliedWeightDto, nba::RuleCheckDto, nba::MissingValueDto, nba::OutcomeRequestDto, nba::OutcomeDto,
        nba::PropensityDto, nba::CatalogReloadDto, models::TrainRequest,
        intents::IntentCorrectionRequest, intents::IntentCorrectionDto, intents::IntentModelDto,
        intents::IntentModelsDto, intents::RetrainDto, intents::RetrainRequest, intents::ActiveModelDto)),
    modifiers(&Security),
    tags((name = "ingest", description = "Segment-compatible event collection"),
         (name = "profiles", description = "Unified customer profiles"),
         (name = "identity", description = "Probabilistic dedupe of stored profiles and its review queue"),
         (name = "conversations", description = "Conversations and their messages"),
         (name = "governance", description = "Consent, data export and erasure, audit trail"),
         (name = "decisions", description = "Actions, decisions and their explanations, the approval queue, requests for a person"),
         (name = "prediction", description = "Customers' features kept current, churn models trained on the workspace's data, their versions"),
         (name = "intents", description = "Agents' corrections of intents, and the workspace's intent model versions: retrain, roll back"),
         (name = "routing", description = "Queues, agents, and conversations routed to agents by priority, with the reasons"),
         (name = "operations", description = "Running Rapport: events the workers could not apply")),
)]
pub struct ApiDoc;

/// The document as pretty JSON with a trailing newline, as committed.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut text = doc
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

pub async fn serve() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
}

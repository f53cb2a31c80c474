//! `POST /v1/analyze`: reads a batch of texts without storing anything.

use axum::extract::State;
use rapport_core::ErrorKind;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::extract::Json;
use crate::auth::{perm, Can};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

/// Texts per request.
pub const MAX_TEXTS: usize = 100;
/// Characters analysed per text; longer texts are cut and flagged `truncated`.
pub const MAX_CHARS: usize = 20_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeItem {
    /// Your id, echoed back.
    #[schema(value_type = Option<Object>)]
    pub id: Option<Value>,
    pub text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    /// 1 to 100 texts.
    pub texts: Vec<AnalyzeItem>,
}

/// Analyses texts as the pipeline does each customer message: language, sentiment (message and
/// sentences), emotions, effort, urgency, intent, personal data with a redacted copy, and the
/// evidence, with the model name and version. Nothing is stored.
#[utoipa::path(post, path = "/v1/analyze", tag = "conversations",
    request_body = AnalyzeRequest,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn analyze(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Json(req): Json<AnalyzeRequest>,
) -> ApiResult<axum::Json<Value>> {
    if req.texts.is_empty() || req.texts.len() > MAX_TEXTS {
        return Err(ApiError::invalid(
            "invalid_body",
            format!("texts must hold 1 to {MAX_TEXTS} items"),
        ));
    }
    let interpreter = state.engine.interpreter_for(&caller.workspace_id).await;
    let results = tokio::task::spawn_blocking(move || {
        let cuts: Vec<(&str, bool)> = req
            .texts
            .iter()
            .map(|item| rapport_interpret::truncate_chars(&item.text, MAX_CHARS))
            .collect();
        // One call for the whole batch: the neural path embeds the texts together.
        let texts: Vec<&str> = cuts.iter().map(|(t, _)| *t).collect();
        let analyses = interpreter.analyze_batch(&texts);
        req.texts
            .iter()
            .zip(&cuts)
            .zip(analyses)
            .enumerate()
            .map(|(i, ((item, &(_, truncated)), analysis))| {
                let mut v = serde_json::to_value(analysis).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("id".into(), item.id.clone().unwrap_or(json!(i)));
                    m.insert("truncated".into(), Value::Bool(truncated));
                }
                v
            })
            .collect::<Vec<Value>>()
    })
    .await
    .map_err(|e| {
        ApiError::new(
            ErrorKind::Internal,
            "internal",
            format!("analysis failed: {e}"),
        )
    })?;
    Ok(axum::Json(json!({ "results": results })))
}

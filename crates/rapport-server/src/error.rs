//! The one place where failures become HTTP responses: `{code, message}` JSON with a stable
//! code, the status decided by an exhaustive match on [`ErrorKind`]. Internal details are
//! logged, never returned.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rapport_core::error::{Coded, ErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, snake_case; match on this, not on the message.
    pub code: String,
    /// For people; may change between versions.
    pub message: String,
    /// For a refused batch or import: each failing event's index, code and message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ItemErrorBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemErrorBody {
    pub index: usize,
    pub code: String,
    pub message: String,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    pub errors: Vec<ItemErrorBody>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, code, message)
    }

    /// A failure of ours; the detail is logged, never returned.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "internal", detail)
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// Converts any layer's coded error.
    pub fn from_coded<E: Coded + std::fmt::Display>(e: &E) -> Self {
        Self::new(e.kind(), e.code(), e.to_string())
    }
}

impl From<rapport_store::StoreError> for ApiError {
    fn from(e: rapport_store::StoreError) -> Self {
        Self::from_coded(&e)
    }
}

impl From<crate::sink::SinkError> for ApiError {
    fn from(e: crate::sink::SinkError) -> Self {
        Self::from_coded(&e)
    }
}

impl From<rapport_bus::BusError> for ApiError {
    fn from(e: rapport_bus::BusError) -> Self {
        Self::from_coded(&e)
    }
}

impl From<rapport_ingest::IngestError> for ApiError {
    fn from(e: rapport_ingest::IngestError) -> Self {
        let mut api = Self::from_coded(&e);
        api.errors = e
            .items()
            .iter()
            .map(|i| ItemErrorBody {
                index: i.index,
                code: i.code.to_owned(),
                message: i.message.clone(),
            })
            .collect();
        api
    }
}

/// Seconds a client is told to wait (`Retry-After`) before retrying a 503. Short: the usual
/// cause is a broker or database restarting, and retries with the same `messageId` are safe.
pub const RETRY_AFTER_SECS: u64 = 2;

/// The HTTP status of each kind. Exhaustive on purpose: a new kind must be placed here.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::ConsentRequired => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.kind);
        let message = match self.kind {
            ErrorKind::Internal | ErrorKind::Unavailable => {
                tracing::error!(code = self.code, detail = %self.message, "request failed");
                if self.kind == ErrorKind::Internal {
                    "internal error; see the server log".to_owned()
                } else {
                    "temporarily unavailable; retry later".to_owned()
                }
            }
            _ => self.message,
        };
        let mut resp = (
            status,
            Json(ErrorBody {
                code: self.code.to_owned(),
                message,
                errors: self.errors,
            }),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(RETRY_AFTER_SECS),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"rapport\""),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

//! The REST API of docs/protocol.md on axum, plus `/healthz`, `/readyz`, `/metrics`
//! and `/media/*`. Handlers parse, call [`Logic`] and shape the JSON; every
//! error leaves through [`ApiError`], the one place where logic errors become
//! HTTP statuses and `{"error":{"code","message"}}` bodies. Every route is
//! registered from its handler's `#[utoipa::path]`, which also makes it part
//! of the OpenAPI document (`openapi.rs`).

mod accounts;
mod admin_users;
mod changes;
mod conversations;
mod devices;
mod extract;
mod friends;
mod group_admin;
mod groups;
mod limits;
mod openapi;
mod ops;
mod search;
mod web;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use gochat_proto::frames::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Logic, LogicError, SendQueue, message_frame};
pub use extract::AuthUser;
use gochat_proto::frames::MessageFrame;
pub use limits::AbuseLimits;
pub use ops::Readiness;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    /// The service.
    pub logic: Arc<Logic>,
    /// The process's one send path (`POST /messages` joins its group commits).
    pub sends: SendQueue,
    /// Dependency checks for `/readyz`.
    pub readiness: Arc<Readiness>,
    /// Where the web client connects (see [`crate::config::HttpConfig`]).
    pub public_ws_url: Arc<str>,
    /// Logins, registrations and calls per user (see [`AbuseLimits`]).
    pub limits: Arc<AbuseLimits>,
}

/// An error as the client sees it: the protocol code, whether the same
/// request may succeed later (a dependency is down: 503, so load balancers
/// and clients retry), and a message without internals.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    retryable: bool,
    message: String,
    /// Seconds a 429 or 503 tells the client to wait (default 1).
    retry_after: Option<u64>,
}

impl ApiError {
    /// A refusal with a code and a message (never retryable).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            retryable: false,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429 `rate_limited`: come back after `wait` (rounded up to seconds).
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self {
            retry_after: Some(secs.max(1)),
            ..Self::new(ErrorCode::RateLimited, "too many requests; slow down")
        }
    }

    /// What `Retry-After` will say, in seconds.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.unwrap_or(1)
    }
}

impl From<LogicError> for ApiError {
    fn from(e: LogicError) -> Self {
        // A dependency that is down is the operator's news once per cause,
        // not an error per request: warn; a bug or local failure is an error.
        if e.code() == ErrorCode::Internal && e.is_retryable() {
            tracing::warn!(error = %e, "request failed; a dependency is unavailable");
        } else if e.code() == ErrorCode::Internal {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "request failed");
        }
        Self {
            code: e.code(),
            retryable: e.is_retryable(),
            message: e.public_message(),
            retry_after: None,
        }
    }
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The protocol error code (docs/protocol.md §2.1): `bad_request`,
    /// `unauthorized`, `forbidden`, `not_found`, `conflict`, `too_large`,
    /// `rate_limited`, `internal` or (503, a saturated send path)
    /// `overloaded`.
    #[schema(value_type = String, example = "not_found")]
    code: ErrorCode,
    /// For people, not for matching: the wording may change.
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = if self.retryable {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::from_u16(self.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        };
        let retry_after = self.retry_after_secs();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        // Both mean "come back later": say when (seconds), as RFC 9110 allows.
        if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after),
            );
        }
        response
    }
}

/// A stored message as clients get it from the REST API: its upload links
/// (an image's or file's content, `…url` metadata) signed afresh, so that
/// history keeps working past a link's lifetime.
pub(super) fn frame_of(logic: &Logic, m: &crate::repo::StoredMessage) -> MessageFrame {
    let mut frame = message_frame(m);
    if frame.content.starts_with("/media/") {
        frame.content = logic.media_url(&frame.content);
    }
    if let Some(metadata) = frame.metadata.as_object_mut() {
        for value in metadata.values_mut() {
            if let Some(url) = value.as_str().filter(|u| u.starts_with("/media/")) {
                *value = serde_json::Value::String(logic.media_url(url));
            }
        }
    }
    frame
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

/// Health, readiness and metrics only: the HTTP face of a process without logic.
pub fn ops_router(readiness: Arc<Readiness>) -> Router {
    // The recorder must exist before the first metric is recorded, not at
    // the first scrape: whatever is recorded before it is lost.
    ops::prometheus();
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", {
            let readiness = readiness.clone();
            get(move || ops::readyz_of(readiness.clone()))
        })
        .route("/metrics", get(move || ops::metrics_of(readiness.clone())))
}

/// The whole HTTP surface of the logic service, and its OpenAPI document
/// at `/api/v1/openapi.json`. One `routes!` per path: the macro reads the path
/// from the handlers' annotations, and every handler of a call must share it.
pub fn router(state: ApiState, max_body_bytes: usize, max_upload_bytes: usize) -> Router {
    // Installed now, not at the first scrape (see `ops_router`).
    ops::prometheus();
    let api = OpenApiRouter::new()
        .routes(routes!(accounts::register))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::me, accounts::update_me))
        .routes(routes!(accounts::search_users))
        .routes(routes!(accounts::get_user))
        .routes(routes!(friends::add_friend, friends::list_friends))
        .routes(routes!(friends::remove_friend))
        .routes(routes!(friends::list_requests))
        .routes(routes!(devices::register))
        .routes(routes!(devices::remove))
        .routes(routes!(friends::accept_request))
        .routes(routes!(friends::reject_request))
        .routes(routes!(friends::add_block, friends::list_blocks))
        .routes(routes!(friends::remove_block))
        .routes(routes!(groups::create, groups::list))
        .routes(routes!(groups::get, groups::update, group_admin::dissolve))
        .routes(routes!(groups::invite, groups::members))
        .routes(routes!(groups::join))
        .routes(routes!(groups::remove_member))
        .routes(routes!(group_admin::set_role))
        .routes(routes!(group_admin::transfer))
        .routes(routes!(group_admin::mute, group_admin::unmute))
        .routes(routes!(group_admin::join_requests))
        .routes(routes!(group_admin::accept_join))
        .routes(routes!(group_admin::reject_join))
        .routes(routes!(conversations::list))
        .routes(routes!(conversations::history))
        .routes(routes!(conversations::read))
        .routes(routes!(conversations::mentions))
        .routes(routes!(conversations::send))
        .routes(routes!(changes::edit, changes::delete_for_me))
        .routes(routes!(changes::recall))
        .routes(routes!(conversations::reads))
        .routes(routes!(conversations::settings))
        .routes(routes!(search::search_messages))
        .routes(routes!(ops::admin_push))
        .routes(routes!(admin_users::create_users))
        .routes(routes!(web::client_config))
        .routes(routes!(openapi::document))
        .layer(DefaultBodyLimit::max(max_body_bytes));
    let uploads = OpenApiRouter::new()
        .routes(routes!(ops::upload))
        .layer(DefaultBodyLimit::max(max_upload_bytes));
    let (routes, doc) = OpenApiRouter::with_openapi(openapi::base())
        .nest("/api/v1", api.merge(uploads))
        .routes(routes!(ops::media))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .split_for_parts();
    routes
        .fallback(web::asset)
        .layer(Extension(Arc::new(openapi::finish(doc))))
        .layer(axum::middleware::from_fn(ops::count_requests))
        .with_state(state)
}

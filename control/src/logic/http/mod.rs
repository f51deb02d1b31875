//! The REST API of docs/protocol.md on axum, plus `/healthz`, `/readyz`, `/metrics`
//! and `/media/*`. Handlers parse, call [`Logic`] and shape the JSON; every
//! error leaves through [`ApiError`], the one place where logic errors become
//! HTTP statuses and `{"error":{"code","message"}}` bodies.

mod accounts;
mod conversations;
mod extract;
mod groups;
mod ops;
mod web;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use gochat_proto::frames::ErrorCode;
use serde_json::json;

use super::{Logic, LogicError};
pub use extract::AuthUser;
pub use ops::Readiness;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    /// The service.
    pub logic: Arc<Logic>,
    /// Dependency checks for `/readyz`.
    pub readiness: Arc<Readiness>,
    /// Where the web client connects (see [`crate::config::HttpConfig`]).
    pub public_ws_url: Arc<str>,
}

/// An error as the client sees it: the protocol code, whether the same
/// request may succeed later (a dependency is down: 503, so load balancers
/// and clients retry), and a message without internals.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    retryable: bool,
    message: String,
}

impl ApiError {
    /// A refusal with a code and a message (never retryable).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            retryable: false,
            message: message.into(),
        }
    }
}

impl From<LogicError> for ApiError {
    fn from(e: LogicError) -> Self {
        if e.code() == ErrorCode::Internal {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "request failed");
        }
        Self {
            code: e.code(),
            retryable: e.is_retryable(),
            message: e.public_message(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = if self.retryable {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::from_u16(self.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        };
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (status, axum::Json(body)).into_response()
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

/// Health, readiness and metrics only: the HTTP face of a process without logic.
pub fn ops_router(readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(move || ops::readyz_of(readiness.clone())))
        .route("/metrics", get(ops::metrics))
}

/// The whole HTTP surface of the logic service.
pub fn router(state: ApiState, max_body_bytes: usize, max_upload_bytes: usize) -> Router {
    let api = Router::new()
        .route("/auth/register", post(accounts::register))
        .route("/auth/login", post(accounts::login))
        .route("/auth/logout", post(accounts::logout))
        .route("/users/me", get(accounts::me).patch(accounts::update_me))
        .route("/users", get(accounts::search_users))
        .route("/users/{user_id}", get(accounts::get_user))
        .route(
            "/friends",
            post(accounts::add_friend).get(accounts::list_friends),
        )
        .route("/friends/{user_id}", delete(accounts::remove_friend))
        .route("/blocks", post(accounts::add_block))
        .route("/blocks/{user_id}", delete(accounts::remove_block))
        .route("/groups", post(groups::create).get(groups::list))
        .route("/groups/{group_id}", get(groups::get).patch(groups::update))
        .route(
            "/groups/{group_id}/members",
            post(groups::invite).get(groups::members),
        )
        .route("/groups/{group_id}/join", post(groups::join))
        .route(
            "/groups/{group_id}/members/{user_id}",
            delete(groups::remove_member),
        )
        .route("/conversations", get(conversations::list))
        .route("/conversations/{cid}/messages", get(conversations::history))
        .route("/conversations/{cid}/read", post(conversations::read))
        .route("/mentions", get(conversations::mentions))
        .route("/messages", post(conversations::send))
        .route("/admin/push", post(ops::admin_push))
        .route("/client/config", get(web::client_config))
        .layer(DefaultBodyLimit::max(max_body_bytes));
    let uploads = Router::new()
        .route("/uploads", post(ops::upload))
        .layer(DefaultBodyLimit::max(max_upload_bytes));
    Router::new()
        .nest("/api/v1", api.merge(uploads))
        .route("/media/{name}", get(ops::media))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(web::asset)
        .layer(axum::middleware::from_fn(ops::count_requests))
        .with_state(state)
}

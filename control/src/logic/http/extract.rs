//! Extractors that turn bad input into protocol errors instead of axum's
//! plain-text rejections: JSON bodies ([`ApiJson`]), ids in paths ([`parse_id`])
//! and the bearer token ([`AuthUser`]).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use gochat_proto::frames::ErrorCode;
use gochat_proto::ids::Id;
use serde::de::DeserializeOwned;

use super::{ApiError, ApiState};
use crate::logic::auth::Claims;

/// A JSON body; malformed, mistyped or unknown-field bodies are 400, oversized 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ApiState> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &ApiState) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_error(&rejection)),
        }
    }
}

fn json_error(rejection: &JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(ErrorCode::TooLarge, "request body is too large");
    }
    ApiError::new(ErrorCode::BadRequest, rejection.body_text())
}

/// An id from a path segment.
pub fn parse_id(raw: &str, what: &str) -> Result<Id, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("{what} must be a decimal id"),
        )
    })
}

/// The client's address for the per-address limits (`None` when the
/// request did not come through the listener, as in tests that call the
/// router directly).
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl FromRequestParts<ApiState> for ClientAddr {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        Ok(ClientAddr(state.limits.client_address(parts)))
    }
}

/// The caller, from `Authorization: Bearer <token>`: signature, expiry,
/// revocation and the per-user budget checked.
pub struct AuthUser {
    /// Who.
    pub id: Id,
    /// The token's claims (for logout).
    pub claims: Claims,
}

impl FromRequestParts<ApiState> for AuthUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let unauthorized = |m: &str| ApiError::new(ErrorCode::Unauthorized, m);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("missing bearer token"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| unauthorized("missing bearer token"))?;
        let (id, claims) = state.logic.authenticate(token.trim()).await?;
        // Every authenticated call spends from the user's budget.
        state.limits.check_user(id.0)?;
        Ok(AuthUser { id, claims })
    }
}

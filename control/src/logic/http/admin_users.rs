//! `POST /admin/users`: accounts created in bulk by an operator (PROTOCOL
//! v1.1 §6.5), for migrations and load tests that must not run into the
//! registration limits.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gochat_proto::ids::Id;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, AuthUser};
use super::{ApiResult, ApiState, ErrorBody};
use crate::logic::NewAccount;

/// One account to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkAccount {
    /// 3 to 32 letters, digits, `_`, `.` or `-`.
    username: String,
    /// 8 to 128 bytes.
    password: String,
    #[serde(default)]
    nickname: String,
}

/// The accounts, at most 1,000.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkUsers {
    users: Vec<BulkAccount>,
}

/// The new ids, in the order the accounts were given.
#[derive(Serialize, ToSchema)]
pub struct BulkCreated {
    #[schema(value_type = Vec<String>)]
    user_ids: Vec<Id>,
}

#[utoipa::path(
    post,
    path = "/admin/users",
    tag = "admin",
    operation_id = "create_users",
    security(("bearer" = [])),
    request_body = BulkUsers,
    responses(
        (status = 201, description = "All created, ids in order", body = BulkCreated),
        (status = 400, description = "No accounts, more than 1,000, a field out of the rules, or a username given twice", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
        (status = 409, description = "A username is taken: none was created", body = ErrorBody),
    )
)]
pub async fn create_users(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<BulkUsers>,
) -> ApiResult<(StatusCode, Json<BulkCreated>)> {
    let accounts = body
        .users
        .into_iter()
        .map(|a| NewAccount {
            username: a.username,
            password: a.password,
            nickname: a.nickname,
        })
        .collect();
    let created = s.logic.create_users(user.id, accounts).await?;
    Ok((
        StatusCode::CREATED,
        Json(BulkCreated {
            user_ids: created.into_iter().map(|u| Id(u.user_id)).collect(),
        }),
    ))
}

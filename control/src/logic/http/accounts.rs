//! Accounts, profiles, friends and blocks over REST: parse, call
//! [`Logic`](crate::logic::Logic), shape the JSON. The rules are in
//! `logic/accounts.rs`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use gochat_proto::ids::Id;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, AuthUser, ClientAddr, parse_id};
use super::{ApiResult, ApiState, ErrorBody};
use crate::logic::Logic;
use crate::logic::{FriendPolicy, LogicError, NewAccount, ProfilePatch, UserProfile};
use crate::repo::User;

/// A profile as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    #[schema(value_type = String)]
    user_id: Id,
    username: String,
    nickname: String,
    avatar_url: String,
    /// Connected now (only on `GET /users/{user_id}`: the 1:1 header's dot).
    #[serde(skip_serializing_if = "Option::is_none")]
    online: Option<bool>,
    /// When their last connection closed, ms (on `GET /users/{user_id}`
    /// when offline and seen before).
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen: Option<i64>,
    /// Who may befriend them: `approve`, `open` or `closed` (only in the
    /// caller's own profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    friend_policy: Option<&'static str>,
}

impl From<User> for Profile {
    fn from(u: User) -> Self {
        Self {
            user_id: Id(u.user_id),
            username: u.username,
            nickname: u.nickname,
            avatar_url: u.avatar_url,
            online: None,
            last_seen: None,
            friend_policy: None,
        }
    }
}

impl From<UserProfile> for Profile {
    fn from(p: UserProfile) -> Self {
        let last_seen =
            (p.online == Some(false) && p.user.last_seen > 0).then_some(p.user.last_seen);
        Self {
            online: p.online,
            last_seen,
            ..p.user.into()
        }
    }
}

impl Profile {
    /// With the avatar's upload link signed afresh.
    pub(super) fn signed(mut self, logic: &Logic) -> Self {
        self.avatar_url = logic.media_url(&self.avatar_url);
        self
    }
}

pub(super) fn profiles(logic: &Logic, users: Vec<User>) -> Vec<Profile> {
    users
        .into_iter()
        .map(|u| Profile::from(u).signed(logic))
        .collect()
}

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// 3 to 32 letters, digits, `_`, `.` or `-`.
    username: String,
    /// 8 to 128 bytes.
    password: String,
    /// At most 50 characters; empty when absent.
    #[serde(default)]
    nickname: Option<String>,
}

/// The account just made.
#[derive(Serialize, ToSchema)]
pub struct Registered {
    #[schema(value_type = String)]
    user_id: Id,
    username: String,
    nickname: String,
}

#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "accounts",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "Registered", body = Registered),
        (status = 400, description = "A username, password or nickname out of the rules", body = ErrorBody),
        (status = 409, description = "The username is taken", body = ErrorBody),
        (status = 429, description = "Too many registrations from the client's address, or password hashing saturated; retry after `Retry-After` seconds", body = ErrorBody),
    )
)]
pub async fn register(
    State(s): State<ApiState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<Registered>)> {
    s.limits.check_registration(client)?;
    let user = s
        .logic
        .register(NewAccount {
            username: body.username,
            password: body.password,
            nickname: body.nickname.unwrap_or_default(),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            user_id: Id(user.user_id),
            username: user.username,
            nickname: user.nickname,
        }),
    ))
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
    /// The device the token is for, 1 to 64 characters (default `"default"`).
    #[serde(default)]
    device_id: Option<String>,
}

/// A bearer token.
#[derive(Serialize, ToSchema)]
pub struct LoggedIn {
    /// Opaque; send as `Authorization: Bearer <token>`.
    token: String,
    #[schema(value_type = String)]
    user_id: Id,
    /// When the token expires, ms since the epoch.
    expires_at: i64,
}

#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "accounts",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = LoggedIn),
        (status = 400, description = "A bad device_id", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 429, description = "Too many logins from the client's address, too many failed logins of the username, or password checks saturated; retry after `Retry-After` seconds", body = ErrorBody),
    )
)]
pub async fn login(
    State(s): State<ApiState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<LoggedIn>> {
    s.limits.check_login(client, &body.username)?;
    let _turn = s.limits.login_turn(&body.username).await?;
    let session = match s
        .logic
        .login(&body.username, body.password, body.device_id)
        .await
    {
        Err(LogicError::Unauthorized(reason)) => {
            s.limits.login_failed(&body.username);
            return Err(LogicError::Unauthorized(reason).into());
        }
        other => other?,
    };
    Ok(Json(LoggedIn {
        token: session.token,
        user_id: session.user_id,
        expires_at: session.expires_at,
    }))
}

#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "accounts",
    security(("bearer" = [])),
    responses((status = 204, description = "The calling token is revoked; the WebSocket connections it opened get a `kick` (\"logged out\") and are closed"))
)]
pub async fn logout(State(s): State<ApiState>, user: AuthUser) -> ApiResult<StatusCode> {
    s.logic.logout(&user.claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/users/me",
    tag = "accounts",
    operation_id = "get_me",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's profile", body = Profile))
)]
pub async fn me(State(s): State<ApiState>, user: AuthUser) -> ApiResult<Json<Profile>> {
    Ok(Json(
        own_profile(s.logic.my_profile(user.id).await?).signed(&s.logic),
    ))
}

/// The caller's own profile: the public one with their friend policy.
fn own_profile(me: User) -> Profile {
    let policy = FriendPolicy::from_code(me.friend_policy);
    Profile {
        friend_policy: Some(policy.as_str()),
        ..me.into()
    }
}

/// Profile fields to change; absent ones stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    /// At most 50 characters, no control characters.
    #[serde(default)]
    nickname: Option<String>,
    /// Empty, an http(s) URL or a path starting with `/`; at most 255 bytes.
    #[serde(default)]
    avatar_url: Option<String>,
    /// `approve`, `open` or `closed` (PROTOCOL v1.1 "Friends with consent").
    #[serde(default)]
    friend_policy: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/users/me",
    tag = "accounts",
    operation_id = "update_me",
    security(("bearer" = [])),
    request_body = ProfileBody,
    responses(
        (status = 200, description = "The updated profile", body = Profile),
        (status = 400, description = "A nickname, avatar_url or friend_policy out of the rules", body = ErrorBody),
    )
)]
pub async fn update_me(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<ProfileBody>,
) -> ApiResult<Json<Profile>> {
    let policy = body
        .friend_policy
        .as_deref()
        .map(FriendPolicy::parse)
        .transpose()?;
    let patch = ProfilePatch {
        nickname: body.nickname,
        avatar_url: body.avatar_url,
        friend_policy: policy,
    };
    let me = s.logic.update_profile(user.id, patch).await?;
    Ok(Json(own_profile(me).signed(&s.logic)))
}

/// Users found by a search.
#[derive(Serialize, ToSchema)]
pub struct Users {
    users: Vec<Profile>,
}

#[utoipa::path(
    get,
    path = "/users",
    tag = "accounts",
    security(("bearer" = [])),
    params(("q" = String, Query, description = "A username prefix")),
    responses(
        (status = 200, description = "Users whose username starts with q, by username, at most 50", body = Users),
        (status = 400, description = "q is missing or empty", body = ErrorBody),
    )
)]
pub async fn search_users(
    State(s): State<ApiState>,
    _user: AuthUser,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Users>> {
    let prefix = q.get("q").map(String::as_str).unwrap_or_default();
    let users = profiles(&s.logic, s.logic.search_users(prefix).await?);
    Ok(Json(Users { users }))
}

#[utoipa::path(
    get,
    path = "/users/{user_id}",
    tag = "accounts",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "A decimal user id")),
    responses(
        (status = 200, description = "The profile, with `online` when the session registry answered", body = Profile),
        (status = 400, description = "user_id is not a decimal id", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn get_user(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Json<Profile>> {
    let id = parse_id(&raw, "user_id")?;
    let profile = Profile::from(s.logic.user_profile(user.id, id).await?);
    Ok(Json(profile.signed(&s.logic)))
}

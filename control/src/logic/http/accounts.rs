//! Accounts, profiles, friends and blocks.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use gochat_proto::frames::ErrorCode;
use gochat_proto::ids::Id;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::extract::{ApiJson, AuthUser, parse_id};
use super::{ApiError, ApiResult, ApiState};
use crate::repo::{RepoError, User};

/// A profile as clients see it.
#[derive(Debug, Serialize)]
pub struct Profile {
    user_id: Id,
    username: String,
    nickname: String,
    avatar_url: String,
    /// Connected now (only on `GET /users/{user_id}`: the 1:1 header's dot).
    #[serde(skip_serializing_if = "Option::is_none")]
    online: Option<bool>,
}

impl From<User> for Profile {
    fn from(u: User) -> Self {
        Self {
            user_id: Id(u.user_id),
            username: u.username,
            nickname: u.nickname,
            avatar_url: u.avatar_url,
            online: None,
        }
    }
}

fn bad(message: &str) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    username: String,
    password: String,
    #[serde(default)]
    nickname: Option<String>,
}

fn valid_username(name: &str) -> bool {
    (3..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_nickname(name: &str) -> bool {
    name.chars().count() <= 50 && !name.chars().any(char::is_control)
}

pub async fn register(
    State(s): State<ApiState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if !valid_username(&body.username) {
        return Err(bad("username: 3 to 32 letters, digits, '_', '.' or '-'"));
    }
    if !(8..=128).contains(&body.password.len()) {
        return Err(bad("password: 8 to 128 bytes"));
    }
    let nickname = body.nickname.unwrap_or_default();
    if !valid_nickname(&nickname) {
        return Err(bad(
            "nickname: at most 50 characters, no control characters",
        ));
    }
    let logic = s.logic.clone();
    let password = body.password;
    // Argon2 is deliberately slow: keep it off the async workers.
    let hash = tokio::task::spawn_blocking(move || logic.auth.hash_password(&password))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "hashing task failed"))?
        .map_err(crate::logic::LogicError::from)?;
    let user = s
        .logic
        .repo
        .create_user(&body.username, &hash, &nickname)
        .await
        .map_err(|e| match e {
            RepoError::Conflict(_) => ApiError::new(ErrorCode::Conflict, "username is taken"),
            other => other.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"user_id": Id(user.user_id), "username": user.username, "nickname": user.nickname}),
        ),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
    #[serde(default)]
    device_id: Option<String>,
}

pub async fn login(
    State(s): State<ApiState>,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<Value>> {
    let denied = || ApiError::new(ErrorCode::Unauthorized, "wrong username or password");
    let device_id = body.device_id.unwrap_or_else(|| "default".into());
    if device_id.is_empty() || device_id.len() > 64 || device_id.chars().any(char::is_control) {
        return Err(bad("device_id: 1 to 64 characters"));
    }
    let auth = match s.logic.repo.get_user_auth(&body.username).await {
        Ok(a) => Some(a),
        Err(RepoError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let logic = s.logic.clone();
    let password = body.password;
    let stored = auth.as_ref().map(|a| a.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => logic.auth.verify_password(&password, &hash),
        // Hash anyway so unknown usernames take as long as wrong passwords.
        None => logic
            .auth
            .hash_password(&password)
            .map(|_| false)
            .unwrap_or(false),
    })
    .await
    .unwrap_or(false);
    let user = auth
        .and_then(|a| a.user)
        .filter(|_| ok)
        .ok_or_else(denied)?;
    let (token, expires_at) = s
        .logic
        .auth
        .issue(Id(user.user_id), &device_id)
        .map_err(crate::logic::LogicError::from)?;
    Ok(Json(
        json!({"token": token, "user_id": Id(user.user_id), "expires_at": expires_at}),
    ))
}

pub async fn logout(State(s): State<ApiState>, user: AuthUser) -> ApiResult<StatusCode> {
    let ttl = user.claims.remaining_secs().max(1);
    s.logic
        .state
        .revoke_token(&user.claims.jti, ttl)
        .await
        .map_err(crate::logic::LogicError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(State(s): State<ApiState>, user: AuthUser) -> ApiResult<Json<Profile>> {
    Ok(Json(s.logic.repo.get_user(user.id.0).await?.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default)]
    nickname: Option<String>,
    #[serde(default)]
    avatar_url: Option<String>,
}

pub async fn update_me(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<ProfilePatch>,
) -> ApiResult<Json<Profile>> {
    if body.nickname.as_deref().is_some_and(|n| !valid_nickname(n)) {
        return Err(bad(
            "nickname: at most 50 characters, no control characters",
        ));
    }
    if body.avatar_url.as_deref().is_some_and(|u| {
        u.len() > 255 || !(u.is_empty() || u.starts_with('/') || u.starts_with("http"))
    }) {
        return Err(bad(
            "avatar_url: an http(s) URL or a /media/ path of at most 255 bytes",
        ));
    }
    let updated = s
        .logic
        .repo
        .update_user(
            user.id.0,
            body.nickname.as_deref(),
            body.avatar_url.as_deref(),
        )
        .await?;
    Ok(Json(updated.into()))
}

pub async fn search_users(
    State(s): State<ApiState>,
    _user: AuthUser,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let prefix = q.get("q").map(String::as_str).unwrap_or_default();
    if prefix.is_empty() {
        return Err(bad("q: the username prefix to search"));
    }
    let users: Vec<Profile> = s
        .logic
        .repo
        .search_users(prefix, 50)
        .await?
        .into_iter()
        .map(Profile::from)
        .collect();
    Ok(Json(json!({"users": users})))
}

pub async fn get_user(
    State(s): State<ApiState>,
    _user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Json<Profile>> {
    let id = parse_id(&raw, "user_id")?;
    let mut profile: Profile = s.logic.repo.get_user(id.0).await?.into();
    // Presence is a nicety: a registry hiccup must not fail the profile.
    profile.online = match s.logic.state.is_online(id).await {
        Ok(online) => Some(online),
        Err(e) => {
            tracing::warn!(error = %e, "presence unknown");
            None
        }
    };
    Ok(Json(profile))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRef {
    user_id: Id,
}

async fn other_user(s: &ApiState, me: Id, other: Id) -> ApiResult<()> {
    if me == other {
        return Err(bad("that is you"));
    }
    s.logic.repo.get_user(other.0).await?;
    Ok(())
}

pub async fn add_friend(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<UserRef>,
) -> ApiResult<StatusCode> {
    other_user(&s, user.id, body.user_id).await?;
    if s.logic.repo.is_blocked(body.user_id.0, user.id.0).await? {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this user does not accept requests from you",
        ));
    }
    s.logic.repo.add_friend(user.id.0, body.user_id.0).await?;
    Ok(StatusCode::CREATED)
}

pub async fn list_friends(State(s): State<ApiState>, user: AuthUser) -> ApiResult<Json<Value>> {
    let friends: Vec<Profile> = s
        .logic
        .repo
        .list_friends(user.id.0)
        .await?
        .into_iter()
        .map(Profile::from)
        .collect();
    Ok(Json(json!({"friends": friends})))
}

pub async fn remove_friend(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<StatusCode> {
    let other = parse_id(&raw, "user_id")?;
    s.logic.repo.remove_friend(user.id.0, other.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_block(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<UserRef>,
) -> ApiResult<StatusCode> {
    other_user(&s, user.id, body.user_id).await?;
    s.logic.repo.add_block(user.id.0, body.user_id.0).await?;
    Ok(StatusCode::CREATED)
}

pub async fn remove_block(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<StatusCode> {
    let other = parse_id(&raw, "user_id")?;
    s.logic.repo.remove_block(user.id.0, other.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

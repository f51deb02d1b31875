//! Accounts, profiles, friends and blocks over REST: parse, call
//! [`Logic`](crate::logic::Logic), shape the JSON. The rules are in
//! `logic/accounts.rs`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use gochat_proto::ids::Id;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::extract::{ApiJson, AuthUser, parse_id};
use super::{ApiResult, ApiState};
use crate::logic::{NewAccount, ProfilePatch, UserProfile};
use crate::repo::User;

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

impl From<UserProfile> for Profile {
    fn from(p: UserProfile) -> Self {
        Self {
            online: p.online,
            ..p.user.into()
        }
    }
}

fn profiles(users: Vec<User>) -> Vec<Profile> {
    users.into_iter().map(Profile::from).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    username: String,
    password: String,
    #[serde(default)]
    nickname: Option<String>,
}

pub async fn register(
    State(s): State<ApiState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
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
    let session = s
        .logic
        .login(&body.username, body.password, body.device_id)
        .await?;
    Ok(Json(
        json!({"token": session.token, "user_id": session.user_id, "expires_at": session.expires_at}),
    ))
}

pub async fn logout(State(s): State<ApiState>, user: AuthUser) -> ApiResult<StatusCode> {
    s.logic.logout(&user.claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(State(s): State<ApiState>, user: AuthUser) -> ApiResult<Json<Profile>> {
    Ok(Json(s.logic.my_profile(user.id).await?.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    #[serde(default)]
    nickname: Option<String>,
    #[serde(default)]
    avatar_url: Option<String>,
}

pub async fn update_me(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<ProfileBody>,
) -> ApiResult<Json<Profile>> {
    let patch = ProfilePatch {
        nickname: body.nickname,
        avatar_url: body.avatar_url,
    };
    Ok(Json(s.logic.update_profile(user.id, patch).await?.into()))
}

pub async fn search_users(
    State(s): State<ApiState>,
    _user: AuthUser,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let prefix = q.get("q").map(String::as_str).unwrap_or_default();
    let users = profiles(s.logic.search_users(prefix).await?);
    Ok(Json(json!({"users": users})))
}

pub async fn get_user(
    State(s): State<ApiState>,
    _user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Json<Profile>> {
    let id = parse_id(&raw, "user_id")?;
    Ok(Json(s.logic.user_profile(id).await?.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRef {
    user_id: Id,
}

pub async fn add_friend(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<UserRef>,
) -> ApiResult<StatusCode> {
    s.logic.add_friend(user.id, body.user_id).await?;
    Ok(StatusCode::CREATED)
}

pub async fn list_friends(State(s): State<ApiState>, user: AuthUser) -> ApiResult<Json<Value>> {
    let friends = profiles(s.logic.friends(user.id).await?);
    Ok(Json(json!({"friends": friends})))
}

pub async fn remove_friend(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<StatusCode> {
    let other = parse_id(&raw, "user_id")?;
    s.logic.remove_friend(user.id, other).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_block(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<UserRef>,
) -> ApiResult<StatusCode> {
    s.logic.block(user.id, body.user_id).await?;
    Ok(StatusCode::CREATED)
}

pub async fn remove_block(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<StatusCode> {
    let other = parse_id(&raw, "user_id")?;
    s.logic.unblock(user.id, other).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Groups over REST: parse, call [`Logic`](crate::logic::Logic), shape the
//! JSON. The rules (roles, who may do what) are in `logic/groups.rs`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use gochat_proto::ids::{Id, group_conversation_id};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{ApiJson, AuthUser, parse_id};
use super::{ApiResult, ApiState};
use crate::logic::{GroupEdit, MemberRole, NewGroup};
use crate::repo::Group;

fn group_json(g: &Group) -> Value {
    json!({
        "group_id": Id(g.group_id),
        "conversation_id": group_conversation_id(Id(g.group_id)),
        "name": g.name,
        "owner_id": Id(g.owner_id),
        "member_count": g.member_count,
        "announcement": g.announcement,
        "avatar_url": g.avatar_url,
        "created_at": g.created_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    member_ids: Vec<Id>,
}

pub async fn create(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let group = NewGroup {
        name: body.name,
        member_ids: body.member_ids,
    };
    let created = s.logic.create_group(user.id, group).await?;
    Ok((StatusCode::CREATED, Json(group_json(&created))))
}

pub async fn list(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let groups = s
        .logic
        .groups(user.id, q.get("q").map(String::as_str))
        .await?;
    Ok(Json(
        json!({"groups": groups.iter().map(group_json).collect::<Vec<_>>()}),
    ))
}

pub async fn get(
    State(s): State<ApiState>,
    _user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "group_id")?;
    Ok(Json(group_json(&s.logic.group(id).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    announcement: Option<String>,
    #[serde(default)]
    avatar_url: Option<String>,
}

pub async fn update(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<PatchBody>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "group_id")?;
    let edit = GroupEdit {
        name: body.name,
        announcement: body.announcement,
        avatar_url: body.avatar_url,
    };
    Ok(Json(group_json(
        &s.logic.update_group(user.id, id, edit).await?,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    user_ids: Vec<Id>,
}

pub async fn invite(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<InviteBody>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "group_id")?;
    let added = s.logic.invite(user.id, id, &body.user_ids).await?;
    Ok(Json(json!({"added_user_ids": added})))
}

pub async fn join(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "group_id")?;
    Ok(Json(group_json(&s.logic.join(user.id, id).await?)))
}

pub async fn remove_member(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((raw_group, raw_user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&raw_group, "group_id")?;
    let target = parse_id(&raw_user, "user_id")?;
    s.logic.remove_member(user.id, id, target).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn members(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "group_id")?;
    let members: Vec<Value> = s
        .logic
        .members(user.id, id)
        .await?
        .into_iter()
        .map(|m| {
            let role = MemberRole::of(m.role).as_str();
            json!({"user_id": Id(m.user_id), "role": role, "joined_at": m.joined_at})
        })
        .collect();
    Ok(Json(json!({"members": members})))
}

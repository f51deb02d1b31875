//! Groups: create, find, edit, invite, join, leave/remove, members. Membership
//! changes post a `system_group` message into the group's conversation.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use gochat_proto::frames::ErrorCode;
use gochat_proto::ids::{Id, group_conversation_id};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{ApiJson, AuthUser, parse_id};
use super::{ApiError, ApiResult, ApiState};
use crate::repo::{Group, GroupPatch, role};

const MAX_GROUP_NAME: usize = 50;
const MAX_INVITES: usize = 500;

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

fn bad(message: &str) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

async fn display_name(s: &ApiState, user: Id) -> String {
    match s.logic.repo.get_user(user.0).await {
        Ok(u) if !u.nickname.is_empty() => u.nickname,
        Ok(u) => u.username,
        Err(_) => format!("user {user}"),
    }
}

/// Posts a membership event; the change itself is already stored, so a failure
/// here is logged rather than undoing it.
async fn announce(s: &ApiState, group: Id, content: String, metadata: Value) {
    if let Err(e) = s.logic.post_group_event(group, content, metadata).await {
        tracing::warn!(error = %e, %group, "group event not posted");
    }
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
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > MAX_GROUP_NAME {
        return Err(bad("name: 1 to 50 characters"));
    }
    if body.member_ids.len() > MAX_INVITES {
        return Err(bad("at most 500 initial members"));
    }
    let ids: Vec<i64> = body.member_ids.iter().map(|i| i.0).collect();
    if s.logic.repo.get_users(&ids).await?.len() != dedup(&ids).len() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "a member_id names no user",
        ));
    }
    let group = s.logic.repo.create_group(user.id.0, name, &ids).await?;
    let who = display_name(&s, user.id).await;
    announce(
        &s,
        Id(group.group_id),
        format!("{who} created the group"),
        json!({"action": "create", "group_id": Id(group.group_id), "creator_id": user.id}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(group_json(&group))))
}

fn dedup(ids: &[i64]) -> Vec<i64> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

pub async fn list(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let groups = match q.get("q") {
        Some(query) if !query.is_empty() => s.logic.repo.search_groups(query, 50).await?,
        _ => s.logic.repo.list_user_groups(user.id.0).await?,
    };
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
    Ok(Json(group_json(&s.logic.repo.get_group(id.0).await?)))
}

async fn role_of(s: &ApiState, group: Id, user: Id) -> ApiResult<Option<i32>> {
    s.logic.repo.get_group(group.0).await?;
    Ok(s.logic
        .repo
        .get_member(group.0, user.0)
        .await?
        .map(|m| m.role))
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
    if !matches!(
        role_of(&s, id, user.id).await?,
        Some(role::ADMIN | role::OWNER)
    ) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the owner or an admin may edit the group",
        ));
    }
    if body
        .name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty() || n.chars().count() > MAX_GROUP_NAME)
    {
        return Err(bad("name: 1 to 50 characters"));
    }
    if body.announcement.as_deref().is_some_and(|a| a.len() > 4096)
        || body.avatar_url.as_deref().is_some_and(|a| a.len() > 255)
    {
        return Err(bad("announcement up to 4096 bytes, avatar_url up to 255"));
    }
    let patch = GroupPatch {
        name: body.name.map(|n| n.trim().to_owned()),
        announcement: body.announcement,
        avatar_url: body.avatar_url,
    };
    Ok(Json(group_json(
        &s.logic.repo.update_group(id.0, &patch).await?,
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
    if role_of(&s, id, user.id).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("not a member of group {id}"),
        ));
    }
    if body.user_ids.is_empty() || body.user_ids.len() > MAX_INVITES {
        return Err(bad("user_ids: 1 to 500 ids"));
    }
    let ids: Vec<i64> = body.user_ids.iter().map(|i| i.0).collect();
    let users = s.logic.repo.get_users(&ids).await?;
    if users.len() != dedup(&ids).len() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "a user_id names no user",
        ));
    }
    let added = s.logic.repo.add_members(id.0, &ids).await?;
    if !added.is_empty() {
        let inviter = display_name(&s, user.id).await;
        let names: Vec<String> = users
            .iter()
            .filter(|u| added.contains(&u.user_id))
            .map(|u| {
                if u.nickname.is_empty() {
                    u.username.clone()
                } else {
                    u.nickname.clone()
                }
            })
            .collect();
        let invitees: Vec<Id> = added.iter().copied().map(Id).collect();
        announce(&s, id, format!("{inviter} invited {}", names.join(", ")), json!({"action": "invite", "group_id": id, "inviter_id": user.id, "invitee_ids": invitees})).await;
    }
    Ok(Json(
        json!({"added_user_ids": added.into_iter().map(Id).collect::<Vec<_>>()}),
    ))
}

pub async fn join(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "group_id")?;
    s.logic.repo.get_group(id.0).await?;
    let added = s.logic.repo.add_members(id.0, &[user.id.0]).await?;
    if !added.is_empty() {
        let who = display_name(&s, user.id).await;
        announce(
            &s,
            id,
            format!("{who} joined the group"),
            json!({"action": "join", "group_id": id, "user_id": user.id}),
        )
        .await;
    }
    Ok(Json(group_json(&s.logic.repo.get_group(id.0).await?)))
}

pub async fn remove_member(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((raw_group, raw_user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&raw_group, "group_id")?;
    let target = parse_id(&raw_user, "user_id")?;
    let my_role = role_of(&s, id, user.id).await?;
    let target_role = s
        .logic
        .repo
        .get_member(id.0, target.0)
        .await?
        .map(|m| m.role);
    let Some(target_role) = target_role else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("user {target} is not a member"),
        ));
    };
    if target_role == role::OWNER {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the owner cannot leave or be removed",
        ));
    }
    let leaving = target == user.id;
    let may_remove = matches!(my_role, Some(r) if r > target_role && r >= role::ADMIN);
    if !leaving && !may_remove {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the owner or an admin may remove members",
        ));
    }
    let removed = s.logic.repo.remove_member(id.0, target.0).await?;
    if removed {
        let name = display_name(&s, target).await;
        let (content, action) = if leaving {
            (format!("{name} left the group"), "leave")
        } else {
            (
                format!("{} removed {name}", display_name(&s, user.id).await),
                "remove",
            )
        };
        announce(
            &s,
            id,
            content,
            json!({"action": action, "group_id": id, "user_id": target, "operator_id": user.id}),
        )
        .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn members(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "group_id")?;
    if role_of(&s, id, user.id).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("not a member of group {id}"),
        ));
    }
    let members: Vec<Value> = s
        .logic
        .repo
        .list_members(id.0)
        .await?
        .into_iter()
        .map(|m| {
            let role = match m.role {
                role::OWNER => "owner",
                role::ADMIN => "admin",
                _ => "member",
            };
            json!({"user_id": Id(m.user_id), "role": role, "joined_at": m.joined_at})
        })
        .collect();
    Ok(Json(json!({"members": members})))
}

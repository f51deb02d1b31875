//! Groups over REST: parse, call [`Logic`](crate::logic::Logic), shape the
//! JSON. The rules (roles, who may do what) are in `logic/groups.rs`;
//! administration is in `group_admin.rs`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gochat_proto::ids::{Id, group_conversation_id};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, AuthUser, parse_id};
use super::{ApiResult, ApiState, ErrorBody};
use crate::logic::{GroupEdit, JoinPolicy, Joined, Logic, MemberRole, NewGroup};
use crate::repo::{Group, Member};

/// A group as clients see it.
#[derive(Serialize, ToSchema)]
#[schema(as = Group)]
pub struct GroupView {
    #[schema(value_type = String)]
    group_id: Id,
    /// The group's conversation, for history and sends.
    conversation_id: String,
    name: String,
    #[schema(value_type = String)]
    owner_id: Id,
    member_count: i64,
    announcement: String,
    avatar_url: String,
    /// ms since the epoch.
    created_at: i64,
    /// `approval`, `open` or `invite_only`.
    join_policy: &'static str,
    /// Only the owner and admins may send.
    mute_all: bool,
    /// Dissolved by its owner: no sends, history readable.
    dissolved: bool,
}

impl GroupView {
    /// The view of `g` with its avatar's upload link signed afresh.
    pub(super) fn of(logic: &Logic, g: Group) -> Self {
        let mut view = Self::from(g);
        view.avatar_url = logic.media_url(&view.avatar_url);
        view
    }
}

impl From<Group> for GroupView {
    fn from(g: Group) -> Self {
        Self {
            group_id: Id(g.group_id),
            conversation_id: group_conversation_id(Id(g.group_id)),
            name: g.name,
            owner_id: Id(g.owner_id),
            member_count: g.member_count,
            announcement: g.announcement,
            avatar_url: g.avatar_url,
            created_at: g.created_at,
            join_policy: JoinPolicy::from_code(g.join_policy).as_str(),
            mute_all: g.mute_all,
            dissolved: g.dissolved,
        }
    }
}

/// A new group.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroupBody {
    /// 1 to 50 characters.
    name: String,
    /// Members besides the creator, at most 500.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    member_ids: Vec<Id>,
}

#[utoipa::path(
    post,
    path = "/groups",
    tag = "groups",
    operation_id = "create_group",
    security(("bearer" = [])),
    request_body = NewGroupBody,
    responses(
        (status = 201, description = "The group; the caller is its owner", body = GroupView),
        (status = 400, description = "A name or member list out of the rules", body = ErrorBody),
        (status = 404, description = "A member_id names no user", body = ErrorBody),
    )
)]
pub async fn create(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<NewGroupBody>,
) -> ApiResult<(StatusCode, Json<GroupView>)> {
    let group = NewGroup {
        name: body.name,
        member_ids: body.member_ids,
    };
    let created = s.logic.create_group(user.id, group).await?;
    Ok((StatusCode::CREATED, Json(GroupView::of(&s.logic, created))))
}

/// Groups.
#[derive(Serialize, ToSchema)]
pub struct Groups {
    groups: Vec<GroupView>,
}

#[utoipa::path(
    get,
    path = "/groups",
    tag = "groups",
    operation_id = "list_groups",
    security(("bearer" = [])),
    params(("q" = Option<String>, Query, description = "Find groups whose name contains q instead of listing the caller's")),
    responses((status = 200, description = "The caller's groups, or the groups matching q", body = Groups))
)]
pub async fn list(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Groups>> {
    let groups = s
        .logic
        .groups(user.id, q.get("q").map(String::as_str))
        .await?;
    Ok(Json(Groups {
        groups: groups
            .into_iter()
            .map(|g| GroupView::of(&s.logic, g))
            .collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/groups/{group_id}",
    tag = "groups",
    operation_id = "get_group",
    security(("bearer" = [])),
    params(("group_id" = String, Path, description = "A decimal group id")),
    responses(
        (status = 200, description = "The group", body = GroupView),
        (status = 400, description = "group_id is not a decimal id", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
    )
)]
pub async fn get(
    State(s): State<ApiState>,
    _user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Json<GroupView>> {
    let id = parse_id(&raw, "group_id")?;
    Ok(Json(GroupView::of(&s.logic, s.logic.group(id).await?)))
}

/// Group fields to change; absent ones stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatchBody {
    /// 1 to 50 characters.
    #[serde(default)]
    name: Option<String>,
    /// Up to 4096 bytes.
    #[serde(default)]
    announcement: Option<String>,
    /// Up to 255 bytes.
    #[serde(default)]
    avatar_url: Option<String>,
    /// `open`, `approval` or `invite_only`.
    #[serde(default)]
    join_policy: Option<String>,
    /// Only the owner and admins may send.
    #[serde(default)]
    mute_all: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/groups/{group_id}",
    tag = "groups",
    operation_id = "update_group",
    security(("bearer" = [])),
    params(("group_id" = String, Path, description = "A decimal group id")),
    request_body = GroupPatchBody,
    responses(
        (status = 200, description = "The updated group", body = GroupView),
        (status = 400, description = "A bad group_id or a field out of the rules", body = ErrorBody),
        (status = 403, description = "Only the owner or an admin may edit", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
    )
)]
pub async fn update(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<GroupPatchBody>,
) -> ApiResult<Json<GroupView>> {
    let id = parse_id(&raw, "group_id")?;
    let join_policy = body
        .join_policy
        .as_deref()
        .map(JoinPolicy::parse)
        .transpose()?;
    let edit = GroupEdit {
        name: body.name,
        announcement: body.announcement,
        avatar_url: body.avatar_url,
        join_policy,
        mute_all: body.mute_all,
    };
    let after = s.logic.update_group(user.id, id, edit).await?;
    Ok(Json(GroupView::of(&s.logic, after)))
}

/// Users to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    /// 1 to 500 user ids.
    #[schema(value_type = Vec<String>)]
    user_ids: Vec<Id>,
}

/// Who was added.
#[derive(Serialize, ToSchema)]
pub struct Invited {
    /// The users who were not members already.
    #[schema(value_type = Vec<String>)]
    added_user_ids: Vec<Id>,
}

#[utoipa::path(
    post,
    path = "/groups/{group_id}/members",
    tag = "groups",
    operation_id = "invite_members",
    security(("bearer" = [])),
    params(("group_id" = String, Path, description = "A decimal group id")),
    request_body = InviteBody,
    responses(
        (status = 200, description = "Added; the group gets a `system_group` message", body = Invited),
        (status = 400, description = "A bad group_id or list of ids", body = ErrorBody),
        (status = 403, description = "The caller is not a member", body = ErrorBody),
        (status = 404, description = "No such group, or a user_id names no user", body = ErrorBody),
    )
)]
pub async fn invite(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<InviteBody>,
) -> ApiResult<Json<Invited>> {
    let id = parse_id(&raw, "group_id")?;
    let added_user_ids = s.logic.invite(user.id, id, &body.user_ids).await?;
    Ok(Json(Invited { added_user_ids }))
}

#[utoipa::path(
    post,
    path = "/groups/{group_id}/join",
    tag = "groups",
    operation_id = "join_group",
    security(("bearer" = [])),
    params(("group_id" = String, Path, description = "A decimal group id")),
    responses(
        (status = 200, description = "A member now (the group is open, or the caller was one); a `system_group` message", body = GroupView),
        (status = 202, description = "The group asks for approval: a request waits for its owner or an admin", body = JoinRequested),
        (status = 400, description = "group_id is not a decimal id", body = ErrorBody),
        (status = 403, description = "The group takes members by invitation only, or was dissolved", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
    )
)]
pub async fn join(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&raw, "group_id")?;
    Ok(match s.logic.join(user.id, id).await? {
        Joined::Member(group) => Json(GroupView::of(&s.logic, group)).into_response(),
        Joined::Requested(request_id) => {
            (StatusCode::ACCEPTED, Json(JoinRequested { request_id })).into_response()
        }
    })
}

/// A request to join, waiting.
#[derive(Serialize, ToSchema)]
pub struct JoinRequested {
    #[schema(value_type = String)]
    request_id: Id,
}

#[utoipa::path(
    delete,
    path = "/groups/{group_id}/members/{user_id}",
    tag = "groups",
    operation_id = "remove_member",
    security(("bearer" = [])),
    params(
        ("group_id" = String, Path, description = "A decimal group id"),
        ("user_id" = String, Path, description = "The member: the caller to leave, another to remove"),
    ),
    responses(
        (status = 204, description = "Left or removed; a `system_group` message"),
        (status = 400, description = "An id is not a decimal id", body = ErrorBody),
        (status = 403, description = "Only the owner or an admin may remove members of lower rank", body = ErrorBody),
        (status = 404, description = "No such group, or the user is not a member", body = ErrorBody),
        (status = 409, description = "The owner cannot leave or be removed", body = ErrorBody),
    )
)]
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

/// A member and their role.
#[derive(Serialize, ToSchema)]
#[schema(as = Member)]
pub struct MemberView {
    #[schema(value_type = String)]
    user_id: Id,
    /// `owner`, `admin` or `member`.
    role: &'static str,
    /// ms since the epoch.
    joined_at: i64,
    /// Muted until then (ms); absent when not muted.
    #[serde(skip_serializing_if = "Option::is_none")]
    muted_until: Option<i64>,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        let muted = m.muted_until > gochat_proto::ids::now_millis();
        Self {
            user_id: Id(m.user_id),
            role: MemberRole::of(m.role).as_str(),
            joined_at: m.joined_at,
            muted_until: muted.then_some(m.muted_until),
        }
    }
}

/// A group's members.
#[derive(Serialize, ToSchema)]
pub struct Members {
    members: Vec<MemberView>,
}

#[utoipa::path(
    get,
    path = "/groups/{group_id}/members",
    tag = "groups",
    operation_id = "list_members",
    security(("bearer" = [])),
    params(("group_id" = String, Path, description = "A decimal group id")),
    responses(
        (status = 200, description = "The members", body = Members),
        (status = 400, description = "group_id is not a decimal id", body = ErrorBody),
        (status = 403, description = "The caller is not a member", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
    )
)]
pub async fn members(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Json<Members>> {
    let id = parse_id(&raw, "group_id")?;
    let members = s.logic.members(user.id, id).await?;
    Ok(Json(Members {
        members: members.into_iter().map(MemberView::from).collect(),
    }))
}

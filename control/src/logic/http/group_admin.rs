//! Group administration over REST (PROTOCOL v1.1): roles, hand-over,
//! dissolution, mutes and join requests. Parse, call
//! [`Logic`](crate::logic::Logic), shape the JSON; the rules are in
//! `logic/group_admin.rs`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gochat_proto::ids::Id;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, AuthUser, parse_id};
use super::groups::{GroupView, MemberView};
use super::{ApiResult, ApiState, ErrorBody};
use crate::logic::{LogicError, MemberRole};
use crate::repo::JoinRequest;

fn group_and_user(raw: &(String, String)) -> ApiResult<(Id, Id)> {
    Ok((parse_id(&raw.0, "group_id")?, parse_id(&raw.1, "user_id")?))
}

/// A new role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// `admin` or `member`.
    role: String,
}

#[utoipa::path(
    put,
    path = "/groups/{group_id}/members/{user_id}/role",
    tag = "groups",
    security(("bearer" = [])),
    params(
        ("group_id" = String, Path, description = "A decimal group id"),
        ("user_id" = String, Path, description = "The member"),
    ),
    request_body = RoleBody,
    responses(
        (status = 200, description = "The member with the new role; a `role_changed` message", body = MemberView),
        (status = 400, description = "A role other than admin or member", body = ErrorBody),
        (status = 403, description = "The caller is not the owner, the target is the owner, or the group was dissolved", body = ErrorBody),
        (status = 404, description = "No such group, or the user is not a member", body = ErrorBody),
    )
)]
pub async fn set_role(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<(String, String)>,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult<Json<MemberView>> {
    let (group, target) = group_and_user(&raw)?;
    let role = match body.role.as_str() {
        "admin" => MemberRole::Admin,
        "member" => MemberRole::Member,
        _ => {
            return Err(LogicError::BadRequest("role: \"admin\" or \"member\"".into()).into());
        }
    };
    let member = s.logic.set_role(user.id, group, target, role).await?;
    Ok(Json(member.into()))
}

/// The next owner.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    #[schema(value_type = String)]
    user_id: Id,
}

#[utoipa::path(
    post,
    path = "/groups/{group_id}/transfer",
    tag = "groups",
    security(("bearer" = [])),
    params(("group_id" = String, Path, description = "A decimal group id")),
    request_body = TransferBody,
    responses(
        (status = 200, description = "The group with its new owner; the old owner is an admin; an `owner_transferred` message", body = GroupView),
        (status = 400, description = "The caller named themself", body = ErrorBody),
        (status = 403, description = "The caller is not the owner, or the group was dissolved", body = ErrorBody),
        (status = 404, description = "No such group, or the user is not a member", body = ErrorBody),
    )
)]
pub async fn transfer(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<TransferBody>,
) -> ApiResult<Json<GroupView>> {
    let group = parse_id(&raw, "group_id")?;
    let after = s.logic.transfer_group(user.id, group, body.user_id).await?;
    Ok(Json(GroupView::of(&s.logic, after)))
}

#[utoipa::path(
    delete,
    path = "/groups/{group_id}",
    tag = "groups",
    operation_id = "dissolve_group",
    security(("bearer" = [])),
    params(("group_id" = String, Path, description = "A decimal group id")),
    responses(
        (status = 204, description = "Dissolved: a last `group_dissolved` message; sends are refused from now on; the history stays readable to its members"),
        (status = 403, description = "The caller is not the owner, or the group was dissolved already", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
    )
)]
pub async fn dissolve(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<StatusCode> {
    let group = parse_id(&raw, "group_id")?;
    s.logic.dissolve_group(user.id, group).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How long a mute lasts.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteBody {
    /// Until then, ms since the epoch; in the future.
    until: i64,
}

#[utoipa::path(
    post,
    path = "/groups/{group_id}/members/{user_id}/mute",
    tag = "groups",
    security(("bearer" = [])),
    params(
        ("group_id" = String, Path, description = "A decimal group id"),
        ("user_id" = String, Path, description = "The member"),
    ),
    request_body = MuteBody,
    responses(
        (status = 200, description = "Muted: their sends and edits get `forbidden` until then; a `member_muted` message", body = MemberView),
        (status = 400, description = "`until` is not in the future", body = ErrorBody),
        (status = 403, description = "Only the owner or an admin, over lower roles", body = ErrorBody),
        (status = 404, description = "No such group, or the user is not a member", body = ErrorBody),
    )
)]
pub async fn mute(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<(String, String)>,
    ApiJson(body): ApiJson<MuteBody>,
) -> ApiResult<Json<MemberView>> {
    let (group, target) = group_and_user(&raw)?;
    let member = s
        .logic
        .mute_member(user.id, group, target, Some(body.until))
        .await?;
    Ok(Json(member.into()))
}

#[utoipa::path(
    delete,
    path = "/groups/{group_id}/members/{user_id}/mute",
    tag = "groups",
    security(("bearer" = [])),
    params(
        ("group_id" = String, Path, description = "A decimal group id"),
        ("user_id" = String, Path, description = "The member"),
    ),
    responses(
        (status = 204, description = "Unmuted; a `member_unmuted` message"),
        (status = 403, description = "Only the owner or an admin, over lower roles", body = ErrorBody),
        (status = 404, description = "No such group, or the user is not a member", body = ErrorBody),
    )
)]
pub async fn unmute(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (group, target) = group_and_user(&raw)?;
    s.logic.mute_member(user.id, group, target, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A request to join as the group's managers see it.
#[derive(Serialize, ToSchema)]
pub struct JoinRequestView {
    #[schema(value_type = String)]
    request_id: Id,
    #[schema(value_type = String)]
    user_id: Id,
    /// ms since the epoch.
    created_at: i64,
}

impl From<JoinRequest> for JoinRequestView {
    fn from(r: JoinRequest) -> Self {
        Self {
            request_id: Id(r.request_id),
            user_id: Id(r.user_id),
            created_at: r.created_at,
        }
    }
}

/// The pending requests, oldest first.
#[derive(Serialize, ToSchema)]
pub struct JoinRequests {
    requests: Vec<JoinRequestView>,
}

#[utoipa::path(
    get,
    path = "/groups/{group_id}/join-requests",
    tag = "groups",
    security(("bearer" = [])),
    params(("group_id" = String, Path, description = "A decimal group id")),
    responses(
        (status = 200, description = "Pending requests to join", body = JoinRequests),
        (status = 403, description = "Only the owner or an admin", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
    )
)]
pub async fn join_requests(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Json<JoinRequests>> {
    let group = parse_id(&raw, "group_id")?;
    let requests = s.logic.join_requests(user.id, group).await?;
    Ok(Json(JoinRequests {
        requests: requests.into_iter().map(JoinRequestView::from).collect(),
    }))
}

fn group_and_request(raw: &(String, String)) -> ApiResult<(Id, Id)> {
    Ok((
        parse_id(&raw.0, "group_id")?,
        parse_id(&raw.1, "request_id")?,
    ))
}

#[utoipa::path(
    post,
    path = "/groups/{group_id}/join-requests/{request_id}/accept",
    tag = "groups",
    security(("bearer" = [])),
    params(
        ("group_id" = String, Path, description = "A decimal group id"),
        ("request_id" = String, Path, description = "A decimal request id"),
    ),
    responses(
        (status = 200, description = "The asker is a member; a `member_joined` message", body = GroupView),
        (status = 403, description = "Only the owner or an admin", body = ErrorBody),
        (status = 404, description = "No such group or request", body = ErrorBody),
    )
)]
pub async fn accept_join(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<(String, String)>,
) -> ApiResult<Json<GroupView>> {
    let (group, request) = group_and_request(&raw)?;
    s.logic.accept_join(user.id, group, request).await?;
    Ok(Json(GroupView::of(&s.logic, s.logic.group(group).await?)))
}

#[utoipa::path(
    post,
    path = "/groups/{group_id}/join-requests/{request_id}/reject",
    tag = "groups",
    security(("bearer" = [])),
    params(
        ("group_id" = String, Path, description = "A decimal group id"),
        ("request_id" = String, Path, description = "A decimal request id"),
    ),
    responses(
        (status = 204, description = "Turned away; the asker is not told"),
        (status = 403, description = "Only the owner or an admin", body = ErrorBody),
        (status = 404, description = "No such group or request", body = ErrorBody),
    )
)]
pub async fn reject_join(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (group, request) = group_and_request(&raw)?;
    s.logic.reject_join(user.id, group, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

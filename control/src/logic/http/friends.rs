//! Friends, friend requests and blocks over REST (PROTOCOL v1.1 "Friends
//! with consent"): parse, call [`Logic`](crate::logic::Logic), shape the
//! JSON. The rules are in `logic/friends.rs`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gochat_proto::ids::Id;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::accounts::{Profile, profiles};
use super::extract::{ApiJson, AuthUser, parse_id};
use super::{ApiResult, ApiState, ErrorBody};
use crate::logic::Befriended;
use crate::repo::FriendRequest;

/// Another user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRef {
    #[schema(value_type = String)]
    user_id: Id,
}

/// A friend request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FriendBody {
    #[schema(value_type = String)]
    user_id: Id,
    /// A note for the target; at most 200 characters.
    #[serde(default)]
    message: Option<String>,
}

/// What asking did.
#[derive(Serialize, ToSchema)]
pub struct FriendStatus {
    /// `friends` or `requested`.
    status: &'static str,
    /// The pending request (when `requested`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    request_id: Option<Id>,
}

impl FriendStatus {
    fn friends() -> Self {
        Self {
            status: "friends",
            request_id: None,
        }
    }
}

#[utoipa::path(
    post,
    path = "/friends",
    tag = "friends",
    security(("bearer" = [])),
    request_body = FriendBody,
    responses(
        (status = 201, description = "Friends now (also when they were already): the target's policy is `open` or they had asked the caller", body = FriendStatus),
        (status = 202, description = "A request waits for the target's answer", body = FriendStatus),
        (status = 400, description = "That is the caller, or the note is too long", body = ErrorBody),
        (status = 403, description = "The target's policy is `closed`, or one of the two blocked the other", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn add_friend(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<FriendBody>,
) -> ApiResult<Response> {
    let message = body.message.unwrap_or_default();
    Ok(
        match s.logic.add_friend(user.id, body.user_id, &message).await? {
            Befriended::Friends => {
                (StatusCode::CREATED, Json(FriendStatus::friends())).into_response()
            }
            Befriended::Requested(id) => {
                let status = FriendStatus {
                    status: "requested",
                    request_id: Some(id),
                };
                (StatusCode::ACCEPTED, Json(status)).into_response()
            }
        },
    )
}

/// A pending request as clients see it.
#[derive(Serialize, ToSchema)]
pub struct RequestView {
    #[schema(value_type = String)]
    request_id: Id,
    #[schema(value_type = String)]
    from_user_id: Id,
    #[schema(value_type = String)]
    to_user_id: Id,
    message: String,
    /// ms since the epoch.
    created_at: i64,
}

impl From<FriendRequest> for RequestView {
    fn from(r: FriendRequest) -> Self {
        Self {
            request_id: Id(r.request_id),
            from_user_id: Id(r.from_user_id),
            to_user_id: Id(r.to_user_id),
            message: r.message,
            created_at: r.created_at,
        }
    }
}

/// The caller's pending requests, oldest first.
#[derive(Serialize, ToSchema)]
pub struct Requests {
    /// Sent to the caller.
    incoming: Vec<RequestView>,
    /// Sent by the caller.
    outgoing: Vec<RequestView>,
}

#[utoipa::path(
    get,
    path = "/friend-requests",
    tag = "friends",
    security(("bearer" = [])),
    responses((status = 200, description = "Pending requests to and from the caller", body = Requests))
)]
pub async fn list_requests(State(s): State<ApiState>, user: AuthUser) -> ApiResult<Json<Requests>> {
    let (incoming, outgoing) = s.logic.friend_requests(user.id).await?;
    let view = |list: Vec<FriendRequest>| list.into_iter().map(RequestView::from).collect();
    Ok(Json(Requests {
        incoming: view(incoming),
        outgoing: view(outgoing),
    }))
}

#[utoipa::path(
    post,
    path = "/friend-requests/{request_id}/accept",
    tag = "friends",
    security(("bearer" = [])),
    params(("request_id" = String, Path, description = "A decimal request id")),
    responses(
        (status = 200, description = "Friends now; both sides get `friend_added`", body = FriendStatus),
        (status = 403, description = "One of the two blocked the other since", body = ErrorBody),
        (status = 404, description = "No such request to the caller", body = ErrorBody),
    )
)]
pub async fn accept_request(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Json<FriendStatus>> {
    let id = parse_id(&raw, "request_id")?;
    s.logic.accept_friend_request(user.id, id).await?;
    Ok(Json(FriendStatus::friends()))
}

#[utoipa::path(
    post,
    path = "/friend-requests/{request_id}/reject",
    tag = "friends",
    security(("bearer" = [])),
    params(("request_id" = String, Path, description = "A decimal request id")),
    responses(
        (status = 204, description = "Rejected; the sender is not told"),
        (status = 404, description = "No such request to the caller", body = ErrorBody),
    )
)]
pub async fn reject_request(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&raw, "request_id")?;
    s.logic.reject_friend_request(user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's friends.
#[derive(Serialize, ToSchema)]
pub struct Friends {
    friends: Vec<Profile>,
}

#[utoipa::path(
    get,
    path = "/friends",
    tag = "friends",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's friends", body = Friends))
)]
pub async fn list_friends(State(s): State<ApiState>, user: AuthUser) -> ApiResult<Json<Friends>> {
    let friends = profiles(&s.logic, s.logic.friends(user.id).await?);
    Ok(Json(Friends { friends }))
}

#[utoipa::path(
    delete,
    path = "/friends/{user_id}",
    tag = "friends",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "A decimal user id")),
    responses(
        (status = 204, description = "Not friends (any more)"),
        (status = 400, description = "user_id is not a decimal id", body = ErrorBody),
    )
)]
pub async fn remove_friend(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<StatusCode> {
    let other = parse_id(&raw, "user_id")?;
    s.logic.remove_friend(user.id, other).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The users the caller has blocked (PROTOCOL v1.1 §6.4).
#[derive(Serialize, ToSchema)]
pub struct Blocks {
    users: Vec<Profile>,
}

#[utoipa::path(
    get,
    path = "/blocks",
    tag = "friends",
    security(("bearer" = [])),
    responses((status = 200, description = "The users the caller has blocked, by username", body = Blocks))
)]
pub async fn list_blocks(State(s): State<ApiState>, user: AuthUser) -> ApiResult<Json<Blocks>> {
    let users = profiles(&s.logic, s.logic.blocks(user.id).await?);
    Ok(Json(Blocks { users }))
}

#[utoipa::path(
    post,
    path = "/blocks",
    tag = "friends",
    security(("bearer" = [])),
    request_body = UserRef,
    responses(
        (status = 201, description = "Blocked: the target's sends, friend requests and invitations to the caller get `forbidden`, presence stops both ways, pending requests between the two are dropped"),
        (status = 400, description = "That is the caller", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn add_block(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<UserRef>,
) -> ApiResult<StatusCode> {
    s.logic.block(user.id, body.user_id).await?;
    Ok(StatusCode::CREATED)
}

#[utoipa::path(
    delete,
    path = "/blocks/{user_id}",
    tag = "friends",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "A decimal user id")),
    responses(
        (status = 204, description = "Not blocked (any more)"),
        (status = 400, description = "user_id is not a decimal id", body = ErrorBody),
    )
)]
pub async fn remove_block(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<StatusCode> {
    let other = parse_id(&raw, "user_id")?;
    s.logic.unblock(user.id, other).await?;
    Ok(StatusCode::NO_CONTENT)
}

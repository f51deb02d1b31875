//! Edits, recalls and delete-for-me over REST (PROTOCOL.md v1.1): parse,
//! pass through the process's one send path like `POST /messages`, and
//! answer with the stored entry.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gochat_proto::frames::{ChangeFrame, MessageFrame, MessageType};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::extract::{ApiJson, AuthUser, parse_id};
use super::frame_of;
use super::{ApiResult, ApiState, ErrorBody};
use crate::logic::Send;

/// An edit of a text message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditBody {
    /// The new text.
    content: String,
    /// The new metadata (absent: `{}`), a text message's.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// *Extension:* makes a retried PATCH idempotent, like a send's; one is
    /// chosen by the server when absent.
    client_msg_id: Option<String>,
}

/// The idempotency key of a change made over REST.
fn change_id(given: Option<String>) -> String {
    given.unwrap_or_else(|| format!("rest-{}", uuid::Uuid::new_v4().simple()))
}

/// Passes a change through the send path; the stored entry.
async fn commit(
    s: &ApiState,
    user: &AuthUser,
    kind: MessageType,
    frame: ChangeFrame,
) -> ApiResult<Json<MessageFrame>> {
    let ack = s
        .sends
        .send_one(Send::change(user.id, kind, frame, None))
        .await?;
    let stored = s.logic.stored_message(ack.message_id).await?;
    Ok(Json(frame_of(&s.logic, &stored)))
}

#[utoipa::path(
    patch,
    path = "/conversations/{cid}/messages/{message_id}",
    tag = "conversations",
    operation_id = "edit_message",
    security(("bearer" = [])),
    params(
        ("cid" = String, Path, description = "A conversation id"),
        ("message_id" = String, Path, description = "The text message to edit"),
    ),
    request_body = EditBody,
    responses(
        (status = 200, description = "The stored `edit` entry (a message object, docs/protocol.md §3.3)", body = Object),
        (status = 400, description = "Empty content or bad metadata", body = ErrorBody),
        (status = 403, description = "Not the sender, not text, outside the edit window, or recalled", body = ErrorBody),
        (status = 404, description = "No such conversation or message", body = ErrorBody),
    )
)]
pub async fn edit(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((cid, message_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<EditBody>,
) -> ApiResult<Json<MessageFrame>> {
    let frame = ChangeFrame {
        client_msg_id: change_id(body.client_msg_id),
        conversation_id: cid,
        message_id: parse_id(&message_id, "message_id")?,
        content: Some(body.content),
        metadata: body.metadata,
    };
    commit(&s, &user, MessageType::Edit, frame).await
}

#[utoipa::path(
    post,
    path = "/conversations/{cid}/messages/{message_id}/recall",
    tag = "conversations",
    operation_id = "recall_message",
    security(("bearer" = [])),
    params(
        ("cid" = String, Path, description = "A conversation id"),
        ("message_id" = String, Path, description = "The message to recall"),
    ),
    responses(
        (status = 200, description = "The stored `recall` entry (a message object)", body = Object),
        (status = 403, description = "Not the sender (nor a group's owner or admin over the sender), outside the recall window, or already recalled", body = ErrorBody),
        (status = 404, description = "No such conversation or message", body = ErrorBody),
    )
)]
pub async fn recall(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((cid, message_id)): Path<(String, String)>,
) -> ApiResult<Json<MessageFrame>> {
    let frame = ChangeFrame {
        client_msg_id: change_id(None),
        conversation_id: cid,
        message_id: parse_id(&message_id, "message_id")?,
        content: None,
        metadata: None,
    };
    commit(&s, &user, MessageType::Recall, frame).await
}

#[utoipa::path(
    delete,
    path = "/conversations/{cid}/messages/{message_id}",
    tag = "conversations",
    operation_id = "delete_message_for_me",
    security(("bearer" = [])),
    params(
        ("cid" = String, Path, description = "A conversation id"),
        ("message_id" = String, Path, description = "The message to hide from the caller's history"),
    ),
    responses(
        (status = 204, description = "Hidden from the caller's history (a tombstone keeps its seq)"),
        (status = 403, description = "The caller may not read this conversation", body = ErrorBody),
        (status = 404, description = "No such conversation or message", body = ErrorBody),
    )
)]
pub async fn delete_for_me(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((cid, message_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let message_id = parse_id(&message_id, "message_id")?;
    s.logic.delete_for_me(user.id, &cid, message_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

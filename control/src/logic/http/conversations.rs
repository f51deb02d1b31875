//! Conversations, history pulls, read cursors, mentions and `POST /messages`
//! over REST: parse, call [`Logic`](crate::logic::Logic), shape the JSON.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use gochat_proto::frames::{AckFrame, ErrorCode, MessageFrame, SendFrame};
use gochat_proto::ids::Id;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, AuthUser, parse_id};
use super::frame_of;
use super::{ApiError, ApiResult, ApiState, ErrorBody};
use crate::logic::{HistoryQuery, Logic, SettingsChange};
use crate::repo::ConversationSummary;

/// One of the caller's conversations. Message objects are described in
/// docs/protocol.md §3.3 (the `message` frame without `type`).
#[derive(Serialize, ToSchema)]
#[schema(as = Conversation)]
pub struct ConversationEntry {
    conversation_id: String,
    /// `single` or `group`.
    #[serde(rename = "type")]
    kind: String,
    name: String,
    last_seq_id: i64,
    read_seq_id: i64,
    unread: i64,
    unread_mentions: i64,
    /// Group conversations only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    group_id: Option<Id>,
    /// 1:1 conversations only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    peer_user_id: Option<Id>,
    /// 1:1 conversations only: how far the peer has read.
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_read_seq_id: Option<i64>,
    /// Absent in a conversation without messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    last_message: Option<MessageFrame>,
    /// The caller's settings of it (PROTOCOL v1.1 §6.4).
    muted: bool,
    pinned: bool,
    archived: bool,
}

impl ConversationEntry {
    fn of(logic: &Logic, c: ConversationSummary) -> Self {
        let group = c.kind == "group";
        Self {
            conversation_id: c.conversation_id,
            kind: c.kind,
            name: c.name,
            last_seq_id: c.last_seq_id,
            read_seq_id: c.read_seq_id,
            unread: c.unread,
            unread_mentions: c.unread_mentions,
            group_id: group.then_some(Id(c.group_id)),
            peer_user_id: (!group).then_some(Id(c.peer_user_id)),
            peer_read_seq_id: (!group).then_some(c.peer_read_seq_id),
            last_message: c.last_message.as_ref().map(|m| frame_of(logic, m)),
            muted: c.muted,
            pinned: c.pinned,
            archived: c.archived,
        }
    }
}

/// The caller's conversations.
#[derive(Serialize, ToSchema)]
pub struct Conversations {
    conversations: Vec<ConversationEntry>,
}

#[utoipa::path(
    get,
    path = "/conversations",
    tag = "conversations",
    operation_id = "list_conversations",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's conversations, newest first", body = Conversations))
)]
pub async fn list(State(s): State<ApiState>, user: AuthUser) -> ApiResult<Json<Conversations>> {
    let conversations = s.logic.conversations(user.id).await?;
    Ok(Json(Conversations {
        conversations: conversations
            .into_iter()
            .map(|c| ConversationEntry::of(&s.logic, c))
            .collect(),
    }))
}

fn query_number(q: &HashMap<String, String>, name: &str) -> ApiResult<Option<i64>> {
    q.get(name)
        .map(|v| v.parse::<i64>().ok().filter(|n| *n >= 0))
        .map(|n| {
            n.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("{name} must be a non-negative integer"),
                )
            })
        })
        .transpose()
}

/// One entry of a history page: a message, or what stands in for one the
/// caller deleted for themself.
#[derive(Serialize)]
#[serde(untagged)]
enum HistoryEntry {
    Message(MessageFrame),
    Deleted {
        message_id: Id,
        conversation_id: String,
        seq_id: i64,
        deleted: bool,
    },
}

/// A page of history, ascending by seq.
#[derive(Serialize, ToSchema)]
pub struct HistoryPage {
    /// Message objects (docs/protocol.md §3.3); a message the caller
    /// deleted for themself is a tombstone `{"message_id","conversation_id",
    /// "seq_id","deleted":true}`.
    #[schema(value_type = Vec<Object>)]
    messages: Vec<HistoryEntry>,
    /// More messages lie beyond this page in the direction asked.
    has_more: bool,
}

#[utoipa::path(
    get,
    path = "/conversations/{cid}/messages",
    tag = "conversations",
    operation_id = "history",
    security(("bearer" = [])),
    params(
        ("cid" = String, Path, description = "A conversation id"),
        ("after_seq" = Option<i64>, Query, minimum = 0, description = "Messages with seq above this"),
        ("before_seq" = Option<i64>, Query, minimum = 0, description = "The messages just below this (the default: the newest)"),
        ("limit" = Option<i64>, Query, minimum = 0, description = "Page size, clamped to 1..=200 (default 50)"),
    ),
    responses(
        (status = 200, description = "A page of messages, ascending", body = HistoryPage),
        (status = 400, description = "A bad conversation id or parameter, an unknown parameter, or both after_seq and before_seq", body = ErrorBody),
        (status = 403, description = "The caller may not read this conversation", body = ErrorBody),
        (status = 404, description = "No such conversation", body = ErrorBody),
    )
)]
pub async fn history(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(cid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<HistoryPage>> {
    if let Some(unknown) = q
        .keys()
        .find(|k| !matches!(k.as_str(), "after_seq" | "before_seq" | "limit"))
    {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("unknown parameter {unknown}"),
        ));
    }
    let query = HistoryQuery {
        after_seq: query_number(&q, "after_seq")?,
        before_seq: query_number(&q, "before_seq")?,
        limit: query_number(&q, "limit")?,
    };
    let page = s.logic.history(user.id, &cid, query).await?;
    let messages = page
        .messages
        .iter()
        .map(|m| match page.hidden.contains(&m.message_id) {
            true => HistoryEntry::Deleted {
                message_id: Id(m.message_id),
                conversation_id: m.conversation_id.clone(),
                seq_id: m.seq_id,
                deleted: true,
            },
            false => HistoryEntry::Message(frame_of(&s.logic, m)),
        })
        .collect();
    Ok(Json(HistoryPage {
        messages,
        has_more: page.has_more,
    }))
}

/// How far the caller has read.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    /// The last seq read; the cursor never moves backwards.
    #[schema(minimum = 0)]
    seq_id: i64,
}

#[utoipa::path(
    post,
    path = "/conversations/{cid}/read",
    tag = "conversations",
    operation_id = "mark_read",
    security(("bearer" = [])),
    params(("cid" = String, Path, description = "A conversation id")),
    request_body = ReadBody,
    responses(
        (status = 204, description = "The read cursor is at seq_id or beyond"),
        (status = 400, description = "A bad conversation id or a negative seq_id", body = ErrorBody),
        (status = 403, description = "The caller may not read this conversation", body = ErrorBody),
        (status = 404, description = "No such conversation", body = ErrorBody),
    )
)]
pub async fn read(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(cid): Path<String>,
    ApiJson(body): ApiJson<ReadBody>,
) -> ApiResult<StatusCode> {
    s.logic.read(user.id, &cid, body.seq_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unread messages that mention the caller.
#[derive(Serialize, ToSchema)]
pub struct Mentions {
    /// Message objects (docs/protocol.md §3.3), newest first.
    #[schema(value_type = Vec<Object>)]
    mentions: Vec<MessageFrame>,
}

#[utoipa::path(
    get,
    path = "/mentions",
    tag = "conversations",
    operation_id = "mentions",
    security(("bearer" = [])),
    responses((status = 200, description = "Unread mentions of the caller", body = Mentions))
)]
pub async fn mentions(State(s): State<ApiState>, user: AuthUser) -> ApiResult<Json<Mentions>> {
    let stored = s.logic.mentions(user.id).await?;
    Ok(Json(Mentions {
        mentions: stored.iter().map(|m| frame_of(&s.logic, m)).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/messages",
    tag = "conversations",
    operation_id = "send_message",
    security(("bearer" = [])),
    request_body(
        content = Object,
        description = "A `send` frame without `type` (docs/protocol.md §3.2): \
            client_msg_id, to_user_id or group_id, message_type, content, metadata, mentions"
    ),
    responses(
        (status = 200, description = "The `ack` object (docs/protocol.md §3.3), also for a repeated client_msg_id", body = Object),
        (status = 400, description = "The frame breaks a rule", body = ErrorBody),
        (status = 403, description = "The caller may not send there (blocked, not a member)", body = ErrorBody),
        (status = 404, description = "No such recipient", body = ErrorBody),
        (status = 413, description = "The content is over the message size limit", body = ErrorBody),
        (status = 429, description = "Over the send rate; slow down", body = ErrorBody),
        (status = 503, description = "Code `overloaded`: the send path is saturated and the send was not taken; or code `internal`: a dependency is unreachable. Either way resend the same client_msg_id after `Retry-After`", body = ErrorBody),
    )
)]
pub async fn send(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(frame): ApiJson<SendFrame>,
) -> ApiResult<Json<AckFrame>> {
    Ok(Json(s.sends.send(user.id, frame, None).await?))
}

/// Who has read a message (PROTOCOL v1.1 §6.4).
#[derive(Serialize, ToSchema)]
pub struct ReadReceipts {
    /// Participants other than the sender who have read it.
    read_count: i64,
    /// Who, by id; absent in groups over `logic.receipt_list_max` members.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    read_by: Option<Vec<Id>>,
}

#[utoipa::path(
    get,
    path = "/conversations/{cid}/messages/{message_id}/reads",
    tag = "conversations",
    operation_id = "read_receipts",
    security(("bearer" = [])),
    params(
        ("cid" = String, Path, description = "A conversation id"),
        ("message_id" = String, Path, description = "A message of it"),
    ),
    responses(
        (status = 200, description = "The read count, and who (up to the limit)", body = ReadReceipts),
        (status = 403, description = "The caller may not read this conversation", body = ErrorBody),
        (status = 404, description = "No such conversation or message", body = ErrorBody),
    )
)]
pub async fn reads(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((cid, message_id)): Path<(String, String)>,
) -> ApiResult<Json<ReadReceipts>> {
    let message_id = parse_id(&message_id, "message_id")?;
    let reads = s.logic.reads(user.id, &cid, message_id).await?;
    Ok(Json(ReadReceipts {
        read_count: reads.read_count,
        read_by: reads.read_by,
    }))
}

/// Settings to change; those left out stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    muted: Option<bool>,
    pinned: Option<bool>,
    archived: Option<bool>,
}

/// The caller's settings of a conversation.
#[derive(Serialize, ToSchema)]
pub struct Settings {
    conversation_id: String,
    muted: bool,
    pinned: bool,
    archived: bool,
}

#[utoipa::path(
    put,
    path = "/conversations/{cid}/settings",
    tag = "conversations",
    operation_id = "conversation_settings",
    security(("bearer" = [])),
    params(("cid" = String, Path, description = "A conversation id")),
    request_body = SettingsBody,
    responses(
        (status = 200, description = "The settings now; the caller's other devices get a `conversation_settings` frame", body = Settings),
        (status = 400, description = "A bad conversation id or body", body = ErrorBody),
        (status = 403, description = "The caller is not in this conversation", body = ErrorBody),
        (status = 404, description = "No such conversation", body = ErrorBody),
    )
)]
pub async fn settings(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(cid): Path<String>,
    ApiJson(body): ApiJson<SettingsBody>,
) -> ApiResult<Json<Settings>> {
    let change = SettingsChange {
        muted: body.muted,
        pinned: body.pinned,
        archived: body.archived,
    };
    let now = s
        .logic
        .update_settings(user.id, &user.claims.did, &cid, change)
        .await?;
    Ok(Json(Settings {
        conversation_id: now.conversation_id,
        muted: now.muted,
        pinned: now.pinned,
        archived: now.archived,
    }))
}

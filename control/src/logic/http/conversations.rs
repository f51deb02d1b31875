//! Conversations, history pulls, read cursors, mentions and `POST /messages`
//! over REST: parse, call [`Logic`](crate::logic::Logic), shape the JSON.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use gochat_proto::frames::{AckFrame, ErrorCode, SendFrame};
use gochat_proto::ids::Id;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{ApiJson, AuthUser};
use super::{ApiError, ApiResult, ApiState};
use crate::logic::{HistoryQuery, message_frame};
use crate::repo::ConversationSummary;

fn summary_json(c: &ConversationSummary) -> Value {
    let mut v = json!({
        "conversation_id": c.conversation_id,
        "type": c.kind,
        "name": c.name,
        "last_seq_id": c.last_seq_id,
        "read_seq_id": c.read_seq_id,
        "unread": c.unread,
        "unread_mentions": c.unread_mentions,
    });
    if c.kind == "group" {
        v["group_id"] = json!(Id(c.group_id));
    } else {
        v["peer_user_id"] = json!(Id(c.peer_user_id));
        v["peer_read_seq_id"] = json!(c.peer_read_seq_id);
    }
    if let Some(m) = &c.last_message {
        v["last_message"] = json!(message_frame(m));
    }
    v
}

pub async fn list(State(s): State<ApiState>, user: AuthUser) -> ApiResult<Json<Value>> {
    let conversations = s.logic.conversations(user.id).await?;
    Ok(Json(
        json!({"conversations": conversations.iter().map(summary_json).collect::<Vec<_>>()}),
    ))
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

pub async fn history(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(cid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
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
    let messages = s.logic.history(user.id, &cid, query).await?;
    let frames: Vec<_> = messages.messages.iter().map(message_frame).collect();
    Ok(Json(
        json!({"messages": frames, "has_more": messages.has_more}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    seq_id: i64,
}

pub async fn read(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(cid): Path<String>,
    ApiJson(body): ApiJson<ReadBody>,
) -> ApiResult<StatusCode> {
    s.logic.read(user.id, &cid, body.seq_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn mentions(State(s): State<ApiState>, user: AuthUser) -> ApiResult<Json<Value>> {
    let mentions: Vec<_> = s
        .logic
        .mentions(user.id)
        .await?
        .iter()
        .map(message_frame)
        .collect();
    Ok(Json(json!({"mentions": mentions})))
}

pub async fn send(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(frame): ApiJson<SendFrame>,
) -> ApiResult<Json<AckFrame>> {
    Ok(Json(s.logic.send(user.id, frame, None).await?))
}

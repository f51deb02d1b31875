//! Message search over REST (PROTOCOL v1.1): parse, call
//! [`Logic`](crate::logic::Logic), shape the JSON. The rules are in
//! `logic/search.rs`, the index in `repo/sql/search.rs`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use gochat_proto::frames::MessageFrame;
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::AuthUser;
use super::frame_of;
use super::{ApiResult, ApiState, ErrorBody};
use crate::logic::{LogicError, MessageSearch};

/// What was found.
#[derive(Serialize, ToSchema)]
pub struct Found {
    /// Message objects (docs/protocol.md §3.3), newest first; an edited
    /// message with its latest text.
    #[schema(value_type = Vec<Object>)]
    messages: Vec<MessageFrame>,
}

#[utoipa::path(
    get,
    path = "/search/messages",
    tag = "conversations",
    operation_id = "search_messages",
    security(("bearer" = [])),
    params(
        ("q" = String, Query, description = "The words to find, all of them, case-insensitively (CJK text by character pairs); 1 to 200 characters"),
        ("conversation_id" = Option<String>, Query, description = "Only in this conversation"),
        ("limit" = Option<u32>, Query, description = "1 to 100 (default 20)"),
    ),
    responses(
        (status = 200, description = "Text messages holding every word, from the conversations the caller is in; recalled ones and those the caller deleted are left out", body = Found),
        (status = 400, description = "No word in q, or a limit out of range", body = ErrorBody),
        (status = 403, description = "conversation_id names a conversation the caller is not in", body = ErrorBody),
    )
)]
pub async fn search_messages(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(mut params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Found>> {
    // A query string is read by hand, like the other handlers', so that a
    // bad one gets the API's error body rather than the extractor's text.
    let limit = match params.get("limit") {
        None => None,
        Some(raw) => Some(
            raw.parse()
                .map_err(|_| LogicError::BadRequest("limit: 1 to 100".into()))?,
        ),
    };
    let search = MessageSearch {
        q: params.remove("q").unwrap_or_default(),
        conversation_id: params.remove("conversation_id"),
        limit,
    };
    let stored = s.logic.search_messages(user.id, &search).await?;
    Ok(Json(Found {
        messages: stored.iter().map(|m| frame_of(&s.logic, m)).collect(),
    }))
}

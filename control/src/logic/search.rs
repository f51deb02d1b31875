//! Message search (PROTOCOL v1.1 `GET /search/messages`): what a search may
//! ask, and that it only ever looks where the caller may read.

use gochat_proto::ids::Id;

use super::{Logic, LogicError, LogicResult};
use crate::repo::StoredMessage;

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;
/// The longest query, in characters.
const MAX_QUERY_CHARS: usize = 200;

/// A search.
#[derive(Debug, Default)]
pub struct MessageSearch {
    /// The words to find (all of them).
    pub q: String,
    /// Only in this conversation.
    pub conversation_id: Option<String>,
    /// At most this many (1 to 100; default 20).
    pub limit: Option<u32>,
}

impl Logic {
    /// Text messages holding every word of the query, newest first, from
    /// the conversations the caller is in.
    pub async fn search_messages(
        &self,
        me: Id,
        search: &MessageSearch,
    ) -> LogicResult<Vec<StoredMessage>> {
        let q = search.q.trim();
        if q.is_empty()
            || q.chars().count() > MAX_QUERY_CHARS
            || !q.chars().any(char::is_alphanumeric)
        {
            return Err(LogicError::BadRequest(
                "q: 1 to 200 characters holding at least one word".into(),
            ));
        }
        let limit = search.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(LogicError::BadRequest("limit: 1 to 100".into()));
        }
        if let Some(cid) = &search.conversation_id {
            self.authorize_conversation(me, cid).await?;
        }
        Ok(self
            .repo
            .search_messages(me.0, q, search.conversation_id.as_deref(), limit)
            .await?)
    }
}

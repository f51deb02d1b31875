//! Messages, conversations, read cursors and mentions.
//!
//! `store_message` is the durability point of the pipeline: in one transaction it
//! raises the conversation's seq high-water mark (locking its row, which
//! serialises writers of one conversation) and takes the new mark as the
//! message's seq, inserts the message under its two unique keys and indexes
//! mentions. A unique-key clash is a duplicate: the (sender, client_msg_id)
//! lookup finds the original.

use std::collections::HashMap;

use gochat_proto::frames::MessageType;
use sqlx::any::AnyRow;

use super::batch::MAX_REPLAYS;
use super::{SqlRepo, clamp_limit, get, get_text, map_err};
use async_trait::async_trait;

use crate::repo::{
    ConversationInfo, ConversationSettings, ConversationSummary, MessageRepo, Messages, Page,
    RepoError, RepoResult, SettingsPatch, StoreOutcome, StoredMessage,
};

/// (sender, client_msg_id) keys per de-duplication query.
const KEYS_PER_LOOKUP: usize = 200;

/// The columns a message is inserted with.
macro_rules! inserted_columns {
    () => {
        "id, conversation_id, seq_id, sender_id, to_user_id, group_id, \
         message_type, content, metadata, mentions, client_msg_id, created_at"
    };
}
pub(super) const MESSAGE_COLUMNS: &str = inserted_columns!();
/// The columns a message is read with: the inserted ones and what changes
/// to it set later.
pub(super) const SELECT_COLUMNS: &str = concat!(inserted_columns!(), ", edited_at, recalled");
/// The type codes of change entries (edits, recalls): not messages of their
/// own, so never unread.
const CHANGE_CODES: &str = "10, 11";

/// Seed 003's numeric message types.
pub(super) fn type_code(name: &str) -> RepoResult<i32> {
    Ok(match MessageType::parse(name) {
        Some(MessageType::Text) => 1,
        Some(MessageType::Image) => 2,
        Some(MessageType::File) => 3,
        Some(MessageType::Location) => 4,
        Some(MessageType::SystemGroup) => 100,
        Some(MessageType::System) => 101,
        Some(MessageType::Edit) => 10,
        Some(MessageType::Recall) => 11,
        None => return Err(RepoError::Invalid(format!("unknown message type {name}"))),
    })
}

fn type_name(code: i32) -> &'static str {
    match code {
        2 => "image",
        3 => "file",
        4 => "location",
        10 => "edit",
        11 => "recall",
        100 => "system_group",
        101 => "system",
        _ => "text",
    }
}

pub(super) fn message_from_row(row: &AnyRow) -> RepoResult<StoredMessage> {
    let mentions: String = get_text(row, "mentions")?;
    Ok(StoredMessage {
        message_id: get(row, "id")?,
        conversation_id: get_text(row, "conversation_id")?,
        seq_id: get(row, "seq_id")?,
        from_user_id: get(row, "sender_id")?,
        to_user_id: get(row, "to_user_id")?,
        group_id: get(row, "group_id")?,
        message_type: type_name(get(row, "message_type")?).to_owned(),
        content: get_text(row, "content")?,
        metadata_json: get_text(row, "metadata")?,
        mentions: serde_json::from_str(&mentions).unwrap_or_default(),
        client_msg_id: get_text(row, "client_msg_id")?,
        timestamp: get(row, "created_at")?,
        edited_at: get(row, "edited_at")?,
        recalled: get::<i32>(row, "recalled")? != 0,
    })
}

fn conversation_from_row(row: &AnyRow) -> RepoResult<ConversationInfo> {
    let kind: i32 = get(row, "kind")?;
    Ok(ConversationInfo {
        conversation_id: get_text(row, "conversation_id")?,
        kind: if kind == 2 { "group" } else { "single" }.to_owned(),
        user_low: get(row, "user_low")?,
        user_high: get(row, "user_high")?,
        group_id: get(row, "group_id")?,
        last_seq_id: get(row, "last_seq_id")?,
    })
}

#[async_trait]
impl MessageRepo for SqlRepo {
    async fn find_messages(
        &self,
        keys: &[(i64, String)],
    ) -> RepoResult<Vec<Option<StoredMessage>>> {
        let mut found: HashMap<(i64, String), StoredMessage> = HashMap::new();
        for chunk in keys.chunks(KEYS_PER_LOOKUP) {
            let wanted = vec!["(sender_id = ? AND client_msg_id = ?)"; chunk.len()].join(" OR ");
            let sql = format!("SELECT {SELECT_COLUMNS} FROM messages WHERE {wanted}");
            let mut query = sqlx::query(&sql);
            for (sender, client_msg_id) in chunk {
                query = query.bind(*sender).bind(client_msg_id.clone());
            }
            for row in query.fetch_all(&self.pool).await.map_err(map_err)? {
                let m = message_from_row(&row)?;
                found.insert((m.from_user_id, m.client_msg_id.clone()), m);
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn store_messages(&self, messages: &[StoredMessage]) -> RepoResult<Vec<StoreOutcome>> {
        self.store_batch(messages).await
    }

    async fn get_conversation(
        &self,
        conversation_id: &str,
    ) -> RepoResult<Option<ConversationInfo>> {
        sqlx::query(
            "SELECT conversation_id, kind, user_low, user_high, group_id, last_seq_id FROM conversations WHERE conversation_id = ?",
        )
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(conversation_from_row)
        .transpose()
    }

    async fn list_messages(
        &self,
        conversation_id: &str,
        page: Page,
        limit: u32,
    ) -> RepoResult<Messages> {
        let limit = clamp_limit(limit, 200);
        let (sql, bound) = match page {
            Page::After(n) => ("seq_id > ? ORDER BY seq_id ASC", n),
            Page::Before(n) => ("seq_id < ? ORDER BY seq_id DESC", n),
        };
        let rows = sqlx::query(&format!(
            "SELECT {SELECT_COLUMNS} FROM messages WHERE conversation_id = ? AND {sql} LIMIT ?"
        ))
        .bind(conversation_id)
        .bind(bound)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let has_more = rows.len() as i64 > limit;
        let mut messages = rows
            .iter()
            .take(limit as usize)
            .map(message_from_row)
            .collect::<RepoResult<Vec<_>>>()?;
        if matches!(page, Page::Before(_)) {
            messages.reverse();
        }
        Ok(Messages { messages, has_more })
    }

    async fn list_conversations(&self, user_id: i64) -> RepoResult<Vec<ConversationSummary>> {
        let rows = sqlx::query(&format!(
            "SELECT c.conversation_id, c.kind, c.user_low, c.user_high, c.group_id, c.last_seq_id, c.last_message_id, \
             uc.read_seq_id, \
             (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.conversation_id AND m.seq_id > uc.read_seq_id AND m.sender_id <> ? AND m.message_type NOT IN ({CHANGE_CODES})) AS unread, \
             (SELECT COUNT(*) FROM message_mentions mm WHERE mm.conversation_id = c.conversation_id AND mm.seq_id > uc.read_seq_id \
                AND mm.sender_id <> ? AND (mm.mentioned_user_id = ? OR mm.mentioned_user_id = 0)) AS unread_mentions, \
             CASE WHEN c.kind = 2 THEN COALESCE(g.name, '') WHEN u.nickname <> '' THEN u.nickname ELSE COALESCE(u.username, '') END AS name, \
             COALESCE(puc.read_seq_id, 0) AS peer_read_seq_id, uc.muted, uc.pinned, uc.archived \
             FROM user_conversations uc JOIN conversations c ON c.conversation_id = uc.conversation_id \
             LEFT JOIN `groups` g ON c.kind = 2 AND g.id = c.group_id \
             LEFT JOIN users u ON c.kind = 1 AND u.id = (CASE WHEN c.user_low = ? THEN c.user_high ELSE c.user_low END) \
             LEFT JOIN user_conversations puc ON c.kind = 1 AND puc.conversation_id = c.conversation_id \
               AND puc.user_id = (CASE WHEN c.user_low = ? THEN c.user_high ELSE c.user_low END) \
             WHERE uc.user_id = ? ORDER BY uc.pinned DESC, c.updated_at DESC LIMIT 500",
        ))
        .bind(user_id)
        .bind(user_id)
        .bind(user_id)
        .bind(user_id)
        .bind(user_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let info = conversation_from_row(row)?;
            let last_message_id: i64 = get(row, "last_message_id")?;
            let last_message = if last_message_id == 0 {
                None
            } else {
                self.message_by_id(last_message_id).await?
            };
            let peer = if info.user_low == user_id {
                info.user_high
            } else {
                info.user_low
            };
            let name: String = get_text(row, "name")?;
            out.push(ConversationSummary {
                peer_user_id: if info.kind == "single" { peer } else { 0 },
                group_id: info.group_id,
                name: if name.is_empty() && info.kind == "single" && peer == 0 {
                    "System".into()
                } else {
                    name
                },
                last_seq_id: info.last_seq_id,
                read_seq_id: get(row, "read_seq_id")?,
                peer_read_seq_id: get(row, "peer_read_seq_id")?,
                muted: get::<i32>(row, "muted")? != 0,
                pinned: get::<i32>(row, "pinned")? != 0,
                archived: get::<i32>(row, "archived")? != 0,
                unread: get(row, "unread")?,
                unread_mentions: get(row, "unread_mentions")?,
                last_message,
                kind: info.kind,
                conversation_id: info.conversation_id,
            });
        }
        Ok(out)
    }

    async fn mark_delivered(
        &self,
        user_id: i64,
        conversation_id: &str,
        seq_id: i64,
    ) -> RepoResult<()> {
        self.raise_cursor("delivered_seq_id", user_id, conversation_id, seq_id)
            .await
    }

    async fn mark_read(&self, user_id: i64, conversation_id: &str, seq_id: i64) -> RepoResult<i64> {
        self.raise_cursor("read_seq_id", user_id, conversation_id, seq_id)
            .await?;
        let row = sqlx::query(
            "SELECT read_seq_id FROM user_conversations WHERE user_id = ? AND conversation_id = ?",
        )
        .bind(user_id)
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .ok_or_else(|| {
            RepoError::NotFound(format!("conversation {conversation_id} of user {user_id}"))
        })?;
        get(&row, "read_seq_id")
    }

    async fn search_messages(
        &self,
        user_id: i64,
        query: &str,
        conversation_id: Option<&str>,
        limit: u32,
    ) -> RepoResult<Vec<StoredMessage>> {
        self.find_by_terms(user_id, query, conversation_id, limit)
            .await
    }

    async fn list_mentions(&self, user_id: i64) -> RepoResult<Vec<StoredMessage>> {
        sqlx::query(&format!(
            "SELECT {} FROM message_mentions mm JOIN messages m ON m.id = mm.message_id \
             JOIN user_conversations uc ON uc.conversation_id = mm.conversation_id AND uc.user_id = ? \
             WHERE (mm.mentioned_user_id = ? OR mm.mentioned_user_id = 0) AND mm.seq_id > uc.read_seq_id AND mm.sender_id <> ? \
             ORDER BY m.created_at DESC, m.id DESC LIMIT 200",
            SELECT_COLUMNS.split(", ").map(|c| format!("m.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .bind(user_id)
        .bind(user_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(message_from_row)
        .collect()
    }

    async fn read_receipts(
        &self,
        conversation_id: &str,
        seq_id: i64,
        sender_id: i64,
        limit: u32,
    ) -> RepoResult<(i64, Vec<i64>)> {
        // Members' rows leave with them, so the rows are the participants now.
        const READERS: &str = "FROM user_conversations WHERE conversation_id = ? AND read_seq_id >= ? AND user_id <> ?";
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {READERS}"))
            .bind(conversation_id)
            .bind(seq_id)
            .bind(sender_id)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        let readers: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT user_id {READERS} ORDER BY user_id LIMIT ?"
        ))
        .bind(conversation_id)
        .bind(seq_id)
        .bind(sender_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok((count, readers))
    }

    async fn update_settings(&self, patch: &SettingsPatch) -> RepoResult<ConversationSettings> {
        self.set_settings(patch).await
    }

    async fn get_settings(
        &self,
        user_id: i64,
        conversation_id: &str,
    ) -> RepoResult<Option<ConversationSettings>> {
        self.settings_of(user_id, conversation_id).await
    }

    async fn get_message(&self, message_id: i64) -> RepoResult<Option<StoredMessage>> {
        self.message_by_id(message_id).await
    }

    async fn hide_message(&self, user_id: i64, message_id: i64) -> RepoResult<()> {
        self.hide(user_id, message_id).await
    }

    async fn hidden_among(&self, user_id: i64, message_ids: &[i64]) -> RepoResult<Vec<i64>> {
        self.hidden(user_id, message_ids).await
    }
}

impl SqlRepo {
    /// One message of a batch that clashed, on its own: stored, or
    /// classified as a duplicate (its original) or a taken seq (the mark).
    pub(super) async fn store_one(&self, m: &StoredMessage, code: i32) -> RepoResult<StoreOutcome> {
        let mut replays = 0;
        loop {
            match self.insert_batch(std::slice::from_ref(m), &[code]).await {
                Err(RepoError::Conflict(clash)) => {
                    return match self.find_message(m.from_user_id, &m.client_msg_id).await? {
                        Some(original) => Ok(StoreOutcome::Duplicate(original)),
                        // Seqs are claimed under the conversation's row lock, so
                        // any other clash means the stored data is broken.
                        None => Err(RepoError::Internal(
                            format!("message clashes with a stored one: {clash}").into(),
                        )),
                    };
                }
                // Deadlocks and lock timeouts roll the transaction back: replay it.
                Err(e) if e.is_retryable() && replays < MAX_REPLAYS => replays += 1,
                Err(e) => return Err(e),
                Ok(mut stored) => {
                    return stored
                        .pop()
                        .map(StoreOutcome::Stored)
                        .ok_or_else(|| RepoError::Internal("nothing stored".into()));
                }
            }
        }
    }
}

//! Group commit: a batch of messages in one transaction — one multi-row
//! insert for the messages and one for their mentions, one high-water update
//! per conversation, one read-cursor update per (sender, conversation) — so
//! a send path that works in batches pays one commit (one fsync) per batch,
//! not per message. A batch that clashes with what is stored (a duplicate, a
//! seq taken) is rolled back and stored message by message, which classifies
//! each one; nothing is half stored.

use std::collections::{BTreeMap, BTreeSet};

use gochat_proto::ids::{ConversationRef, parse_conversation_id};
use sqlx::{Any, Transaction};

use super::messages::{MESSAGE_COLUMNS, type_code};
use super::{SqlRepo, map_err, placeholders};
use crate::repo::{RepoError, RepoResult, StoreOutcome, StoredMessage};

/// Rows per INSERT statement: far below SQLite's and MySQL's placeholder
/// limits (32,766 and 65,535) at 12 columns a row.
const ROWS_PER_INSERT: usize = 256;
/// Deadlocks and lock timeouts roll a transaction back; replaying it is safe.
const MAX_REPLAYS: usize = 5;

/// The newest message of one conversation in a batch.
struct Top {
    seq_id: i64,
    message_id: i64,
    timestamp: i64,
}

impl SqlRepo {
    /// Stores `messages` (see [`MessageRepo::store_messages`](crate::repo::MessageRepo::store_messages)).
    pub(super) async fn store_batch(
        &self,
        messages: &[StoredMessage],
    ) -> RepoResult<Vec<StoreOutcome>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut codes = Vec::with_capacity(messages.len());
        for m in messages {
            if m.seq_id < 1 {
                return Err(RepoError::Invalid("seq_id starts at 1".into()));
            }
            codes.push(type_code(&m.message_type)?);
        }
        self.ensure_conversations(messages).await?;
        let mut replays = 0;
        loop {
            match self.insert_batch(messages, &codes).await {
                Ok(()) => return Ok(messages.iter().cloned().map(StoreOutcome::Stored).collect()),
                Err(RepoError::Conflict(_)) => {
                    let mut outcomes = Vec::with_capacity(messages.len());
                    for (m, code) in messages.iter().zip(&codes) {
                        outcomes.push(self.store_one(m, *code).await?);
                    }
                    return Ok(outcomes);
                }
                Err(e) if e.is_retryable() && replays < MAX_REPLAYS => replays += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Every conversation of the batch exists afterwards: 1:1 conversations
    /// are created on their first message; a missing group conversation is
    /// an error (groups create theirs).
    async fn ensure_conversations(&self, messages: &[StoredMessage]) -> RepoResult<()> {
        let ids: BTreeSet<&str> = messages
            .iter()
            .map(|m| m.conversation_id.as_str())
            .collect();
        let ids: Vec<&str> = ids.into_iter().collect();
        let sql = format!(
            "SELECT conversation_id FROM conversations WHERE conversation_id IN ({})",
            placeholders(ids.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for id in &ids {
            query = query.bind(*id);
        }
        let known: BTreeSet<String> = query
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .into_iter()
            .collect();
        for id in ids.iter().filter(|id| !known.contains(**id)) {
            let Some(first) = messages.iter().find(|m| m.conversation_id == *id) else {
                continue;
            };
            match parse_conversation_id(id) {
                Some(ConversationRef::Single) => self.ensure_single_conversation(first).await?,
                _ => return Err(RepoError::NotFound(format!("conversation {id}"))),
            }
        }
        Ok(())
    }

    /// The batch in one transaction; `Conflict` if any row clashes.
    pub(super) async fn insert_batch(
        &self,
        messages: &[StoredMessage],
        codes: &[i32],
    ) -> RepoResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Conversation rows first, in id order: writers of one conversation
        // queue on its row, and a fixed order keeps two batches from deadlocking.
        let mut tops: BTreeMap<&str, Top> = BTreeMap::new();
        let mut cursors: BTreeMap<(i64, &str), i64> = BTreeMap::new();
        for m in messages {
            let top = tops.entry(&m.conversation_id).or_insert(Top {
                seq_id: 0,
                message_id: 0,
                timestamp: 0,
            });
            if m.seq_id > top.seq_id {
                *top = Top {
                    seq_id: m.seq_id,
                    message_id: m.message_id,
                    timestamp: m.timestamp,
                };
            }
            let cursor = cursors
                .entry((m.from_user_id, &m.conversation_id))
                .or_default();
            *cursor = (*cursor).max(m.seq_id);
        }
        for (conversation_id, top) in &tops {
            // last_message_id first: MySQL evaluates SET left to right.
            sqlx::query(
                "UPDATE conversations SET last_message_id = CASE WHEN last_seq_id < ? THEN ? ELSE last_message_id END, \
                 last_seq_id = CASE WHEN last_seq_id < ? THEN ? ELSE last_seq_id END, updated_at = ? \
                 WHERE conversation_id = ?",
            )
            .bind(top.seq_id)
            .bind(top.message_id)
            .bind(top.seq_id)
            .bind(top.seq_id)
            .bind(top.timestamp)
            .bind(*conversation_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        insert_messages(&mut tx, messages, codes).await?;
        insert_mentions(&mut tx, messages).await?;
        // The sender has read what they wrote.
        for ((sender, conversation_id), seq_id) in &cursors {
            sqlx::query(
                "UPDATE user_conversations SET read_seq_id = CASE WHEN read_seq_id < ? THEN ? ELSE read_seq_id END \
                 WHERE user_id = ? AND conversation_id = ?",
            )
            .bind(*seq_id)
            .bind(*seq_id)
            .bind(*sender)
            .bind(*conversation_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
}

async fn insert_messages(
    tx: &mut Transaction<'static, Any>,
    messages: &[StoredMessage],
    codes: &[i32],
) -> RepoResult<()> {
    let rows: Vec<(&StoredMessage, i32)> = messages.iter().zip(codes.iter().copied()).collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values = vec![format!("({})", placeholders(12)); chunk.len()].join(", ");
        let sql = format!("INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES {values}");
        let mut query = sqlx::query(&sql);
        for (m, code) in chunk {
            let mentions = serde_json::to_string(&m.mentions)
                .map_err(|e| RepoError::Invalid(e.to_string()))?;
            query = query
                .bind(m.message_id)
                .bind(m.conversation_id.clone())
                .bind(m.seq_id)
                .bind(m.from_user_id)
                .bind(m.to_user_id)
                .bind(m.group_id)
                .bind(*code)
                .bind(m.content.clone())
                .bind(m.metadata_json.clone())
                .bind(mentions)
                .bind(m.client_msg_id.clone())
                .bind(m.timestamp);
        }
        query.execute(&mut **tx).await.map_err(map_err)?;
    }
    Ok(())
}

async fn insert_mentions(
    tx: &mut Transaction<'static, Any>,
    messages: &[StoredMessage],
) -> RepoResult<()> {
    // "all" is stored as user 0: one row, whatever the group's size.
    let rows: Vec<(&StoredMessage, i64)> = messages
        .iter()
        .flat_map(|m| {
            m.mentions.iter().filter_map(move |x| match x.as_str() {
                "all" => Some((m, 0)),
                id => id.parse::<i64>().ok().filter(|n| *n >= 0).map(|n| (m, n)),
            })
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values = vec![format!("({})", placeholders(5)); chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO message_mentions (message_id, conversation_id, seq_id, sender_id, mentioned_user_id) VALUES {values}"
        );
        let mut query = sqlx::query(&sql);
        for (m, target) in chunk {
            query = query
                .bind(m.message_id)
                .bind(m.conversation_id.clone())
                .bind(m.seq_id)
                .bind(m.from_user_id)
                .bind(*target);
        }
        query.execute(&mut **tx).await.map_err(map_err)?;
    }
    Ok(())
}

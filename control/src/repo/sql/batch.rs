//! Group commit: a batch of messages in one transaction — one multi-row
//! insert for the messages and one for their mentions, one update raising
//! the high-water marks of all its conversations, one moving the senders'
//! read cursors (per chunk of a few hundred rows each) — so
//! a send path that works in batches pays one commit (one fsync) per batch,
//! not per message. A batch that clashes with what is stored (a duplicate, a
//! seq taken) is rolled back and stored message by message, which classifies
//! each one; nothing is half stored.

use std::collections::{BTreeMap, BTreeSet};

use gochat_proto::ids::{ConversationRef, now_millis, parse_conversation_id};
use sqlx::{Any, Transaction};

use super::messages::{MESSAGE_COLUMNS, type_code};
use super::{SqlRepo, map_err, placeholders};
use crate::repo::{RepoError, RepoResult, StoreOutcome, StoredMessage};

/// Rows per INSERT statement: far below SQLite's and MySQL's placeholder
/// limits (32,766 and 65,535) at 12 columns a row.
const ROWS_PER_INSERT: usize = 256;
/// Rows per CASE update: at most 9 placeholders a row.
const ROWS_PER_UPDATE: usize = 200;
/// Deadlocks and lock timeouts roll a transaction back; replaying it is safe.
pub(super) const MAX_REPLAYS: usize = 5;

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
        let mut new_singles = Vec::new();
        for id in ids.iter().filter(|id| !known.contains(**id)) {
            let Some(first) = messages.iter().find(|m| m.conversation_id == *id) else {
                continue;
            };
            match parse_conversation_id(id) {
                Some(ConversationRef::Single) => new_singles.push((
                    first.conversation_id.as_str(),
                    first.from_user_id.min(first.to_user_id),
                    first.from_user_id.max(first.to_user_id),
                )),
                _ => return Err(RepoError::NotFound(format!("conversation {id}"))),
            }
        }
        for chunk in new_singles.chunks(ROWS_PER_INSERT) {
            self.create_single_conversations(chunk).await?;
        }
        Ok(())
    }

    /// New 1:1 conversations (id, low user, high user) and both participants'
    /// rows; ones that appeared meanwhile are left as they are.
    async fn create_single_conversations(&self, new: &[(&str, i64, i64)]) -> RepoResult<()> {
        let now = now_millis();
        let ignore = self.dialect.insert_ignore();
        let values = vec!["(?, 1, ?, ?, 0, 0, 0, ?)"; new.len()].join(", ");
        let sql = format!(
            "{ignore} INTO conversations (conversation_id, kind, user_low, user_high, group_id, last_seq_id, last_message_id, updated_at) VALUES {values}"
        );
        let mut conversations = sqlx::query(&sql);
        for (id, low, high) in new {
            conversations = conversations.bind(*id).bind(*low).bind(*high).bind(now);
        }
        conversations.execute(&self.pool).await.map_err(map_err)?;
        let values = vec!["(?, ?, 0, ?)"; new.len() * 2].join(", ");
        let sql = format!(
            "{ignore} INTO user_conversations (user_id, conversation_id, read_seq_id, created_at) VALUES {values}"
        );
        let mut participants = sqlx::query(&sql);
        for (id, low, high) in new {
            for user in [low, high] {
                participants = participants.bind(*user).bind(*id).bind(now);
            }
        }
        participants.execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    /// The batch in one transaction; `Conflict` if any row clashes.
    pub(super) async fn insert_batch(
        &self,
        messages: &[StoredMessage],
        codes: &[i32],
    ) -> RepoResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Conversation rows first: writers of one conversation queue on its
        // row, and the update takes the rows in key order, so two batches
        // queue rather than deadlock (a deadlock is replayed anyway).
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
        raise_high_water(&mut tx, &tops).await?;
        insert_messages(&mut tx, messages, codes).await?;
        insert_mentions(&mut tx, messages).await?;
        // The sender has read what they wrote.
        advance_read_cursors(&mut tx, &cursors).await?;
        tx.commit().await.map_err(map_err)
    }
}

/// Raises each conversation's high-water mark (and its last message) to the
/// batch's newest, in one statement per chunk: never lowers it.
async fn raise_high_water(
    tx: &mut Transaction<'static, Any>,
    tops: &BTreeMap<&str, Top>,
) -> RepoResult<()> {
    let tops: Vec<(&&str, &Top)> = tops.iter().collect();
    for chunk in tops.chunks(ROWS_PER_UPDATE) {
        let raise = "WHEN conversation_id = ? AND last_seq_id < ? THEN ? ".repeat(chunk.len());
        let touch = "WHEN conversation_id = ? THEN ? ".repeat(chunk.len());
        // last_message_id first: MySQL evaluates SET left to right, so it
        // must still see the old last_seq_id.
        let sql = format!(
            "UPDATE conversations SET last_message_id = CASE {raise}ELSE last_message_id END, \
             last_seq_id = CASE {raise}ELSE last_seq_id END, updated_at = CASE {touch}ELSE updated_at END \
             WHERE conversation_id IN ({})",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for (cid, top) in chunk {
            query = query.bind(**cid).bind(top.seq_id).bind(top.message_id);
        }
        for (cid, top) in chunk {
            query = query.bind(**cid).bind(top.seq_id).bind(top.seq_id);
        }
        for (cid, top) in chunk {
            query = query.bind(**cid).bind(top.timestamp);
        }
        for (cid, _) in chunk {
            query = query.bind(**cid);
        }
        query.execute(&mut **tx).await.map_err(map_err)?;
    }
    Ok(())
}

/// Moves each (sender, conversation) read cursor up to the sender's newest
/// message of the batch, in one statement per chunk: never back.
async fn advance_read_cursors(
    tx: &mut Transaction<'static, Any>,
    cursors: &BTreeMap<(i64, &str), i64>,
) -> RepoResult<()> {
    let cursors: Vec<(&(i64, &str), &i64)> = cursors.iter().collect();
    for chunk in cursors.chunks(ROWS_PER_UPDATE) {
        let advance = "WHEN user_id = ? AND conversation_id = ? AND read_seq_id < ? THEN ? "
            .repeat(chunk.len());
        let rows = vec!["(user_id = ? AND conversation_id = ?)"; chunk.len()].join(" OR ");
        let sql = format!(
            "UPDATE user_conversations SET read_seq_id = CASE {advance}ELSE read_seq_id END WHERE {rows}"
        );
        let mut query = sqlx::query(&sql);
        for ((user, cid), seq) in chunk {
            query = query.bind(*user).bind(*cid).bind(**seq).bind(**seq);
        }
        for ((user, cid), _) in chunk {
            query = query.bind(*user).bind(*cid);
        }
        query.execute(&mut **tx).await.map_err(map_err)?;
    }
    Ok(())
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

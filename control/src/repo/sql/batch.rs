//! Group commit: a batch of messages in one transaction — one update
//! claiming the next seqs of all its conversations (raising their durable
//! high-water marks), one read of the marks, one multi-row insert for the
//! messages and one for their mentions, one moving the senders' read cursors
//! (per chunk of a few hundred rows each) — so a send path that works in
//! batches pays one commit (one fsync) per batch, not per message. Edits and
//! recalls change their targets in the same transaction (`changes.rs`).
//!
//! Seqs are allocated here, inside the transaction that stores their
//! messages: a seq handed out anywhere else (a counter in Redis) can outlive
//! a crash and be filled in late, after higher seqs were stored and pushed,
//! which breaks the order a client sees. A batch that clashes with what is
//! stored (a duplicate) is rolled back — its seqs with it — and stored
//! message by message, which classifies each one; nothing is half stored.

use std::collections::{BTreeMap, BTreeSet};

use gochat_proto::ids::{ConversationRef, now_millis, parse_conversation_id};
use sqlx::{Any, Transaction};

use super::changes::apply_changes;
use super::messages::{MESSAGE_COLUMNS, type_code};
use super::search::index_messages;
use super::{SqlRepo, map_err, placeholders};
use crate::repo::{RepoError, RepoResult, StoreOutcome, StoredMessage};

/// Rows per INSERT statement: far below SQLite's and MySQL's placeholder
/// limits (32,766 and 65,535) at 12 columns a row.
const ROWS_PER_INSERT: usize = 256;
/// Rows per CASE update: at most 9 placeholders a row.
const ROWS_PER_UPDATE: usize = 200;
/// Deadlocks and lock timeouts roll a transaction back; replaying it is safe.
pub(super) const MAX_REPLAYS: usize = 5;

/// One conversation's share of a batch: how many seqs it takes, and its
/// newest message (the one that gets the last of them).
struct Claim {
    count: i64,
    last_message_id: i64,
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
        let codes = messages
            .iter()
            .map(|m| type_code(&m.message_type))
            .collect::<RepoResult<Vec<_>>>()?;
        self.ensure_conversations(messages).await?;
        let mut replays = 0;
        loop {
            match self.insert_batch(messages, &codes).await {
                Ok(stored) => return Ok(stored.into_iter().map(StoreOutcome::Stored).collect()),
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

    /// The batch in one transaction, at the next seqs of its conversations,
    /// as stored; `Conflict` if any row clashes.
    pub(super) async fn insert_batch(
        &self,
        messages: &[StoredMessage],
        codes: &[i32],
    ) -> RepoResult<Vec<StoredMessage>> {
        let mut claims: BTreeMap<&str, Claim> = BTreeMap::new();
        for m in messages {
            let claim = claims.entry(&m.conversation_id).or_insert(Claim {
                count: 0,
                last_message_id: 0,
                timestamp: 0,
            });
            claim.count += 1;
            claim.last_message_id = m.message_id;
            claim.timestamp = m.timestamp;
        }
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The claim comes first: writers of one conversation queue on its
        // row lock from here to the commit, so seqs are handed out in commit
        // order. The update takes the rows in key order, so two batches queue
        // rather than deadlock (a deadlock is replayed anyway).
        claim_seqs(&mut tx, &claims).await?;
        let mut next = first_claimed_seqs(&mut tx, &claims).await?;
        let mut stored = Vec::with_capacity(messages.len());
        let mut cursors: BTreeMap<(i64, &str), i64> = BTreeMap::new();
        for original in messages {
            let cid = original.conversation_id.as_str();
            let seq = next
                .get_mut(cid)
                .ok_or_else(|| RepoError::NotFound(format!("conversation {cid}")))?;
            let mut m = original.clone();
            m.seq_id = *seq;
            *seq += 1;
            // The sender has read what they wrote.
            let cursor = cursors.entry((m.from_user_id, cid)).or_default();
            *cursor = (*cursor).max(m.seq_id);
            stored.push(m);
        }
        insert_messages(&mut tx, &stored, codes).await?;
        insert_mentions(&mut tx, &stored).await?;
        apply_changes(&mut tx, self.dialect, &stored).await?;
        index_messages(&mut tx, self.dialect, &stored, false).await?;
        advance_read_cursors(&mut tx, &cursors).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(stored)
    }
}

/// Raises each conversation's high-water mark by its count (and sets its
/// last message), in one statement per chunk.
async fn claim_seqs(
    tx: &mut Transaction<'static, Any>,
    claims: &BTreeMap<&str, Claim>,
) -> RepoResult<()> {
    let claims: Vec<(&&str, &Claim)> = claims.iter().collect();
    for chunk in claims.chunks(ROWS_PER_UPDATE) {
        let case = "WHEN conversation_id = ? THEN ? ".repeat(chunk.len());
        let sql = format!(
            "UPDATE conversations SET last_seq_id = last_seq_id + CASE {case}ELSE 0 END, \
             last_message_id = CASE {case}ELSE last_message_id END, \
             updated_at = CASE {case}ELSE updated_at END \
             WHERE conversation_id IN ({})",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for (cid, claim) in chunk {
            query = query.bind(**cid).bind(claim.count);
        }
        for (cid, claim) in chunk {
            query = query.bind(**cid).bind(claim.last_message_id);
        }
        for (cid, claim) in chunk {
            query = query.bind(**cid).bind(claim.timestamp);
        }
        for (cid, _) in chunk {
            query = query.bind(**cid);
        }
        query.execute(&mut **tx).await.map_err(map_err)?;
    }
    Ok(())
}

/// The first seq each conversation claimed: its raised mark less its count
/// plus one. Read under the claim's row locks, so nobody else moved it.
async fn first_claimed_seqs<'a>(
    tx: &mut Transaction<'static, Any>,
    claims: &BTreeMap<&'a str, Claim>,
) -> RepoResult<BTreeMap<&'a str, i64>> {
    let ids: Vec<&'a str> = claims.keys().copied().collect();
    let mut first = BTreeMap::new();
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "SELECT conversation_id, last_seq_id FROM conversations WHERE conversation_id IN ({})",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        for (id, high_water) in query.fetch_all(&mut **tx).await.map_err(map_err)? {
            if let Some((key, claim)) = claims.get_key_value(id.as_str()) {
                first.insert(*key, high_water - claim.count + 1);
            }
        }
    }
    Ok(first)
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

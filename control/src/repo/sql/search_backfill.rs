//! Indexing the messages stored before the search index existed (a
//! database from before migration 0011, which moved search onto the
//! engines' full-text indexes), in the background: newest first,
//! a batch per transaction, the position kept in `search_backfill` so a
//! restart goes on where it stopped and several repo processes share the
//! work (a step another process took first is rolled back and retried).

use std::time::Duration;

use super::messages::{SELECT_COLUMNS, message_from_row};
use super::search::index_messages;
use super::{SqlRepo, get, map_err};
use crate::repo::{RepoResult, StoredMessage};

/// Messages per step.
const BATCH: i64 = 500;
/// A pause between steps, so the backfill never crowds out live traffic.
const PAUSE: Duration = Duration::from_millis(50);

impl SqlRepo {
    /// Runs the backfill until no message is left unindexed (at once, on a
    /// database that never had any). Each step is one transaction, so
    /// dropping this future at any point loses nothing.
    pub async fn backfill_search_index(&self) {
        let mut indexed = 0;
        loop {
            match self.backfill_step(BATCH).await {
                Ok(None) => break,
                Ok(Some(n)) => indexed += n,
                Err(error) => {
                    tracing::warn!(%error, "search backfill step failed; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
            tokio::time::sleep(PAUSE).await;
        }
        if indexed > 0 {
            tracing::info!(messages = indexed, "search backfill done");
        }
    }

    /// Indexes up to `batch` messages below the kept position; `None` when
    /// there is nothing left.
    pub(super) async fn backfill_step(&self, batch: i64) -> RepoResult<Option<usize>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let row = sqlx::query("SELECT next_below FROM search_backfill WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let below: i64 = match &row {
            Some(row) => get(row, "next_below")?,
            None => 0,
        };
        if below <= 0 {
            return Ok(None);
        }
        let messages: Vec<StoredMessage> = sqlx::query(&format!(
            "SELECT {SELECT_COLUMNS} FROM messages WHERE id < ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(below)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?
        .iter()
        .map(message_from_row)
        .collect::<RepoResult<_>>()?;
        let live: Vec<StoredMessage> = messages.iter().filter(|m| !m.recalled).cloned().collect();
        index_messages(&mut tx, self.dialect, &live, true).await?;
        let next = match messages.last() {
            Some(oldest) if messages.len() as i64 == batch => oldest.message_id,
            _ => 0,
        };
        let moved = sqlx::query(
            "UPDATE search_backfill SET next_below = ? WHERE id = 1 AND next_below = ?",
        )
        .bind(next)
        .bind(below)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if moved == 0 {
            // Another repo process indexed this batch first.
            tx.rollback().await.map_err(map_err)?;
            return Ok(Some(0));
        }
        tx.commit().await.map_err(map_err)?;
        Ok(Some(messages.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::{MessageRepo, UserRepo};

    /// Messages stored, then their index lost (as before migration 0011):
    /// the backfill makes them searchable again, recalled ones excepted.
    #[tokio::test]
    async fn messages_from_before_the_index_become_searchable() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("gochat-backfill-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)?;
        let url = format!("sqlite://{}", dir.join("db.sqlite").display());
        let repo = SqlRepo::connect(&url, 1).await?;
        let alice = repo.create_user("alice", "h", "").await?.user_id;
        let bob = repo.create_user("bob", "h", "").await?.user_id;
        let cid = gochat_proto::ids::single_conversation_id(
            gochat_proto::ids::Id(alice),
            gochat_proto::ids::Id(bob),
        );
        for (n, text) in ["old apple", "older apple pie", "recalled apple"]
            .iter()
            .enumerate()
        {
            sqlx::query(
                "INSERT INTO messages (id, conversation_id, seq_id, sender_id, to_user_id, group_id, \
                 message_type, content, metadata, mentions, client_msg_id, created_at, edited_at, recalled) \
                 VALUES (?, ?, ?, ?, ?, 0, 1, ?, '{}', '', ?, ?, 0, ?)",
            )
            .bind(1000 + n as i64)
            .bind(&cid)
            .bind(n as i64 + 1)
            .bind(alice)
            .bind(bob)
            .bind(*text)
            .bind(format!("c{n}"))
            .bind(1000 + n as i64)
            .bind(i64::from(n == 2))
            .execute(&repo.pool)
            .await?;
        }
        sqlx::query("INSERT INTO user_conversations (user_id, conversation_id, created_at) VALUES (?, ?, 0)")
            .bind(bob)
            .bind(&cid)
            .execute(&repo.pool)
            .await?;
        sqlx::query("UPDATE search_backfill SET next_below = 2000")
            .execute(&repo.pool)
            .await?;
        assert!(
            repo.search_messages(bob, "apple", None, 10)
                .await?
                .is_empty()
        );
        // Two messages per step: three messages take two steps.
        assert_eq!(repo.backfill_step(2).await?, Some(2));
        assert_eq!(repo.backfill_step(2).await?, Some(1));
        assert_eq!(repo.backfill_step(2).await?, None);
        let found: Vec<i64> = repo
            .search_messages(bob, "apple", None, 10)
            .await?
            .iter()
            .map(|m| m.message_id)
            .collect();
        assert_eq!(found, [1001, 1000]);
        Ok(())
    }
}

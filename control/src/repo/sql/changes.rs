//! Version 1.1 changes to stored messages: edits and recalls applied to their
//! targets inside the transaction that stores the change entries, and
//! delete-for-me (one user's hidden messages).
//!
//! The change entry and the change to its target commit together: a reader
//! never sees a recall entry while the target still shows its content, nor
//! the reverse after a crash.

use gochat_proto::frames::MessageType;
use gochat_proto::ids::now_millis;
use serde_json::Value;
use sqlx::{Any, Transaction};

use super::messages::{SELECT_COLUMNS, message_from_row};
use super::search::reindex;
use super::{Dialect, SqlRepo, map_err, placeholders};
use crate::repo::{RepoError, RepoResult, StoredMessage, TARGET_MESSAGE_ID, TARGET_SEQ_ID};

/// Message ids per `hidden_among` query.
const IDS_PER_LOOKUP: usize = 500;

/// Applies the edits and recalls among `stored` to their targets. A target
/// recalled meanwhile is left as it is (the change was authorized against
/// what was read before the batch; the entry stays in history either way).
pub(super) async fn apply_changes(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    stored: &[StoredMessage],
) -> RepoResult<()> {
    for m in stored {
        let Some(kind) = MessageType::parse(&m.message_type).filter(|t| t.is_change()) else {
            continue;
        };
        let (target, rest) = split_target(&m.metadata_json)?;
        if kind == MessageType::Edit {
            sqlx::query(
                "UPDATE messages SET content = ?, metadata = ?, edited_at = ? \
                 WHERE id = ? AND conversation_id = ? AND recalled = 0",
            )
            .bind(m.content.clone())
            .bind(rest)
            .bind(m.timestamp)
            .bind(target)
            .bind(m.conversation_id.clone())
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
            reindex(tx, dialect, target, &m.conversation_id, Some(&m.content)).await?;
        } else {
            sqlx::query(
                "UPDATE messages SET recalled = 1, content = '', metadata = '{}' \
                 WHERE id = ? AND conversation_id = ?",
            )
            .bind(target)
            .bind(m.conversation_id.clone())
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
            // A recalled message no longer counts as an unread mention, nor
            // can it be found.
            sqlx::query("DELETE FROM message_mentions WHERE message_id = ?")
                .bind(target)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
            reindex(tx, dialect, target, &m.conversation_id, None).await?;
        }
    }
    Ok(())
}

/// A change entry's target id, and its metadata without the target keys
/// (an edit's new metadata for the target).
fn split_target(metadata_json: &str) -> RepoResult<(i64, String)> {
    let invalid = || RepoError::Invalid(format!("a change without {TARGET_MESSAGE_ID}"));
    let mut metadata: Value = serde_json::from_str(metadata_json).map_err(|_| invalid())?;
    let object = metadata.as_object_mut().ok_or_else(invalid)?;
    let target = object
        .remove(TARGET_MESSAGE_ID)
        .and_then(|v| match v {
            Value::String(s) => s.parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        })
        .ok_or_else(invalid)?;
    object.remove(TARGET_SEQ_ID);
    Ok((target, metadata.to_string()))
}

impl SqlRepo {
    /// One message by id.
    pub(super) async fn message_by_id(&self, id: i64) -> RepoResult<Option<StoredMessage>> {
        sqlx::query(&format!(
            "SELECT {SELECT_COLUMNS} FROM messages WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(message_from_row)
        .transpose()
    }

    /// Hides a message from one user's history (idempotent).
    pub(super) async fn hide(&self, user_id: i64, message_id: i64) -> RepoResult<()> {
        let sql = format!(
            "{} INTO hidden_messages (user_id, message_id, created_at) VALUES (?, ?, ?)",
            self.dialect.insert_ignore()
        );
        sqlx::query(&sql)
            .bind(user_id)
            .bind(message_id)
            .bind(now_millis())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// Which of `message_ids` the user hid.
    pub(super) async fn hidden(&self, user_id: i64, message_ids: &[i64]) -> RepoResult<Vec<i64>> {
        let mut hidden = Vec::new();
        for chunk in message_ids.chunks(IDS_PER_LOOKUP) {
            let sql = format!(
                "SELECT message_id FROM hidden_messages WHERE user_id = ? AND message_id IN ({})",
                placeholders(chunk.len())
            );
            let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(user_id);
            for id in chunk {
                query = query.bind(*id);
            }
            hidden.extend(query.fetch_all(&self.pool).await.map_err(map_err)?);
        }
        Ok(hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::split_target;

    #[test]
    fn a_change_names_its_target_by_string_or_number() {
        let (id, rest) =
            split_target(r#"{"target_message_id":"42","target_seq_id":3,"format":"plain"}"#)
                .expect("target");
        assert_eq!((id, rest.as_str()), (42, r#"{"format":"plain"}"#));
        assert_eq!(
            split_target(r#"{"target_message_id":7}"#)
                .expect("target")
                .0,
            7
        );
        assert!(split_target(r#"{"target_seq_id":3}"#).is_err());
        assert!(split_target("[1]").is_err());
    }
}

//! A user's settings of a conversation (PROTOCOL v1.1 §6.4): muted, pinned,
//! archived (and the delivered cursor the task service reads with them),
//! kept on the user's `user_conversations` row, so they come with
//! the conversation list at no extra query and leave with the membership.

use super::{SqlRepo, get, map_err};
use crate::repo::{ConversationSettings, RepoError, RepoResult, SettingsPatch};

impl SqlRepo {
    /// Applies the settings given; `NotFound` when the user is not in the
    /// conversation.
    pub(super) async fn set_settings(
        &self,
        patch: &SettingsPatch,
    ) -> RepoResult<ConversationSettings> {
        let flag = |v: Option<bool>| v.map(i32::from);
        sqlx::query(
            "UPDATE user_conversations SET muted = COALESCE(?, muted), pinned = COALESCE(?, pinned), \
             archived = COALESCE(?, archived) WHERE user_id = ? AND conversation_id = ?",
        )
        .bind(flag(patch.muted))
        .bind(flag(patch.pinned))
        .bind(flag(patch.archived))
        .bind(patch.user_id)
        .bind(patch.conversation_id.clone())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        self.settings_of(patch.user_id, &patch.conversation_id)
            .await?
            .ok_or_else(|| {
                RepoError::NotFound(format!(
                    "conversation {} of user {}",
                    patch.conversation_id, patch.user_id
                ))
            })
    }

    /// The user's settings of the conversation, if they are in it.
    pub(super) async fn settings_of(
        &self,
        user_id: i64,
        conversation_id: &str,
    ) -> RepoResult<Option<ConversationSettings>> {
        let row = sqlx::query(
            "SELECT muted, pinned, archived, read_seq_id, delivered_seq_id FROM user_conversations \
             WHERE user_id = ? AND conversation_id = ?",
        )
        .bind(user_id)
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ConversationSettings {
            conversation_id: conversation_id.to_owned(),
            muted: get::<i32>(&row, "muted")? != 0,
            pinned: get::<i32>(&row, "pinned")? != 0,
            archived: get::<i32>(&row, "archived")? != 0,
            read_seq_id: get(&row, "read_seq_id")?,
            delivered_seq_id: get(&row, "delivered_seq_id")?,
        }))
    }

    /// Raises a cursor column (`read_seq_id`, `delivered_seq_id`) of the
    /// user's row to `seq_id`, capped at the conversation's high-water mark
    /// (a cursor past the end would cover messages not written yet); never
    /// lowers it.
    pub(super) async fn raise_cursor(
        &self,
        column: &str,
        user_id: i64,
        conversation_id: &str,
        seq_id: i64,
    ) -> RepoResult<()> {
        sqlx::query(&format!(
            "UPDATE user_conversations SET {column} = (SELECT CASE WHEN ? > c.last_seq_id \
             THEN c.last_seq_id ELSE ? END FROM conversations c \
             WHERE c.conversation_id = user_conversations.conversation_id) \
             WHERE user_id = ? AND conversation_id = ? AND {column} < ?"
        ))
        .bind(seq_id)
        .bind(seq_id)
        .bind(user_id)
        .bind(conversation_id)
        .bind(seq_id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}

//! Friends with consent (PROTOCOL v1.1 "Friends with consent"): each user's
//! `friend_policy`, the pending requests between users, and when a user was
//! last seen. The friendship rows themselves are in `users.rs`; forming one
//! (or a block) clears the requests between the two in the same transaction.

use gochat_proto::ids::now_millis;
use sqlx::any::AnyRow;

use super::{SqlRepo, get, get_text, map_err};
use crate::repo::{FriendRequest, RepoResult, User};

const REQUEST_COLUMNS: &str = "id, from_user_id, to_user_id, message, created_at";

fn request_from_row(row: &AnyRow) -> RepoResult<FriendRequest> {
    Ok(FriendRequest {
        request_id: get(row, "id")?,
        from_user_id: get(row, "from_user_id")?,
        to_user_id: get(row, "to_user_id")?,
        message: get_text(row, "message")?,
        created_at: get(row, "created_at")?,
    })
}

impl SqlRepo {
    /// Files `from`'s request to `to`; a request already pending between
    /// them in that direction is kept as it was and returned.
    pub(super) async fn file_friend_request(
        &self,
        from: i64,
        to: i64,
        message: &str,
    ) -> RepoResult<FriendRequest> {
        sqlx::query(&format!(
            "{} INTO friend_requests (from_user_id, to_user_id, message, created_at) VALUES (?, ?, ?, ?)",
            self.dialect.insert_ignore()
        ))
        .bind(from)
        .bind(to)
        .bind(message)
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM friend_requests WHERE from_user_id = ? AND to_user_id = ?"
        ))
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        request_from_row(&row)
    }

    /// The requests the user sent or received, oldest first.
    pub(super) async fn requests_of(&self, user_id: i64) -> RepoResult<Vec<FriendRequest>> {
        sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM friend_requests WHERE from_user_id = ? OR to_user_id = ? ORDER BY id"
        ))
        .bind(user_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(request_from_row)
        .collect()
    }

    /// Forgets one request (rejected).
    pub(super) async fn drop_friend_request(&self, request_id: i64) -> RepoResult<()> {
        sqlx::query("DELETE FROM friend_requests WHERE id = ?")
            .bind(request_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// Forgets the requests between two users, both ways: they are friends
    /// now, or one blocked the other.
    pub(super) async fn clear_requests_between(
        conn: &mut sqlx::AnyConnection,
        a: i64,
        b: i64,
    ) -> RepoResult<()> {
        sqlx::query(
            "DELETE FROM friend_requests WHERE (from_user_id = ? AND to_user_id = ?) \
             OR (from_user_id = ? AND to_user_id = ?)",
        )
        .bind(a)
        .bind(b)
        .bind(b)
        .bind(a)
        .execute(conn)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    /// Friends, 1:1 peers and members of small shared groups, less the
    /// users a block stands between.
    pub(super) async fn audience_of(&self, user_id: i64, group_max: i64) -> RepoResult<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT DISTINCT a.other FROM ( \
               SELECT friend_id AS other FROM friends WHERE user_id = ? \
               UNION SELECT CASE WHEN user_low = ? THEN user_high ELSE user_low END AS other \
                 FROM conversations WHERE kind = 1 AND (user_low = ? OR user_high = ?) \
               UNION SELECT theirs.user_id AS other FROM group_members mine \
                 JOIN group_members theirs ON theirs.group_id = mine.group_id \
                 WHERE mine.user_id = ? AND (SELECT COUNT(*) FROM group_members n \
                   WHERE n.group_id = mine.group_id) <= ? \
             ) a WHERE a.other <> ? \
             AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.user_id = ? AND b.blocked_id = a.other) \
               OR (b.user_id = a.other AND b.blocked_id = ?)) \
             ORDER BY a.other",
        )
        .bind(user_id)
        .bind(user_id)
        .bind(user_id)
        .bind(user_id)
        .bind(user_id)
        .bind(group_max)
        .bind(user_id)
        .bind(user_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| get(r, "other")).collect()
    }

    /// Sets who may befriend the user; the profile after the change.
    pub(super) async fn store_friend_policy(&self, user_id: i64, policy: i32) -> RepoResult<User> {
        self.set_user_column("friend_policy", i64::from(policy), user_id)
            .await
    }

    /// Records when the user's last connection closed.
    pub(super) async fn store_last_seen(&self, user_id: i64, at: i64) -> RepoResult<()> {
        self.set_user_column("last_seen", at, user_id)
            .await
            .map(drop)
    }

    async fn set_user_column(&self, column: &str, value: i64, user_id: i64) -> RepoResult<User> {
        sqlx::query(&format!("UPDATE users SET {column} = ? WHERE id = ?"))
            .bind(value)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        self.cache.forget_user(user_id).await;
        self.load_user(user_id).await
    }
}

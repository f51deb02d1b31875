//! Users, friends and blocks.

use gochat_proto::ids::now_millis;
use sqlx::any::AnyRow;

use super::{SqlRepo, clamp_limit, get, get_text, map_err, placeholders};
use crate::repo::{RepoError, RepoResult, User, UserAuth};

const USER_COLUMNS: &str = "id, username, nickname, avatar_url, created_at";

pub(super) fn user_from_row(row: &AnyRow) -> RepoResult<User> {
    Ok(User {
        user_id: get(row, "id")?,
        username: get_text(row, "username")?,
        nickname: get_text(row, "nickname")?,
        avatar_url: get_text(row, "avatar_url")?,
        created_at: get(row, "created_at")?,
    })
}

impl SqlRepo {
    pub(super) async fn create_user_impl(
        &self,
        username: &str,
        password_hash: &str,
        nickname: &str,
    ) -> RepoResult<User> {
        let now = now_millis();
        let query = sqlx::query(
            "INSERT INTO users (username, password_hash, nickname, avatar_url, created_at) VALUES (?, ?, ?, '', ?)",
        )
        .bind(username)
        .bind(password_hash)
        .bind(nickname)
        .bind(now);
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        let user_id = self
            .insert_id(&mut conn, query)
            .await
            .map_err(|e| match e {
                RepoError::Conflict(_) => {
                    RepoError::Conflict(format!("username {username} is taken"))
                }
                other => other,
            })?;
        Ok(User {
            user_id,
            username: username.to_owned(),
            nickname: nickname.to_owned(),
            avatar_url: String::new(),
            created_at: now,
        })
    }

    pub(super) async fn get_user_auth_impl(&self, username: &str) -> RepoResult<UserAuth> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .ok_or_else(|| RepoError::NotFound(format!("user {username}")))?;
        Ok(UserAuth {
            user: Some(user_from_row(&row)?),
            password_hash: get_text(&row, "password_hash")?,
        })
    }

    pub(super) async fn get_user_impl(&self, user_id: i64) -> RepoResult<User> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .ok_or_else(|| RepoError::NotFound(format!("user {user_id}")))?;
        user_from_row(&row)
    }

    pub(super) async fn get_users_impl(&self, user_ids: &[i64]) -> RepoResult<Vec<User>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id IN ({}) ORDER BY id",
            placeholders(user_ids.len())
        );
        let mut query = sqlx::query(&sql);
        for id in user_ids {
            query = query.bind(*id);
        }
        query
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(user_from_row)
            .collect()
    }

    pub(super) async fn search_users_impl(
        &self,
        prefix: &str,
        limit: u32,
    ) -> RepoResult<Vec<User>> {
        // LIKE wildcards in the input are escaped so a search for "a_b" is literal.
        let pattern = format!("{}%", escape_like(prefix));
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username LIKE ? ESCAPE '!' ORDER BY username LIMIT ?"
        ))
        .bind(pattern)
        .bind(clamp_limit(limit, 100))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(user_from_row)
        .collect()
    }

    pub(super) async fn update_user_impl(
        &self,
        user_id: i64,
        nickname: Option<&str>,
        avatar_url: Option<&str>,
    ) -> RepoResult<User> {
        sqlx::query(
            "UPDATE users SET nickname = COALESCE(?, nickname), avatar_url = COALESCE(?, avatar_url) WHERE id = ?",
        )
        .bind(nickname)
        .bind(avatar_url)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        self.get_user_impl(user_id).await
    }

    /// Adds or removes a (user, other) row in `friends` or `blocks`;
    /// friendships are stored in both directions.
    pub(super) async fn set_pair(
        &self,
        table: &str,
        column: &str,
        user_id: i64,
        other_id: i64,
        both_ways: bool,
        present: bool,
    ) -> RepoResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let pairs: &[(i64, i64)] = if both_ways {
            &[(user_id, other_id), (other_id, user_id)]
        } else {
            &[(user_id, other_id)]
        };
        for (a, b) in pairs {
            let sql = if present {
                format!(
                    "{} INTO {table} (user_id, {column}, created_at) VALUES (?, ?, ?)",
                    self.dialect.insert_ignore()
                )
            } else {
                format!("DELETE FROM {table} WHERE user_id = ? AND {column} = ?")
            };
            let mut query = sqlx::query(&sql).bind(*a).bind(*b);
            if present {
                query = query.bind(now_millis());
            }
            query.execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    pub(super) async fn has_pair(
        &self,
        table: &str,
        column: &str,
        user_id: i64,
        other_id: i64,
    ) -> RepoResult<bool> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE user_id = ? AND {column} = ?"
        ))
        .bind(user_id)
        .bind(other_id)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(get::<i64>(&row, "n")? > 0)
    }

    pub(super) async fn list_friends_impl(&self, user_id: i64) -> RepoResult<Vec<User>> {
        sqlx::query(
            "SELECT u.id, u.username, u.nickname, u.avatar_url, u.created_at FROM friends f \
             JOIN users u ON u.id = f.friend_id WHERE f.user_id = ? ORDER BY u.username",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(user_from_row)
        .collect()
    }
}

/// Escapes LIKE wildcards with `!` (declared as the ESCAPE character).
pub(super) fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '!') {
            out.push('!');
        }
        out.push(c);
    }
    out
}

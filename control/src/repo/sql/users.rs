//! Users, friends and blocks.

use gochat_proto::ids::now_millis;
use sqlx::any::AnyRow;

use super::{SqlRepo, clamp_limit, get, get_text, map_err, placeholders};
use async_trait::async_trait;

use crate::repo::cache::Lookup;

use crate::repo::{
    Device, FriendRequest, NewUser, RepoError, RepoResult, User, UserAuth, UserRepo,
};

const USER_COLUMNS: &str =
    "id, username, nickname, avatar_url, created_at, friend_policy, last_seen";

pub(super) fn user_from_row(row: &AnyRow) -> RepoResult<User> {
    Ok(User {
        user_id: get(row, "id")?,
        username: get_text(row, "username")?,
        nickname: get_text(row, "nickname")?,
        avatar_url: get_text(row, "avatar_url")?,
        created_at: get(row, "created_at")?,
        friend_policy: get(row, "friend_policy")?,
        last_seen: get(row, "last_seen")?,
    })
}

#[async_trait]
impl UserRepo for SqlRepo {
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        nickname: &str,
    ) -> RepoResult<User> {
        let new = NewUser {
            username: username.to_owned(),
            password_hash: password_hash.to_owned(),
            nickname: nickname.to_owned(),
        };
        self.create_users(std::slice::from_ref(&new))
            .await?
            .pop()
            .ok_or_else(|| RepoError::Internal("no user created".into()))
    }

    async fn create_users(&self, users: &[NewUser]) -> RepoResult<Vec<User>> {
        let now = now_millis();
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let mut created = Vec::with_capacity(users.len());
        for u in users {
            let query = sqlx::query(
                "INSERT INTO users (username, password_hash, nickname, avatar_url, created_at) VALUES (?, ?, ?, '', ?)",
            )
            .bind(u.username.clone())
            .bind(u.password_hash.clone())
            .bind(u.nickname.clone())
            .bind(now);
            let user_id = self
                .insert_id(&mut tx, query)
                .await
                .map_err(|e| taken(e, &u.username))?;
            created.push(User {
                user_id,
                username: u.username.clone(),
                nickname: u.nickname.clone(),
                avatar_url: String::new(),
                created_at: now,
                friend_policy: 0,
                last_seen: 0,
            });
        }
        tx.commit().await.map_err(map_err)?;
        Ok(created)
    }

    async fn get_user_auth(&self, username: &str) -> RepoResult<UserAuth> {
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

    async fn get_user(&self, user_id: i64) -> RepoResult<User> {
        let ticket = match self.cache.user(user_id).await {
            Lookup::Hit(user) => return Ok(user),
            Lookup::Miss(ticket) => ticket,
        };
        let user = self.load_user(user_id).await?;
        self.cache.fill_user(&user, ticket).await;
        Ok(user)
    }

    async fn get_users(&self, user_ids: &[i64]) -> RepoResult<Vec<User>> {
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

    async fn search_users(&self, prefix: &str, limit: u32) -> RepoResult<Vec<User>> {
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

    async fn update_user(
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
        self.cache.forget_user(user_id).await;
        self.load_user(user_id).await
    }

    async fn list_user_ids(&self) -> RepoResult<Vec<i64>> {
        let rows = sqlx::query("SELECT id FROM users ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(|r| get(r, "id")).collect()
    }

    async fn add_friend(&self, user_id: i64, friend_id: i64) -> RepoResult<()> {
        self.set_pair("friends", "friend_id", user_id, friend_id, true, true)
            .await
    }

    async fn remove_friend(&self, user_id: i64, friend_id: i64) -> RepoResult<()> {
        self.set_pair("friends", "friend_id", user_id, friend_id, true, false)
            .await
    }

    async fn are_friends(&self, user_id: i64, other_id: i64) -> RepoResult<bool> {
        self.has_pair("friends", "friend_id", user_id, other_id)
            .await
    }

    async fn add_block(&self, user_id: i64, blocked_id: i64) -> RepoResult<()> {
        self.set_pair("blocks", "blocked_id", user_id, blocked_id, false, true)
            .await
    }

    async fn remove_block(&self, user_id: i64, blocked_id: i64) -> RepoResult<()> {
        self.set_pair("blocks", "blocked_id", user_id, blocked_id, false, false)
            .await
    }

    async fn is_blocked(&self, user_id: i64, other_id: i64) -> RepoResult<bool> {
        self.has_pair("blocks", "blocked_id", user_id, other_id)
            .await
    }

    async fn set_friend_policy(&self, user_id: i64, policy: i32) -> RepoResult<User> {
        self.store_friend_policy(user_id, policy).await
    }

    async fn set_last_seen(&self, user_id: i64, at: i64) -> RepoResult<()> {
        self.store_last_seen(user_id, at).await
    }

    async fn presence_audience(&self, user_id: i64, group_max: i64) -> RepoResult<Vec<i64>> {
        self.audience_of(user_id, group_max).await
    }

    async fn request_friend(&self, from: i64, to: i64, message: &str) -> RepoResult<FriendRequest> {
        self.file_friend_request(from, to, message).await
    }

    async fn friend_requests(&self, user_id: i64) -> RepoResult<Vec<FriendRequest>> {
        self.requests_of(user_id).await
    }

    async fn delete_friend_request(&self, request_id: i64) -> RepoResult<()> {
        self.drop_friend_request(request_id).await
    }

    async fn save_device(&self, device: &Device) -> RepoResult<()> {
        self.store_device(device).await
    }

    async fn remove_device(&self, user_id: i64, device_id: &str) -> RepoResult<bool> {
        self.drop_device(user_id, device_id).await
    }

    async fn list_devices(&self, user_id: i64) -> RepoResult<Vec<Device>> {
        self.devices_of(user_id).await
    }

    async fn revoke_token(&self, jti: &str, expires_at: i64) -> RepoResult<()> {
        sqlx::query(&format!(
            "{} INTO revoked_tokens (jti, expires_at) VALUES (?, ?)",
            self.dialect.insert_ignore()
        ))
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn revoked_tokens(&self) -> RepoResult<Vec<(String, i64)>> {
        let now = now_millis();
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        sqlx::query("SELECT jti, expires_at FROM revoked_tokens")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(|row| Ok((get_text(row, "jti")?, get(row, "expires_at")?)))
            .collect()
    }

    async fn list_friends(&self, user_id: i64) -> RepoResult<Vec<User>> {
        self.related_users(
            "SELECT u.id, u.username, u.nickname, u.avatar_url, u.created_at, u.friend_policy, \
             u.last_seen FROM friends f \
             JOIN users u ON u.id = f.friend_id WHERE f.user_id = ? ORDER BY u.username",
            user_id,
        )
        .await
    }

    async fn list_blocks(&self, user_id: i64) -> RepoResult<Vec<User>> {
        self.related_users(
            "SELECT u.id, u.username, u.nickname, u.avatar_url, u.created_at, u.friend_policy, \
             u.last_seen FROM blocks b \
             JOIN users u ON u.id = b.blocked_id WHERE b.user_id = ? ORDER BY u.username",
            user_id,
        )
        .await
    }
}

impl SqlRepo {
    /// The users a one-parameter query (`user_id`) selects.
    async fn related_users(&self, sql: &str, user_id: i64) -> RepoResult<Vec<User>> {
        sqlx::query(sql)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(user_from_row)
            .collect()
    }

    /// A profile straight from SQL.
    pub(super) async fn load_user(&self, user_id: i64) -> RepoResult<User> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .ok_or_else(|| RepoError::NotFound(format!("user {user_id}")))?;
        user_from_row(&row)
    }

    /// Adds or removes a (user, other) row in `friends` or `blocks`;
    /// friendships are stored in both directions. Adding either ends the
    /// requests pending between the two.
    async fn set_pair(
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
        if present {
            Self::clear_requests_between(&mut tx, user_id, other_id).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn has_pair(
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

/// A unique clash on insert is a taken username: say which.
fn taken(e: RepoError, username: &str) -> RepoError {
    match e {
        RepoError::Conflict(_) => RepoError::Conflict(format!("username {username} is taken")),
        other => other,
    }
}

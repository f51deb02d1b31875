//! [`SqlRepo`]: the repo on MySQL/MariaDB (production) or SQLite (embedded default),
//! through sqlx's `Any` driver so one set of queries serves both. The few statements
//! whose syntax differs go through [`Dialect`]. Each backend has its own migration
//! set under `control/migrations/`.

mod groups;
mod messages;
mod users;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use super::{
    ConversationInfo, ConversationSummary, Group, GroupPatch, Member, Messages, Page, Repo,
    RepoError, RepoResult, StoreOutcome, StoredMessage, User, UserAuth,
};

/// Which SQL engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// MySQL 8 or MariaDB.
    MySql,
    /// SQLite 3.
    Sqlite,
}

impl Dialect {
    /// The engine named by a database URL.
    pub fn of_url(url: &str) -> RepoResult<Self> {
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Ok(Dialect::MySql)
        } else if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else {
            Err(RepoError::Invalid(format!(
                "database url must start with mysql:// or sqlite: (got {})",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }

    /// The id the last INSERT on this connection generated.
    fn last_id_sql(self) -> &'static str {
        match self {
            Dialect::MySql => "SELECT LAST_INSERT_ID() AS id",
            Dialect::Sqlite => "SELECT last_insert_rowid() AS id",
        }
    }

    /// `INSERT` that skips rows whose unique key exists.
    fn insert_ignore(self) -> &'static str {
        match self {
            Dialect::MySql => "INSERT IGNORE",
            Dialect::Sqlite => "INSERT OR IGNORE",
        }
    }
}

/// The SQL-backed repo.
#[derive(Debug, Clone)]
pub struct SqlRepo {
    pool: AnyPool,
    dialect: Dialect,
}

static MYSQL_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqlRepo {
    /// Connects, then brings the schema up to date.
    ///
    /// SQLite gets one connection: it has a single writer anyway, and one
    /// connection turns write contention into queueing instead of `SQLITE_BUSY`.
    pub async fn connect(url: &str, max_connections: u32) -> RepoResult<Self> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url)?;
        let url = match dialect {
            Dialect::MySql => url.replacen("mariadb://", "mysql://", 1),
            Dialect::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            Dialect::Sqlite => url.to_owned(),
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match dialect {
            Dialect::MySql => options.max_connections(max_connections.max(1)),
            Dialect::Sqlite => options.max_connections(1).after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode=WAL").await?;
                    conn.execute("PRAGMA synchronous=NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout=5000").await?;
                    conn.execute("PRAGMA foreign_keys=ON").await?;
                    Ok(())
                })
            }),
        }
        .connect(&url)
        .await
        .map_err(map_err)?;
        let migrator = match dialect {
            Dialect::MySql => &MYSQL_MIGRATIONS,
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| RepoError::Internal(Box::new(e)))?;
        Ok(Self { pool, dialect })
    }

    /// The engine in use.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes the pool (graceful shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl SqlRepo {
    /// Runs an INSERT and returns the generated id, read on the same connection
    /// (the `Any` driver does not report it for SQLite).
    async fn insert_id<'q>(
        &self,
        conn: &mut sqlx::AnyConnection,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> RepoResult<i64> {
        let result = query.execute(&mut *conn).await.map_err(map_err)?;
        if let Some(id) = result.last_insert_id() {
            return Ok(id);
        }
        let row = sqlx::query(self.dialect.last_id_sql())
            .fetch_one(&mut *conn)
            .await
            .map_err(map_err)?;
        get(&row, "id")
    }
}

/// Maps a driver error to a repo error that says whether a retry may help.
pub(crate) fn map_err(err: sqlx::Error) -> RepoError {
    match &err {
        sqlx::Error::RowNotFound => RepoError::NotFound("row".into()),
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            RepoError::Conflict(db.message().to_owned())
        }
        sqlx::Error::Database(db) => {
            // MySQL 1213 deadlock, 1205 lock wait timeout; SQLite 5 busy, 6 locked.
            let transient = matches!(
                db.code().as_deref(),
                Some("1213" | "1205" | "40001" | "5" | "6" | "HY000")
            ) && (db.message().contains("eadlock")
                || db.message().contains("lock")
                || db.message().contains("busy"));
            let cause = Box::new(err);
            if transient {
                RepoError::Unavailable(cause)
            } else {
                RepoError::Internal(cause)
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => RepoError::Unavailable(Box::new(err)),
        _ => RepoError::Internal(Box::new(err)),
    }
}

fn get<T>(row: &AnyRow, column: &str) -> RepoResult<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column)
        .map_err(|e| RepoError::Internal(format!("column {column}: {e}").into()))
}

/// A text column. MySQL reports TEXT columns as BLOB through the `Any` driver,
/// so bytes are accepted too (and must be UTF-8).
fn get_text(row: &AnyRow, column: &str) -> RepoResult<String> {
    if let Ok(text) = row.try_get::<String, _>(column) {
        return Ok(text);
    }
    let bytes: Vec<u8> = get(row, column)?;
    String::from_utf8(bytes)
        .map_err(|e| RepoError::Internal(format!("column {column}: {e}").into()))
}

/// Placeholders `?, ?, ?` for an IN list of `n` values (n >= 1).
fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

/// Caps a caller's limit to [1, max].
fn clamp_limit(limit: u32, max: u32) -> i64 {
    i64::from(limit.clamp(1, max))
}

#[async_trait]
impl Repo for SqlRepo {
    async fn ping(&self) -> RepoResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        nickname: &str,
    ) -> RepoResult<User> {
        self.create_user_impl(username, password_hash, nickname)
            .await
    }
    async fn get_user_auth(&self, username: &str) -> RepoResult<UserAuth> {
        self.get_user_auth_impl(username).await
    }
    async fn get_user(&self, user_id: i64) -> RepoResult<User> {
        self.get_user_impl(user_id).await
    }
    async fn get_users(&self, user_ids: &[i64]) -> RepoResult<Vec<User>> {
        self.get_users_impl(user_ids).await
    }
    async fn search_users(&self, prefix: &str, limit: u32) -> RepoResult<Vec<User>> {
        self.search_users_impl(prefix, limit).await
    }
    async fn list_user_ids(&self) -> RepoResult<Vec<i64>> {
        let rows = sqlx::query("SELECT id FROM users ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(|r| get(r, "id")).collect()
    }
    async fn update_user(
        &self,
        user_id: i64,
        nickname: Option<&str>,
        avatar_url: Option<&str>,
    ) -> RepoResult<User> {
        self.update_user_impl(user_id, nickname, avatar_url).await
    }
    async fn add_friend(&self, user_id: i64, friend_id: i64) -> RepoResult<()> {
        self.set_pair("friends", "friend_id", user_id, friend_id, true, true)
            .await
    }
    async fn remove_friend(&self, user_id: i64, friend_id: i64) -> RepoResult<()> {
        self.set_pair("friends", "friend_id", user_id, friend_id, true, false)
            .await
    }
    async fn list_friends(&self, user_id: i64) -> RepoResult<Vec<User>> {
        self.list_friends_impl(user_id).await
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

    async fn create_group(
        &self,
        owner_id: i64,
        name: &str,
        member_ids: &[i64],
    ) -> RepoResult<Group> {
        self.create_group_impl(owner_id, name, member_ids).await
    }
    async fn get_group(&self, group_id: i64) -> RepoResult<Group> {
        self.get_group_impl(group_id).await
    }
    async fn update_group(&self, group_id: i64, patch: &GroupPatch) -> RepoResult<Group> {
        self.update_group_impl(group_id, patch).await
    }
    async fn search_groups(&self, query: &str, limit: u32) -> RepoResult<Vec<Group>> {
        self.search_groups_impl(query, limit).await
    }
    async fn list_user_groups(&self, user_id: i64) -> RepoResult<Vec<Group>> {
        self.list_user_groups_impl(user_id).await
    }
    async fn add_members(&self, group_id: i64, user_ids: &[i64]) -> RepoResult<Vec<i64>> {
        self.add_members_impl(group_id, user_ids).await
    }
    async fn remove_member(&self, group_id: i64, user_id: i64) -> RepoResult<bool> {
        self.remove_member_impl(group_id, user_id).await
    }
    async fn list_members(&self, group_id: i64) -> RepoResult<Vec<Member>> {
        self.list_members_impl(group_id).await
    }
    async fn get_member(&self, group_id: i64, user_id: i64) -> RepoResult<Option<Member>> {
        self.get_member_impl(group_id, user_id).await
    }

    async fn find_message(
        &self,
        from_user_id: i64,
        client_msg_id: &str,
    ) -> RepoResult<Option<StoredMessage>> {
        self.find_message_impl(from_user_id, client_msg_id).await
    }
    async fn store_message(&self, message: &StoredMessage) -> RepoResult<StoreOutcome> {
        self.store_message_impl(message).await
    }
    async fn get_conversation(
        &self,
        conversation_id: &str,
    ) -> RepoResult<Option<ConversationInfo>> {
        self.get_conversation_impl(conversation_id).await
    }
    async fn list_messages(
        &self,
        conversation_id: &str,
        page: Page,
        limit: u32,
    ) -> RepoResult<Messages> {
        self.list_messages_impl(conversation_id, page, limit).await
    }
    async fn list_conversations(&self, user_id: i64) -> RepoResult<Vec<ConversationSummary>> {
        self.list_conversations_impl(user_id).await
    }
    async fn mark_read(&self, user_id: i64, conversation_id: &str, seq_id: i64) -> RepoResult<i64> {
        self.mark_read_impl(user_id, conversation_id, seq_id).await
    }
    async fn list_mentions(&self, user_id: i64) -> RepoResult<Vec<StoredMessage>> {
        self.list_mentions_impl(user_id).await
    }
}

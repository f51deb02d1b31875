//! [`SqlRepo`]: the repo on MySQL/MariaDB (production) or SQLite (embedded default),
//! through sqlx's `Any` driver so one set of queries serves both. The few statements
//! whose syntax differs go through [`Dialect`]. Each backend has its own migration
//! set under `control/migrations/`.

mod batch;
mod changes;
mod devices;
mod friends;
mod group_admin;
mod groups;
mod messages;
mod search;
mod search_backfill;
mod settings;
mod users;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use super::cache::RepoCache;
use super::{Repo, RepoError, RepoResult};

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

/// The SQL-backed repo, with its Redis cache for profiles and membership.
#[derive(Debug, Clone)]
pub struct SqlRepo {
    pool: AnyPool,
    dialect: Dialect,
    cache: RepoCache,
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
        Ok(Self {
            pool,
            dialect,
            cache: RepoCache::none(),
        })
    }

    /// Serves profiles and membership through `cache` (cache-aside).
    pub fn with_cache(mut self, cache: RepoCache) -> Self {
        self.cache = cache;
        self
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

    fn pool_usage(&self) -> Option<(u32, u32)> {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        Some((self.pool.size(), idle))
    }
}

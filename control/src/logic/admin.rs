//! What operators do: create accounts in bulk, and the admin push: an
//! operator named in `auth.admin_usernames` announces something to some
//! users or to everyone. The push is durable — it is accepted only
//! once every batch is a `system_notice` task on the log, and the task service
//! posts the notices — so a restart loses none and nothing runs unawaited.

use std::collections::HashSet;
use std::sync::Arc;

use gochat_proto::ids::Id;
use gochat_proto::kafka::{SystemNotice, Task, TaskRecord};

use super::accounts::check_account;
use super::{Logic, LogicError, LogicResult, NewAccount};
use crate::repo::{NewUser, RepoError, User};

const MAX_TITLE: usize = 200;
/// Users per `system_notice` task: large enough to keep the task count low
/// for a push to everyone, small enough that a retried batch is cheap.
const NOTICE_BATCH: usize = 500;

/// An admin push as requested.
#[derive(Debug)]
pub struct SystemPush {
    /// Explicit recipients (unknown ids are skipped); empty with `all`.
    pub user_ids: Vec<Id>,
    /// Everyone.
    pub all: bool,
    /// Up to 200 bytes.
    pub title: String,
    /// 1 byte up to the message size limit.
    pub content: String,
    /// Free-form kind, passed on in the notice's metadata.
    pub category: String,
}

/// The most accounts one `POST /admin/users` creates.
pub const MAX_BULK_USERS: usize = 1000;

impl Logic {
    /// Creates accounts for an operator (migrations, load tests): each
    /// checked like a registration, none subject to the registration limits,
    /// all created or none. Admin only.
    pub async fn create_users(
        self: &Arc<Self>,
        me: Id,
        accounts: Vec<NewAccount>,
    ) -> LogicResult<Vec<User>> {
        if !self.is_admin(me).await? {
            return Err(LogicError::Forbidden("admin only".into()));
        }
        if accounts.is_empty() || accounts.len() > MAX_BULK_USERS {
            return Err(LogicError::BadRequest(format!(
                "users: 1 to {MAX_BULK_USERS} accounts"
            )));
        }
        let mut names = HashSet::new();
        for account in &accounts {
            check_account(account)?;
            if !names.insert(account.username.to_ascii_lowercase()) {
                return Err(LogicError::BadRequest(format!(
                    "username {} is given twice",
                    account.username
                )));
            }
        }
        let mut rows = Vec::with_capacity(accounts.len());
        for account in accounts {
            rows.push(NewUser {
                password_hash: self.hash(account.password).await?,
                username: account.username,
                nickname: account.nickname,
            });
        }
        self.repo.create_users(&rows).await.map_err(|e| match e {
            RepoError::Conflict(taken) => LogicError::Conflict(taken),
            other => other.into(),
        })
    }

    /// Named in `auth.admin_user_ids`, or by username in `auth.admin_usernames`.
    async fn is_admin(&self, me: Id) -> LogicResult<bool> {
        if self.admin_user_ids.contains(&me.0) {
            return Ok(true);
        }
        let operator = self.repo.get_user(me.0).await?;
        Ok(self
            .admin_usernames
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&operator.username)))
    }

    /// Accepts an admin push by `me`; returns how many users it will reach.
    pub async fn admin_push(&self, me: Id, push: SystemPush) -> LogicResult<usize> {
        if !self.is_admin(me).await? {
            return Err(LogicError::Forbidden("admin only".into()));
        }
        if push.all != push.user_ids.is_empty() {
            return Err(LogicError::BadRequest("either user_ids or all:true".into()));
        }
        if push.content.is_empty()
            || push.content.len() > self.config.max_content_bytes
            || push.title.len() > MAX_TITLE
        {
            return Err(LogicError::BadRequest(
                "content: 1 byte up to the message limit; title up to 200 bytes".into(),
            ));
        }
        let targets: Vec<Id> = if push.all {
            self.repo
                .list_user_ids()
                .await?
                .into_iter()
                .map(Id)
                .collect()
        } else {
            let ids: Vec<i64> = push.user_ids.iter().map(|i| i.0).collect();
            let mut known: Vec<Id> = self
                .repo
                .get_users(&ids)
                .await?
                .into_iter()
                .map(|u| Id(u.user_id))
                .collect();
            known.sort_unstable_by_key(|i| i.0);
            known.dedup();
            known
        };
        let push_id = self.writer.next_id();
        for batch in targets.chunks(NOTICE_BATCH) {
            let task = Task::SystemNotice(SystemNotice {
                push_id,
                user_ids: batch.to_vec(),
                title: push.title.clone(),
                content: push.content.clone(),
                category: push.category.clone(),
            });
            let record = TaskRecord::new(format!("task-{}", self.writer.next_id()), task);
            self.bus.send_task(&record).await?;
        }
        Ok(targets.len())
    }
}

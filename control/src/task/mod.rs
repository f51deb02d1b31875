//! The task service: consumer group `im-task-group` on `im-task-topic`.
//! `offline_push` goes to a [`providers::PushProvider`]; `group_fanout` pushes
//! an `@all` of a large group to its offline members; `presence` tells a
//! user's friends; `system_notice` posts an admin push's notices. A failed task is
//! re-enqueued with `retry_count + 1`; after `max_attempts` failures it goes to
//! `im-task-dlq` with its last error (seed 002's dead-letter queue, docs/design.md appendix A).

pub mod providers;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use gochat_proto::frames::ServerFrame;
use gochat_proto::ids::Id;
use gochat_proto::kafka::{GroupFanout, OfflinePush, SystemNotice, Task, TaskRecord};
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Inbox};
use crate::config::TaskConfig;
use crate::consume::{Handled, Laned, consume};
use crate::logic::MessageWriter;
use crate::logic::delivery::deliver;
use crate::repo::Repo;
use crate::state::StateStore;
use providers::{Delivery, PushProvider, Pushed};

/// Counters, for `/metrics` and the gRPC `Stats`.
#[derive(Debug, Default)]
pub struct TaskStats {
    /// Tasks done.
    pub handled: AtomicU64,
    /// Tasks re-enqueued after a failure.
    pub retried: AtomicU64,
    /// Tasks sent to the dead-letter topic.
    pub dead_lettered: AtomicU64,
}

/// The task service.
pub struct TaskService {
    repo: Arc<dyn Repo>,
    state: Arc<dyn StateStore>,
    bus: Arc<dyn Bus>,
    writer: Arc<MessageWriter>,
    push: Arc<dyn PushProvider>,
    max_attempts: u32,
    in_flight: usize,
    presence_group_max: i64,
    push_delay: std::time::Duration,
    /// Counters.
    pub stats: TaskStats,
}

/// Why a task failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The push provider refused or was unreachable.
    #[error("push provider: {0}")]
    Push(#[source] crate::BoxError),
    /// Storage, registry or log failed.
    #[error("dependency: {0}")]
    Dependency(#[source] crate::BoxError),
}

impl TaskService {
    /// Assembles the service on the writer's engines.
    pub fn new(
        writer: Arc<MessageWriter>,
        push: Arc<dyn PushProvider>,
        config: &TaskConfig,
    ) -> Self {
        Self {
            repo: writer.repo.clone(),
            state: writer.state.clone(),
            bus: writer.bus.clone(),
            writer,
            push,
            max_attempts: config.max_attempts,
            in_flight: config.consume_in_flight,
            presence_group_max: i64::try_from(config.presence_group_max).unwrap_or(i64::MAX),
            push_delay: std::time::Duration::from_millis(config.push_delay_ms),
            stats: TaskStats::default(),
        }
    }

    /// Consumes tasks until `shutdown`.
    pub async fn run(self: Arc<Self>, inbox: impl Inbox, shutdown: CancellationToken) {
        consume(inbox, shutdown, "tasks", self.in_flight, |record| {
            let service = self.clone();
            async move { service.handle(record).await }
        })
        .await;
    }

    async fn handle(&self, mut record: TaskRecord) -> Handled {
        let result = self.execute(&record.task).await;
        let Err(e) = result else {
            self.stats.handled.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("gochat_tasks_total", "outcome" => "done").increment(1);
            return Handled::Done;
        };
        record.retry_count += 1;
        record.last_error = Some(e.to_string());
        // The retry or the dead letter must be durable before this record is committed.
        let (sent, outcome) = if record.retry_count >= self.max_attempts {
            tracing::error!(task_id = %record.task_id, error = %e, "task failed {} times: dead-lettered", record.retry_count);
            (self.bus.send_dead_letter(&record).await, "dead_lettered")
        } else {
            tracing::warn!(task_id = %record.task_id, error = %e, attempt = record.retry_count, "task failed: re-enqueued");
            (self.bus.send_task(&record).await, "retried")
        };
        match sent {
            Ok(()) => {
                let counter = if outcome == "retried" {
                    &self.stats.retried
                } else {
                    &self.stats.dead_lettered
                };
                counter.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("gochat_tasks_total", "outcome" => outcome).increment(1);
                Handled::Done
            }
            Err(bus) => Handled::Retry(bus.to_string()),
        }
    }

    async fn execute(&self, task: &Task) -> Result<(), TaskError> {
        match task {
            Task::OfflinePush(push) => {
                self.wait_until_due(push.created_at).await;
                self.push_unless_seen(push).await
            }
            Task::GroupFanout(fanout) => self.fan_out(fanout).await,
            Task::Presence(change) => self.announce_presence(change.user_id).await,
            Task::SystemNotice(notice) => self.post_notices(notice).await,
        }
    }

    /// Posts one batch of an admin push. Each notice is named by (push, user),
    /// so a retry after a partial failure skips the users already served.
    async fn post_notices(&self, notice: &SystemNotice) -> Result<(), TaskError> {
        let metadata = serde_json::json!({"title": notice.title, "category": notice.category});
        let push = notice.push_id;
        self.writer
            .post_system_notices(
                &notice.user_ids,
                |user| format!("push-{push}-{user}"),
                &notice.content,
                &metadata,
            )
            .await
            .map_err(dependency)?;
        Ok(())
    }

    /// Pushes unless the conversation is muted or the user has read up to
    /// the message meanwhile (PROTOCOL v1.1 §6.4).
    async fn push_unless_seen(&self, push: &OfflinePush) -> Result<(), TaskError> {
        let settings = self
            .repo
            .get_settings(push.user_id.0, &push.conversation_id)
            .await
            .map_err(dependency)?;
        let seen = |read: i64| push.seq_id > 0 && read >= push.seq_id;
        if settings.is_some_and(|s| s.muted || seen(s.read_seq_id) || seen(s.delivered_seq_id)) {
            return Ok(());
        }
        self.push_to_devices(push).await
    }

    /// Waits out the push delay from the message's time. A task already
    /// late (a backlog) does not wait, so a busy service drains at full
    /// speed; only a lane's own push waits, the others go on.
    async fn wait_until_due(&self, created_at: i64) {
        if created_at <= 0 || self.push_delay.is_zero() {
            return;
        }
        let age_ms = gochat_proto::ids::now_millis().saturating_sub(created_at);
        let age = std::time::Duration::from_millis(u64::try_from(age_ms).unwrap_or(0));
        if let Some(left) = self.push_delay.checked_sub(age) {
            tokio::time::sleep(left).await;
        }
    }

    /// One push per device the user registered (PROTOCOL v1.1 `POST
    /// /devices`), or one for the user, as in version 1, when they
    /// registered none. A retry after a failed device pushes the devices
    /// before it again: pushes are at least once.
    async fn push_to_devices(&self, push: &OfflinePush) -> Result<(), TaskError> {
        let devices = self
            .repo
            .list_devices(push.user_id.0)
            .await
            .map_err(dependency)?;
        if devices.is_empty() {
            return self.push.push(&Delivery::to_user(push)).await.map(drop);
        }
        for device in &devices {
            let pushed = self.push.push(&Delivery::to_device(push, device)).await?;
            if pushed == Pushed::TokenRejected {
                // The service will never take this token again: forget the
                // device so later messages do not try it (the app registers
                // a fresh token when it runs next).
                tracing::info!(user = %push.user_id, device = %device.device_id, platform = %device.platform, "push token rejected: device unregistered");
                self.repo
                    .remove_device(push.user_id.0, &device.device_id)
                    .await
                    .map_err(dependency)?;
            }
        }
        Ok(())
    }

    /// Tells the user's friends and the people they share a conversation
    /// with (1:1 chats, groups up to `presence_group_max` members), unless
    /// a block stands between them, whether the user is online now; an
    /// offline user's `last_seen` is kept first, so a profile read after
    /// the frame shows it.
    async fn announce_presence(&self, user: Id) -> Result<(), TaskError> {
        let online = self.state.is_online(user).await.map_err(dependency)?;
        if !online {
            self.repo
                .set_last_seen(user.0, gochat_proto::ids::now_millis())
                .await
                .map_err(dependency)?;
        }
        let audience: Vec<Id> = self
            .repo
            .presence_audience(user.0, self.presence_group_max)
            .await
            .map_err(dependency)?
            .into_iter()
            .map(Id)
            .collect();
        let frame = Bytes::from(
            ServerFrame::Presence {
                user_id: user,
                online,
            }
            .to_json(),
        );
        self.deliver_in_batches(&audience, 500, frame).await
    }

    /// An `@all` in a large group: a push to every offline member, one
    /// registry lookup per `batch_size` members. (Online members got the
    /// message through the group rooms.) A retry after a failed batch may
    /// push an earlier batch twice: pushes are at least once.
    async fn fan_out(&self, fanout: &GroupFanout) -> Result<(), TaskError> {
        // Pushed like a 1:1 message: after the push delay (once for the
        // whole group, only what is left of it), to those who have not read
        // it by then.
        self.wait_until_due(fanout.created_at).await;
        let members: Vec<Id> = self
            .repo
            .list_members(fanout.group_id.0)
            .await
            .map_err(dependency)?
            .into_iter()
            .map(|m| Id(m.user_id))
            .filter(|u| !fanout.exclude_user_ids.contains(u))
            .collect();
        let batch = usize::try_from(fanout.batch_size.max(1)).unwrap_or(100);
        for chunk in members.chunks(batch) {
            let online = self.state.routes(chunk).await.map_err(dependency)?;
            for user in chunk.iter().filter(|u| !online.contains_key(u)) {
                let push = OfflinePush {
                    user_id: *user,
                    message_id: fanout.message_id,
                    conversation_id: fanout.conversation_id.clone(),
                    title: fanout.title.clone(),
                    content: fanout.content.clone(),
                    push_type: "mention".into(),
                    seq_id: fanout.seq_id,
                    created_at: 0,
                };
                self.push_unless_seen(&push).await?;
            }
        }
        Ok(())
    }

    /// `frame` to the online connections of `audience`, `batch` users per
    /// registry lookup and downstream record.
    async fn deliver_in_batches(
        &self,
        audience: &[Id],
        batch: usize,
        frame: Bytes,
    ) -> Result<(), TaskError> {
        for chunk in audience.chunks(batch) {
            deliver(
                self.state.as_ref(),
                self.bus.as_ref(),
                chunk,
                None,
                frame.clone(),
            )
            .await
            .map_err(dependency)?;
        }
        Ok(())
    }
}

/// A storage, registry or log failure, cause kept.
fn dependency(e: impl std::error::Error + Send + Sync + 'static) -> TaskError {
    TaskError::Dependency(Box::new(e))
}

impl Laned for TaskRecord {
    /// The target (the record key): one user's or one group's tasks stay in order.
    fn lane(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.task.key().hash(&mut hasher);
        hasher.finish()
    }
}

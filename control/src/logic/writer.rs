//! The write half every sender shares — the REST API, the upstream consumer
//! and the task service (system notices): assign seq and id, store, route.
//! [`MessageWriter`] needs no token machinery, so a process that runs only the task
//! service can post messages too.

use std::sync::Arc;

use gochat_proto::frames::{AckFrame, MessageType};
use gochat_proto::ids::{
    Id, SYSTEM_USER, Snowflake, group_conversation_id, now_millis, single_conversation_id,
};
use gochat_proto::kafka::Origin;

use gochat_proto::trace::TraceParent;

use super::{LogicError, LogicResult};
use crate::bus::{Bus, DownstreamRecord};
use crate::config::LogicConfig;
use crate::repo::{Repo, RepoResult, StoreOutcome, StoredMessage};
use crate::state::StateStore;

/// Stores and routes messages: the one place seq and message ids are assigned.
pub struct MessageWriter {
    pub(crate) repo: Arc<dyn Repo>,
    pub(crate) state: Arc<dyn StateStore>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(super) config: LogicConfig,
    pub(super) group_sizes: super::rooms::GroupSizes,
    turn: tokio::sync::Mutex<()>,
    ids: Snowflake,
}

/// A message to commit and the connection that sent it (which gets the ack).
#[derive(Debug)]
pub struct Draft {
    /// Seq, id and time are assigned at commit.
    pub message: StoredMessage,
    /// The sender's connection, when the send came through a gateway.
    pub origin: Option<Origin>,
    /// The send's span, when traced: its records carry it.
    pub trace: Option<opentelemetry::Context>,
}

/// Records how long a stage of the send path took for one batch
/// (`gochat_send_stage_seconds{stage}`: dedup, authorize, persist — which
/// assigns the seqs — and route).
pub(super) fn stage_done(stage: &'static str, since: std::time::Instant) {
    metrics::histogram!("gochat_send_stage_seconds", "stage" => stage)
        .record(since.elapsed().as_secs_f64());
}

/// Builds the ack of a stored message.
pub fn ack_of(message: &StoredMessage) -> AckFrame {
    AckFrame {
        client_msg_id: message.client_msg_id.clone(),
        message_id: Id(message.message_id),
        conversation_id: message.conversation_id.clone(),
        seq_id: message.seq_id,
        timestamp: message.timestamp,
    }
}

impl MessageWriter {
    /// Assembles the writer. `node_id` makes message ids unique across
    /// processes, so every process that posts needs its own.
    pub fn new(
        repo: Arc<dyn Repo>,
        state: Arc<dyn StateStore>,
        bus: Arc<dyn Bus>,
        config: LogicConfig,
        node_id: u16,
    ) -> Self {
        Self {
            repo,
            state,
            bus,
            config,
            group_sizes: Default::default(),
            turn: tokio::sync::Mutex::new(()),
            ids: Snowflake::new(node_id),
        }
    }

    /// A fresh unique id (message ids, task ids).
    pub(super) fn next_id(&self) -> Id {
        self.ids.next_id()
    }

    /// Assigns id and seq, stores, routes; returns the ack.
    pub(super) async fn commit(
        &self,
        draft: StoredMessage,
        origin: Option<&Origin>,
    ) -> LogicResult<AckFrame> {
        let mut results = self
            .commit_batch(vec![Draft {
                message: draft,
                origin: origin.cloned(),
                trace: None,
            }])
            .await?;
        results
            .pop()
            .unwrap_or_else(|| Err(LogicError::Internal("no result for the draft".into())))
    }

    /// The group commit of a batch of drafts: one transaction for the lot
    /// (which assigns the seqs), then routing — one result per draft, in
    /// order. Drafts of one conversation get increasing seqs in batch order
    /// and are pushed in that order. The outer error is the batch's (a
    /// dependency is down: retry it all; what was stored comes back as
    /// duplicates).
    pub(super) async fn commit_batch(
        &self,
        mut drafts: Vec<Draft>,
    ) -> LogicResult<Vec<LogicResult<AckFrame>>> {
        // One commit at a time in this process, from storing to routing:
        // commits side by side could push a conversation's messages out of
        // seq order. The send loop commits one batch after another anyway;
        // this keeps group notices and system notices in that line too.
        let _turn = self.turn.lock().await;
        let batch: Vec<StoredMessage> = drafts
            .iter_mut()
            .map(|d| {
                let m = &mut d.message;
                m.message_id = self.ids.next_id().0;
                m.timestamp = now_millis();
                m.clone()
            })
            .collect();
        let started = std::time::Instant::now();
        let outcomes = self.store(&batch).await?;
        stage_done("persist", started);
        let mut stored: Vec<usize> = Vec::new();
        let mut results = Vec::with_capacity(drafts.len());
        for (i, outcome) in outcomes.into_iter().enumerate() {
            results.push(match outcome {
                Ok(StoreOutcome::Stored(m)) => {
                    let ack = ack_of(&m);
                    drafts[i].message = m;
                    stored.push(i);
                    Ok(ack)
                }
                Ok(StoreOutcome::Duplicate(original)) => Ok(ack_of(&original)),
                Err(e) => Err(e.into()),
            });
        }
        metrics::counter!("gochat_messages_stored_total").increment(stored.len() as u64);
        let acks = drafts
            .iter()
            .zip(&results)
            .filter_map(|(d, r)| match (r, &d.origin) {
                (Ok(ack), Some(origin)) => Some(DownstreamRecord {
                    trace: d.trace.as_ref().and_then(TraceParent::of),
                    ..Self::ack_record(ack, origin)
                }),
                _ => None,
            })
            .collect();
        let started = std::time::Instant::now();
        self.route_batch(&drafts, &stored, acks).await?;
        stage_done("route", started);
        Ok(results)
    }

    /// Stores a batch; a batch the store refuses as a whole (one bad message)
    /// is stored message by message so the refusal stays with its message.
    async fn store(&self, batch: &[StoredMessage]) -> LogicResult<Vec<RepoResult<StoreOutcome>>> {
        match self.repo.store_messages(batch).await {
            Ok(outcomes) => Ok(outcomes.into_iter().map(Ok).collect()),
            Err(e) if e.is_retryable() => Err(e.into()),
            Err(e) if batch.len() < 2 => Ok(vec![Err(e)]),
            Err(_) => {
                let mut outcomes = Vec::with_capacity(batch.len());
                for m in batch {
                    match self.repo.store_message(m).await {
                        Err(e) if e.is_retryable() => return Err(e.into()),
                        other => outcomes.push(other),
                    }
                }
                Ok(outcomes)
            }
        }
    }

    /// Stores and delivers a `system_group` message in a group.
    pub async fn post_group_event(
        &self,
        group_id: Id,
        content: String,
        metadata: serde_json::Value,
    ) -> LogicResult<AckFrame> {
        let draft = self.system_draft(
            group_conversation_id(group_id),
            0,
            group_id.0,
            MessageType::SystemGroup,
            content,
            metadata,
        );
        self.commit(draft, None).await
    }

    /// Stores and delivers a `system` message to each of `users`, all in
    /// one group commit (an admin push to everyone is many of these, so one
    /// transaction per user would make it crawl). `notice_id(user)` names
    /// each user's notice: posting it again (a retried task) stores nothing
    /// new, because (sender, client_msg_id) is unique. Any refusal fails the
    /// lot, to be retried whole.
    pub async fn post_system_notices(
        &self,
        users: &[Id],
        notice_id: impl Fn(Id) -> String,
        content: &str,
        metadata: &serde_json::Value,
    ) -> LogicResult<()> {
        let drafts = users
            .iter()
            .map(|&user| {
                let mut message = self.system_draft(
                    single_conversation_id(SYSTEM_USER, user),
                    user.0,
                    0,
                    MessageType::System,
                    content.to_owned(),
                    metadata.clone(),
                );
                message.client_msg_id = notice_id(user);
                Draft {
                    message,
                    origin: None,
                    trace: None,
                }
            })
            .collect();
        for result in self.commit_batch(drafts).await? {
            result?;
        }
        Ok(())
    }

    fn system_draft(
        &self,
        conversation_id: String,
        to: i64,
        group: i64,
        kind: MessageType,
        content: String,
        metadata: serde_json::Value,
    ) -> StoredMessage {
        StoredMessage {
            message_id: 0,
            conversation_id,
            seq_id: 0,
            from_user_id: SYSTEM_USER.0,
            to_user_id: to,
            group_id: group,
            message_type: kind.as_str().to_owned(),
            content,
            metadata_json: metadata.to_string(),
            mentions: Vec::new(),
            // Unique per system message unless the caller names it.
            client_msg_id: format!("sys-{}", self.ids.next_id()),
            timestamp: 0,
            edited_at: 0,
            recalled: false,
        }
    }
}

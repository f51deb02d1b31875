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

use super::{LogicError, LogicResult};
use crate::bus::Bus;
use crate::config::LogicConfig;
use crate::repo::{Repo, RepoError, StoreOutcome, StoredMessage};
use crate::state::{SeqAlloc, StateStore};

// Each pass means another writer took our seq first; more than a few is a bug.
const MAX_SEQ_ATTEMPTS: usize = 16;

/// Stores and routes messages: the one place seq and message ids are assigned.
pub struct MessageWriter {
    pub(super) repo: Arc<dyn Repo>,
    pub(super) state: Arc<dyn StateStore>,
    pub(super) bus: Arc<dyn Bus>,
    pub(super) config: LogicConfig,
    ids: Snowflake,
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
        mut draft: StoredMessage,
        origin: Option<&Origin>,
    ) -> LogicResult<AckFrame> {
        let from = Id(draft.from_user_id);
        for _ in 0..MAX_SEQ_ATTEMPTS {
            draft.seq_id = self
                .allocate_seq(&draft.conversation_id, from, &draft.client_msg_id)
                .await?;
            draft.message_id = self.ids.next_id().0;
            draft.timestamp = now_millis();
            match self.repo.store_message(&draft).await? {
                StoreOutcome::Stored(stored) => {
                    self.release_seq(from, &stored.client_msg_id).await;
                    metrics::counter!("gochat_messages_stored_total").increment(1);
                    let ack = ack_of(&stored);
                    self.route_message(&stored, origin).await?;
                    self.route_ack(&ack, origin).await?;
                    return Ok(ack);
                }
                StoreOutcome::Duplicate(original) => {
                    self.release_seq(from, &original.client_msg_id).await;
                    let ack = ack_of(&original);
                    self.route_ack(&ack, origin).await?;
                    return Ok(ack);
                }
                StoreOutcome::SeqTaken { high_water } => {
                    metrics::counter!("gochat_seq_resyncs_total").increment(1);
                    self.state
                        .resync_seq(
                            &draft.conversation_id,
                            high_water,
                            from,
                            &draft.client_msg_id,
                        )
                        .await?;
                }
            }
        }
        Err(LogicError::Repo(RepoError::Unavailable(
            "seq allocation kept colliding".into(),
        )))
    }

    async fn allocate_seq(
        &self,
        conversation_id: &str,
        from: Id,
        client_msg_id: &str,
    ) -> LogicResult<i64> {
        loop {
            match self
                .state
                .next_seq(conversation_id, from, client_msg_id)
                .await?
            {
                SeqAlloc::Seq(seq) => return Ok(seq),
                SeqAlloc::Unseeded => {
                    // The cache is empty (first message, or Redis lost its data):
                    // start from the durable mark so no seq is reused.
                    let high_water = self
                        .repo
                        .get_conversation(conversation_id)
                        .await?
                        .map(|c| c.last_seq_id)
                        .unwrap_or(0);
                    self.state.seed_seq(conversation_id, high_water).await?;
                }
            }
        }
    }

    async fn release_seq(&self, from: Id, client_msg_id: &str) {
        // A leftover reservation only expires later; it never changes an outcome.
        if let Err(e) = self.state.release_seq(from, client_msg_id).await {
            tracing::debug!(error = %e, "seq reservation not released");
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

    /// Stores and delivers a `system` message to one user. `notice_id` names
    /// this notice for this user: posting it again (a retried task) stores
    /// nothing new, because (sender, client_msg_id) is unique.
    pub async fn post_system_notice(
        &self,
        user: Id,
        notice_id: String,
        content: String,
        metadata: serde_json::Value,
    ) -> LogicResult<AckFrame> {
        let mut draft = self.system_draft(
            single_conversation_id(SYSTEM_USER, user),
            user.0,
            0,
            MessageType::System,
            content,
            metadata,
        );
        draft.client_msg_id = notice_id;
        self.commit(draft, None).await
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
        }
    }
}

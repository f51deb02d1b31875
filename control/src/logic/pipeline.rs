//! The message pipeline (DESIGN.md §4): validate, de-duplicate, authorize, assign
//! conversation and seq, persist, then route. A WebSocket send (through the
//! upstream consumer) and `POST /messages` both enter at [`Logic::send`].

use gochat_proto::frames::{AckFrame, MessageType, SendFrame};
use gochat_proto::ids::{
    ConversationRef, Id, SYSTEM_USER, group_conversation_id, now_millis, parse_conversation_id,
    single_conversation_id,
};
use gochat_proto::kafka::Origin;

use super::{Logic, LogicError, LogicResult};
use crate::repo::{ConversationInfo, StoreOutcome, StoredMessage};
use crate::state::SeqAlloc;

const MAX_CLIENT_MSG_ID: usize = 64;
const MAX_MENTIONS: usize = 100;
// Each pass means another writer took our seq first; more than a few is a bug.
const MAX_SEQ_ATTEMPTS: usize = 16;

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

impl Logic {
    /// Handles a send by `from`; returns its ack (the same ack for a resend).
    /// `origin` is the connection the send came through, which gets the ack frame.
    pub async fn send(
        &self,
        from: Id,
        frame: SendFrame,
        origin: Option<&Origin>,
    ) -> LogicResult<AckFrame> {
        self.validate_send(&frame)?;
        if let Some(original) = self.repo.find_message(from.0, &frame.client_msg_id).await? {
            let ack = ack_of(&original);
            self.route_ack(&ack, origin).await?;
            return Ok(ack);
        }
        if !self
            .state
            .allow_send(from, self.config.sends_per_second)
            .await?
        {
            return Err(LogicError::RateLimited);
        }
        let draft = self.authorize_send(from, &frame).await?;
        self.commit(draft, origin).await
    }

    fn validate_send(&self, frame: &SendFrame) -> LogicResult<()> {
        let bad = |m: &str| Err(LogicError::BadRequest(m.to_owned()));
        if frame.client_msg_id.is_empty() || frame.client_msg_id.len() > MAX_CLIENT_MSG_ID {
            return bad("client_msg_id must be 1 to 64 bytes");
        }
        if frame.to_user_id.is_some() == frame.group_id.is_some() {
            return bad("exactly one of to_user_id and group_id");
        }
        if !frame.message_type.client_may_send() {
            return Err(LogicError::Forbidden(
                "system messages come from the server only".into(),
            ));
        }
        if frame.content.is_empty() {
            return bad("content is empty");
        }
        if frame.content.len() > self.config.max_content_bytes {
            return Err(LogicError::TooLarge(format!(
                "content is over {} bytes",
                self.config.max_content_bytes
            )));
        }
        if !frame.metadata.is_object() {
            return bad("metadata must be an object");
        }
        if frame.mentions.len() > MAX_MENTIONS {
            return bad("too many mentions");
        }
        if !frame.mentions.is_empty() && frame.group_id.is_none() {
            return bad("mentions are for group messages");
        }
        if frame
            .mentions
            .iter()
            .any(|m| m != "all" && m.parse::<Id>().is_err())
        {
            return bad("a mention is a user id or \"all\"");
        }
        Ok(())
    }

    /// Checks who may send where, and drafts the message (seq still unset).
    async fn authorize_send(&self, from: Id, frame: &SendFrame) -> LogicResult<StoredMessage> {
        let (conversation_id, to_user_id, group_id) = match (frame.to_user_id, frame.group_id) {
            (Some(to), None) => {
                self.repo
                    .get_user(to.0)
                    .await
                    .map_err(|_| LogicError::NotFound(format!("user {to} not found")))?;
                if self.repo.is_blocked(to.0, from.0).await? {
                    return Err(LogicError::Forbidden(format!(
                        "user {to} does not accept your messages"
                    )));
                }
                if self.config.require_friendship
                    && to != from
                    && !self.repo.are_friends(from.0, to.0).await?
                {
                    return Err(LogicError::Forbidden(format!(
                        "user {to} is not your friend"
                    )));
                }
                (single_conversation_id(from, to), to.0, 0)
            }
            (None, Some(group)) => {
                if self.repo.get_member(group.0, from.0).await?.is_none() {
                    return Err(LogicError::Forbidden(format!(
                        "not a member of group {group}"
                    )));
                }
                (group_conversation_id(group), 0, group.0)
            }
            _ => {
                return Err(LogicError::BadRequest(
                    "exactly one of to_user_id and group_id".into(),
                ));
            }
        };
        let mut mentions: Vec<String> = Vec::new();
        for m in &frame.mentions {
            if !mentions.contains(m) {
                mentions.push(m.clone());
            }
        }
        Ok(StoredMessage {
            message_id: 0,
            conversation_id,
            seq_id: 0,
            from_user_id: from.0,
            to_user_id,
            group_id,
            message_type: frame.message_type.as_str().to_owned(),
            content: frame.content.clone(),
            metadata_json: frame.metadata.to_string(),
            mentions,
            client_msg_id: frame.client_msg_id.clone(),
            timestamp: 0,
        })
    }

    /// Assigns id and seq, stores, routes; returns the ack.
    pub(crate) async fn commit(
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
        Err(LogicError::Repo(crate::repo::RepoError::Unavailable(
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

    /// Stores and delivers a `system` message to one user.
    pub async fn post_system_notice(
        &self,
        user: Id,
        content: String,
        metadata: serde_json::Value,
    ) -> LogicResult<AckFrame> {
        let draft = self.system_draft(
            single_conversation_id(SYSTEM_USER, user),
            user.0,
            0,
            MessageType::System,
            content,
            metadata,
        );
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
            // Unique per system message: system messages are never resent.
            client_msg_id: format!("sys-{}", self.ids.next_id()),
            timestamp: 0,
        }
    }

    /// May `user` read and write this conversation? Returns what it is.
    pub async fn authorize_conversation(
        &self,
        user: Id,
        conversation_id: &str,
    ) -> LogicResult<ConversationInfo> {
        let not_found =
            || LogicError::NotFound(format!("conversation {conversation_id} not found"));
        match parse_conversation_id(conversation_id) {
            Some(ConversationRef::Group(group)) => {
                if self.repo.get_member(group.0, user.0).await?.is_none() {
                    self.repo
                        .get_group(group.0)
                        .await
                        .map_err(|_| not_found())?;
                    return Err(LogicError::Forbidden(format!(
                        "not a member of group {group}"
                    )));
                }
                self.repo
                    .get_conversation(conversation_id)
                    .await?
                    .ok_or_else(not_found)
            }
            Some(ConversationRef::Single) => {
                let info = self
                    .repo
                    .get_conversation(conversation_id)
                    .await?
                    .ok_or_else(not_found)?;
                if info.user_low != user.0 && info.user_high != user.0 {
                    return Err(LogicError::Forbidden(
                        "not a participant of this conversation".into(),
                    ));
                }
                Ok(info)
            }
            None => Err(LogicError::BadRequest(format!(
                "{conversation_id:?} is not a conversation id"
            ))),
        }
    }

    /// Moves `user`'s read cursor and tells the other participants.
    pub async fn read(&self, user: Id, conversation_id: &str, seq_id: i64) -> LogicResult<i64> {
        if seq_id < 0 {
            return Err(LogicError::BadRequest("seq_id is not negative".into()));
        }
        let info = self.authorize_conversation(user, conversation_id).await?;
        let cursor = self.repo.mark_read(user.0, conversation_id, seq_id).await?;
        self.route_read(&info, user, cursor).await?;
        Ok(cursor)
    }

    /// Relays a typing indicator.
    pub async fn typing(&self, user: Id, conversation_id: &str) -> LogicResult<()> {
        let info = self.authorize_conversation(user, conversation_id).await?;
        self.route_typing(&info, user).await
    }
}

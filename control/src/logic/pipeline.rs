//! The send path (docs/design.md §4): validate, de-duplicate, authorize, then
//! hand the drafts to [`MessageWriter::commit_batch`] for seq, persistence and
//! routing, a batch at a time ([`Logic::send_batch`]). Sends reach it only
//! through the process's one [`super::SendQueue`]: a WebSocket send (through
//! the upstream consumer), `POST /messages` and gRPC `Send` alike.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use gochat_proto::frames::{AckFrame, MessageType, SendFrame};
use gochat_proto::ids::{
    ConversationRef, Id, group_conversation_id, parse_conversation_id, single_conversation_id,
};
use gochat_proto::kafka::Origin;

use opentelemetry::context::FutureExt;

use super::changes::Change;
use super::facts::Fact;
use super::writer::{Draft, ack_of, stage_done};
use super::{Logic, LogicError, LogicResult};
use crate::repo::{ConversationInfo, StoredMessage};

pub(super) const MAX_CLIENT_MSG_ID: usize = 64;

/// One send: who, what, and the connection it came through (which gets the
/// ack), if it came through a gateway.
#[derive(Debug, Clone)]
pub struct Send {
    /// The sender (from the token or the gateway, never from the frame).
    pub from: Id,
    /// The `send` frame.
    pub frame: SendFrame,
    /// The sender's connection.
    pub origin: Option<Origin>,
    /// For an edit or a recall (`frame.message_type` says which): the
    /// message it changes. The frame's recipient fields are then unset; the
    /// target's conversation decides them.
    pub change: Option<Change>,
    /// The send's span, when the frame came traced (see `spans.rs`).
    pub trace: Option<opentelemetry::Context>,
}

impl Send {
    /// A message (a `send` frame or `POST /messages`).
    pub fn message(from: Id, frame: SendFrame, origin: Option<Origin>) -> Self {
        Send {
            from,
            frame,
            origin,
            change: None,
            trace: None,
        }
    }
}

const MAX_MENTIONS: usize = 100;

impl Logic {
    /// Handles a batch of sends as one group commit; one result per send, in
    /// order. A refused send (invalid, unauthorized, rate-limited) fails
    /// alone. The outer error is the batch's: a dependency is down, and the
    /// whole batch may be retried (what was stored comes back as duplicates).
    pub async fn send_batch(&self, sends: Vec<Send>) -> LogicResult<Vec<LogicResult<AckFrame>>> {
        let mut results: Vec<Option<LogicResult<AckFrame>>> = sends.iter().map(|_| None).collect();
        let valid: Vec<usize> = (0..sends.len())
            .filter(|&i| match self.validate(&sends[i]) {
                Ok(()) => true,
                Err(e) => {
                    results[i] = Some(Err(e));
                    false
                }
            })
            .collect();
        // One lookup for the batch: which sends were stored before (resends).
        let keys: Vec<(i64, String)> = valid
            .iter()
            .map(|&i| (sends[i].from.0, sends[i].frame.client_msg_id.clone()))
            .collect();
        let started = std::time::Instant::now();
        let originals = self.repo.find_messages(&keys).await?;
        stage_done("dedup", started);
        let mut fresh = Vec::new();
        let mut resent = Vec::new();
        // A send resent before its first copy was handled can be in this
        // batch twice or more (a client after an outage resends every few
        // seconds): the first copy goes on, the others get its answer. Left
        // to the store, one such pair would make it store the whole batch
        // message by message, and each copy would spend a rate token.
        let mut firsts: HashMap<(i64, &str), usize> = HashMap::new();
        let mut copies = Vec::new();
        for (&i, original) in valid.iter().zip(originals) {
            match original {
                Some(original) => {
                    let ack = ack_of(&original);
                    resent.push((ack.clone(), &sends[i]));
                    results[i] = Some(Ok(ack));
                }
                None => match firsts.entry((sends[i].from.0, &sends[i].frame.client_msg_id)) {
                    Entry::Occupied(first) => copies.push((i, *first.get())),
                    Entry::Vacant(slot) => {
                        slot.insert(i);
                        fresh.push(i);
                    }
                },
            }
        }
        // Each check reads only its own send: they run concurrently.
        let checks = fresh.iter().map(|&i| self.admit_send(&sends[i]));
        let started = std::time::Instant::now();
        let checks = futures::future::join_all(checks).await;
        stage_done("authorize", started);
        let mut drafts = Vec::new();
        let mut placed = Vec::new();
        // A recall admitted in this batch is not stored yet: later changes
        // of its target in the same batch were checked without it.
        let mut recalled_here = Vec::new();
        for (&i, checked) in fresh.iter().zip(checks) {
            let checked = checked.and_then(|draft| {
                let Some(change) = &sends[i].change else {
                    return Ok(draft);
                };
                if recalled_here.contains(&change.message_id) {
                    return Err(LogicError::Forbidden("the message was recalled".into()));
                }
                if sends[i].frame.message_type == MessageType::Recall {
                    recalled_here.push(change.message_id);
                }
                Ok(draft)
            });
            match checked {
                Ok(message) => {
                    drafts.push(Draft {
                        message,
                        origin: sends[i].origin.clone(),
                        trace: sends[i].trace.clone(),
                    });
                    placed.push(i);
                }
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let acks = resent
            .iter()
            .map(|(ack, send)| self.ack_under_trace(ack, send));
        for sent in futures::future::join_all(acks).await {
            sent?;
        }
        let committed = self.writer.commit_batch(drafts).await?;
        for (i, result) in placed.into_iter().zip(committed) {
            results[i] = Some(result);
        }
        let mut copy_acks = Vec::new();
        for (copy, first) in copies {
            results[copy] = Some(match &results[first] {
                Some(Ok(ack)) => {
                    copy_acks.push((ack.clone(), &sends[copy]));
                    Ok(ack.clone())
                }
                Some(Err(e)) => Err(e.for_copy()),
                None => Err(LogicError::Internal("send left unhandled".into())),
            });
        }
        // After the commit: a copy's ack follows its message's push.
        let acks = copy_acks
            .iter()
            .map(|(ack, send)| self.ack_under_trace(ack, send));
        for sent in futures::future::join_all(acks).await {
            sent?;
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(LogicError::Internal("send left unhandled".into()))))
            .collect())
    }

    /// Sends a resend's ack under its own trace (not the commit's).
    async fn ack_under_trace(&self, ack: &AckFrame, send: &Send) -> LogicResult<()> {
        let trace = send.trace.clone().unwrap_or_default();
        self.writer
            .route_ack(ack, send.origin.as_ref())
            .with_context(trace)
            .await
    }

    /// Rate-limits and authorizes one new send; its draft.
    async fn admit_send(&self, send: &Send) -> LogicResult<StoredMessage> {
        if !self
            .state
            .allow_send(send.from, self.config.sends_per_second)
            .await?
        {
            return Err(LogicError::RateLimited);
        }
        match &send.change {
            Some(change) => self.authorize_change(send.from, &send.frame, change).await,
            None => self.authorize_send(send.from, &send.frame).await,
        }
    }

    fn validate(&self, send: &Send) -> LogicResult<()> {
        match &send.change {
            Some(change) => self.validate_change(&send.frame, change),
            None => self.validate_send(&send.frame),
        }
    }

    /// The content and metadata rules of a message (a send, or an edit's new text).
    pub(super) fn check_content(&self, frame: &SendFrame) -> LogicResult<()> {
        if frame.content.is_empty() {
            return Err(LogicError::BadRequest("content is empty".into()));
        }
        if frame.content.len() > self.config.max_content_bytes {
            return Err(LogicError::TooLarge(format!(
                "content is over {} bytes",
                self.config.max_content_bytes
            )));
        }
        super::metadata::check(frame, self.config.max_content_bytes)
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
        self.check_content(frame)?;
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
                if !self.user_exists(to).await? {
                    return Err(LogicError::NotFound(format!("user {to} not found")));
                }
                let blocked = self.facts.get(
                    Fact::Blocked(to.0, from.0),
                    self.repo.is_blocked(to.0, from.0),
                );
                if blocked.await? {
                    return Err(LogicError::Forbidden(format!(
                        "user {to} does not accept your messages"
                    )));
                }
                if self.config.require_friendship
                    && to != from
                    && !self
                        .facts
                        .get(
                            Fact::friends(from.0, to.0),
                            self.repo.are_friends(from.0, to.0),
                        )
                        .await?
                {
                    return Err(LogicError::Forbidden(format!(
                        "user {to} is not your friend"
                    )));
                }
                (single_conversation_id(from, to), to.0, 0)
            }
            (None, Some(group)) => {
                self.check_may_post(group, from).await?;
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
            edited_at: 0,
            recalled: false,
        })
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
        self.writer.route_read(&info, user, cursor).await?;
        Ok(cursor)
    }

    /// Relays a typing indicator.
    pub async fn typing(&self, user: Id, conversation_id: &str) -> LogicResult<()> {
        let info = self.authorize_conversation(user, conversation_id).await?;
        self.writer.route_typing(&info, user).await
    }
}

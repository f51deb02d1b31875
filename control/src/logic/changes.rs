//! Edits, recalls and delete-for-me (PROTOCOL.md v1.1, "the event model").
//!
//! An edit or a recall rides the send path as a [`Send`] whose `change`
//! names its target: it is de-duplicated by `client_msg_id`, rate-limited
//! and group-committed like any message, stored as the conversation's next
//! entry (so a client that syncs by seq sees every change) and, in the same
//! transaction, applied to its target (`repo::sql::changes`). This file holds
//! the rules: who may change which message, and until when.

use gochat_proto::frames::{ChangeFrame, MessageType, SendFrame};
use gochat_proto::ids::{ConversationRef, Id, now_millis, parse_conversation_id};
use gochat_proto::kafka::Origin;
use serde_json::{Value, json};

use super::facts::Fact;
use super::pipeline::{MAX_CLIENT_MSG_ID, Send};
use super::{Logic, LogicError, LogicResult};
use crate::repo::{ConversationInfo, StoredMessage, TARGET_MESSAGE_ID, TARGET_SEQ_ID, role};

/// What an edit or a recall changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The conversation of the target.
    pub conversation_id: String,
    /// The target.
    pub message_id: Id,
}

impl Send {
    /// An `edit` or `recall` frame (`kind` says which) as a send.
    pub fn change(from: Id, kind: MessageType, frame: ChangeFrame, origin: Option<Origin>) -> Self {
        Send {
            from,
            frame: SendFrame {
                client_msg_id: frame.client_msg_id,
                to_user_id: None,
                group_id: None,
                message_type: kind,
                content: frame.content.unwrap_or_default(),
                metadata: frame.metadata.unwrap_or_else(|| json!({})),
                mentions: Vec::new(),
            },
            origin,
            change: Some(Change {
                conversation_id: frame.conversation_id,
                message_id: frame.message_id,
            }),
            trace: None,
        }
    }
}

fn forbidden<T>(why: &str) -> LogicResult<T> {
    Err(LogicError::Forbidden(why.to_owned()))
}

impl Logic {
    /// The checks of an edit or recall that need no storage.
    pub(super) fn validate_change(&self, frame: &SendFrame, change: &Change) -> LogicResult<()> {
        let bad = |m: &str| Err(LogicError::BadRequest(m.to_owned()));
        if frame.client_msg_id.is_empty() || frame.client_msg_id.len() > MAX_CLIENT_MSG_ID {
            return bad("client_msg_id must be 1 to 64 bytes");
        }
        if parse_conversation_id(&change.conversation_id).is_none() {
            return bad("conversation_id is not a conversation id");
        }
        if frame.message_type == MessageType::Recall {
            if !frame.content.is_empty() || frame.metadata != json!({}) {
                return bad("a recall carries no content or metadata");
            }
            return Ok(());
        }
        // An edit makes a text message: its metadata follows a text's rules.
        self.check_content(&SendFrame {
            message_type: MessageType::Text,
            ..frame.clone()
        })
    }

    /// Checks who may make this change, and drafts its entry (seq unset).
    pub(super) async fn authorize_change(
        &self,
        from: Id,
        frame: &SendFrame,
        change: &Change,
    ) -> LogicResult<StoredMessage> {
        let info = self
            .authorize_conversation(from, &change.conversation_id)
            .await?;
        let target = self.changeable_target(change).await?;
        if info.group_id != 0 {
            let group = Id(info.group_id);
            // A mute blocks edits like sends; a dissolved group takes neither,
            // nor recalls.
            if frame.message_type == MessageType::Edit {
                self.check_may_post(group, from).await?;
            } else if self.repo.get_group(group.0).await?.dissolved {
                return forbidden("the group was dissolved");
            }
        }
        let age_ms = now_millis().saturating_sub(target.timestamp);
        let own = target.from_user_id == from.0;
        let peer = match parse_conversation_id(&info.conversation_id) {
            Some(ConversationRef::Single) if info.user_low == from.0 => info.user_high,
            Some(ConversationRef::Single) => info.user_low,
            _ => 0,
        };
        if frame.message_type == MessageType::Edit {
            if !own {
                return forbidden("only the sender may edit a message");
            }
            if target.message_type != MessageType::Text.as_str() {
                return forbidden("only text messages can be edited");
            }
            if age_ms > self.config.edit_window_s.saturating_mul(1000) as i64 {
                return forbidden("the edit window has passed");
            }
            // An edit delivers new text: a peer's block stops it like a send.
            if peer != 0 && peer != from.0 {
                let blocked = self.facts.get(
                    Fact::Blocked(peer, from.0),
                    self.repo.is_blocked(peer, from.0),
                );
                if blocked.await? {
                    return forbidden("this user does not accept your messages");
                }
            }
        } else {
            let in_window =
                own && age_ms <= self.config.recall_window_s.saturating_mul(1000) as i64;
            if !in_window && !self.may_recall_as_manager(from, &info, &target).await? {
                return forbidden(if own {
                    "the recall window has passed"
                } else {
                    "only the sender, or a group's owner or admin, may recall a message"
                });
            }
        }
        let mut metadata = frame.metadata.as_object().cloned().unwrap_or_default();
        metadata.insert(TARGET_MESSAGE_ID.into(), json!(change.message_id));
        metadata.insert(TARGET_SEQ_ID.into(), json!(target.seq_id));
        Ok(StoredMessage {
            message_id: 0,
            conversation_id: info.conversation_id,
            seq_id: 0,
            from_user_id: from.0,
            to_user_id: peer,
            group_id: info.group_id,
            message_type: frame.message_type.as_str().to_owned(),
            content: frame.content.clone(),
            metadata_json: Value::Object(metadata).to_string(),
            mentions: Vec::new(),
            client_msg_id: frame.client_msg_id.clone(),
            timestamp: 0,
            edited_at: 0,
            recalled: false,
        })
    }

    /// The target of a change, if it is a message that may still change:
    /// not an edit or recall itself, not a system message, not recalled.
    async fn changeable_target(&self, change: &Change) -> LogicResult<StoredMessage> {
        let target = self
            .repo
            .get_message(change.message_id.0)
            .await?
            .filter(|m| m.conversation_id == change.conversation_id)
            .ok_or_else(|| {
                LogicError::NotFound(format!("message {} not found", change.message_id))
            })?;
        match MessageType::parse(&target.message_type) {
            Some(t) if t.is_change() => forbidden("an edit or a recall cannot itself be changed"),
            Some(t) if !t.client_may_send() => forbidden("system messages cannot be changed"),
            _ if target.recalled => forbidden("the message was recalled"),
            _ => Ok(target),
        }
    }

    /// A group's owner or admin may recall, at any time, their own messages
    /// and those of lower roles (members, or people no longer in the group).
    async fn may_recall_as_manager(
        &self,
        me: Id,
        info: &ConversationInfo,
        target: &StoredMessage,
    ) -> LogicResult<bool> {
        if info.group_id == 0 {
            return Ok(false);
        }
        let role_of = |user: i64| async move {
            LogicResult::Ok(
                self.repo
                    .get_member(info.group_id, user)
                    .await?
                    .map_or(0, |m| m.role),
            )
        };
        let mine = role_of(me.0).await?;
        if mine < role::ADMIN {
            return Ok(false);
        }
        Ok(target.from_user_id == me.0 || mine > role_of(target.from_user_id).await?)
    }

    /// Deletes a message from the caller's own history (a tombstone keeps
    /// its seq there); everyone else's history is unchanged.
    pub async fn delete_for_me(
        &self,
        me: Id,
        conversation_id: &str,
        message_id: Id,
    ) -> LogicResult<()> {
        self.authorize_conversation(me, conversation_id).await?;
        let found = self
            .repo
            .get_message(message_id.0)
            .await?
            .is_some_and(|m| m.conversation_id == conversation_id);
        if !found {
            return Err(LogicError::NotFound(format!(
                "message {message_id} not found"
            )));
        }
        Ok(self.repo.hide_message(me.0, message_id.0).await?)
    }

    /// A stored message by id (the entry an edit or recall made, for REST).
    pub async fn stored_message(&self, message_id: Id) -> LogicResult<StoredMessage> {
        self.repo
            .get_message(message_id.0)
            .await?
            .ok_or_else(|| LogicError::NotFound(format!("message {message_id} not found")))
    }
}

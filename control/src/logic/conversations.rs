//! Reading conversations: the list with unread counts, history pages (always
//! from SQL, never the push path: invariant 4), and mentions.

use std::collections::HashSet;

use bytes::Bytes;
use gochat_proto::frames::ServerFrame;
use gochat_proto::ids::Id;

use super::delivery::to_other_devices;
use super::{Logic, LogicError, LogicResult};
use crate::repo::{ConversationSettings, ConversationSummary, Page, SettingsPatch, StoredMessage};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// Which page of history: at most one of `after_seq` and `before_seq`;
/// neither means the newest page, which is what opening a chat shows.
#[derive(Debug, Default)]
pub struct HistoryQuery {
    /// Messages with seq above this, ascending.
    pub after_seq: Option<i64>,
    /// The messages just below this, ascending.
    pub before_seq: Option<i64>,
    /// Page size, clamped to 1..=200 (default 50).
    pub limit: Option<i64>,
}

/// A page of history as one user sees it.
#[derive(Debug)]
pub struct History {
    /// Ascending by seq.
    pub messages: Vec<StoredMessage>,
    /// More lie beyond this page in the direction asked.
    pub has_more: bool,
    /// Ids of the messages this user deleted for themself: shown as tombstones.
    pub hidden: HashSet<i64>,
}

/// What `PUT /conversations/{cid}/settings` changes (absent: unchanged).
#[derive(Debug, Default)]
pub struct SettingsChange {
    /// No offline pushes from the conversation.
    pub muted: Option<bool>,
    /// Listed first.
    pub pinned: Option<bool>,
    /// Filed away.
    pub archived: Option<bool>,
}

/// Who has read a message.
#[derive(Debug)]
pub struct Reads {
    /// Participants other than the sender whose cursor is at it or beyond.
    pub read_count: i64,
    /// Who they are, by id; `None` in groups over `logic.receipt_list_max`.
    pub read_by: Option<Vec<Id>>,
}

impl Logic {
    /// Changes the caller's settings of a conversation and tells the
    /// caller's other devices (`device` is the one asking).
    pub async fn update_settings(
        &self,
        me: Id,
        device: &str,
        conversation_id: &str,
        change: SettingsChange,
    ) -> LogicResult<ConversationSettings> {
        self.authorize_conversation(me, conversation_id).await?;
        let settings = self
            .repo
            .update_settings(&SettingsPatch {
                user_id: me.0,
                conversation_id: conversation_id.to_owned(),
                muted: change.muted,
                pinned: change.pinned,
                archived: change.archived,
            })
            .await?;
        let frame = ServerFrame::ConversationSettings {
            conversation_id: settings.conversation_id.clone(),
            muted: settings.muted,
            pinned: settings.pinned,
            archived: settings.archived,
        };
        let frame = Bytes::from(frame.to_json());
        to_other_devices(self.state.as_ref(), self.bus.as_ref(), me, device, frame).await?;
        Ok(settings)
    }

    /// One of the user's devices holds everything up to `seq_id` (the
    /// `delivered` frame): pending offline pushes up to it are dropped.
    pub async fn delivered(&self, me: Id, conversation_id: &str, seq_id: i64) -> LogicResult<()> {
        if seq_id < 0 {
            return Err(LogicError::BadRequest("seq_id is not negative".into()));
        }
        self.authorize_conversation(me, conversation_id).await?;
        Ok(self
            .repo
            .mark_delivered(me.0, conversation_id, seq_id)
            .await?)
    }

    /// Read receipts of one message, for any participant of its conversation.
    pub async fn reads(&self, me: Id, conversation_id: &str, message_id: Id) -> LogicResult<Reads> {
        let info = self.authorize_conversation(me, conversation_id).await?;
        let message = self
            .repo
            .get_message(message_id.0)
            .await?
            .filter(|m| m.conversation_id == conversation_id)
            .ok_or_else(|| LogicError::NotFound(format!("message {message_id} not found")))?;
        let max = self.config.receipt_list_max;
        let listed = info.group_id == 0
            || usize::try_from(self.repo.get_group(info.group_id).await?.member_count)
                .is_ok_and(|n| n <= max);
        let limit = if listed {
            u32::try_from(max).unwrap_or(u32::MAX)
        } else {
            0
        };
        let (read_count, readers) = self
            .repo
            .read_receipts(conversation_id, message.seq_id, message.from_user_id, limit)
            .await?;
        Ok(Reads {
            read_count,
            read_by: listed.then(|| readers.into_iter().map(Id).collect()),
        })
    }

    /// The caller's conversations, newest first.
    pub async fn conversations(&self, me: Id) -> LogicResult<Vec<ConversationSummary>> {
        Ok(self.repo.list_conversations(me.0).await?)
    }

    /// A page of a conversation the caller may read.
    pub async fn history(
        &self,
        me: Id,
        conversation_id: &str,
        query: HistoryQuery,
    ) -> LogicResult<History> {
        let limit = query.limit.map_or(DEFAULT_LIMIT, |n| {
            u32::try_from(n).unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT)
        });
        let page = match (query.after_seq, query.before_seq) {
            (Some(_), Some(_)) => {
                return Err(LogicError::BadRequest(
                    "after_seq or before_seq, not both".into(),
                ));
            }
            (Some(n), None) => Page::After(n),
            (None, Some(n)) => Page::Before(n),
            (None, None) => Page::Before(i64::MAX),
        };
        self.authorize_conversation(me, conversation_id).await?;
        let page = self
            .repo
            .list_messages(conversation_id, page, limit)
            .await?;
        let ids: Vec<i64> = page.messages.iter().map(|m| m.message_id).collect();
        let hidden = self.repo.hidden_among(me.0, &ids).await?;
        Ok(History {
            messages: page.messages,
            has_more: page.has_more,
            hidden: hidden.into_iter().collect(),
        })
    }

    /// Unread messages that mention the caller, newest first.
    pub async fn mentions(&self, me: Id) -> LogicResult<Vec<StoredMessage>> {
        Ok(self.repo.list_mentions(me.0).await?)
    }
}

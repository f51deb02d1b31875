//! Where a stored message, an ack, a read receipt or a typing indicator goes.
//! 1:1 chats and small groups get the full `message` on every live connection
//! of the member list, and offline recipients an `offline_push` task; large
//! groups go through the edge's group rooms ([`super::rooms`]) and push only
//! to mentioned members.

use opentelemetry::context::FutureExt;
use tokio::sync::OnceCell;

use bytes::Bytes;
use gochat_proto::frames::{AckFrame, MessageFrame, MessageType, ServerFrame};
use gochat_proto::ids::{Id, SYSTEM_USER};
use gochat_proto::kafka::{OfflinePush, Origin, Task, TaskRecord};

use super::LogicResult;
use super::delivery::{close_token, deliver, origin_record, plan_delivery, to_origin};
use super::writer::{Draft, MessageWriter};
use crate::bus::DownstreamRecord;
use crate::repo::{ConversationInfo, StoredMessage};

/// The client's view of a stored message.
pub fn message_frame(m: &StoredMessage) -> MessageFrame {
    MessageFrame {
        message_id: Id(m.message_id),
        conversation_id: m.conversation_id.clone(),
        seq_id: m.seq_id,
        from_user_id: Id(m.from_user_id),
        to_user_id: (m.group_id == 0).then_some(Id(m.to_user_id)),
        group_id: (m.group_id != 0).then_some(Id(m.group_id)),
        message_type: MessageType::parse(&m.message_type).unwrap_or_default(),
        content: m.content.clone(),
        metadata: serde_json::from_str(&m.metadata_json).unwrap_or_else(|_| serde_json::json!({})),
        mentions: m.mentions.clone(),
        client_msg_id: (m.from_user_id != SYSTEM_USER.0).then(|| m.client_msg_id.clone()),
        timestamp: m.timestamp,
        edited_at: (m.edited_at != 0).then_some(m.edited_at),
        recalled: m.recalled,
    }
}

/// What routing one stored message takes: its downstream records, in the
/// order they must arrive, and its tasks (offline pushes).
#[derive(Default)]
pub(super) struct Routed {
    pub(super) records: Vec<DownstreamRecord>,
    pub(super) tasks: Vec<TaskRecord>,
}

fn frame_bytes(frame: &ServerFrame) -> Bytes {
    Bytes::from(frame.to_json())
}

impl MessageWriter {
    /// Kicks and closes the connections that used a logged-out token.
    pub(super) async fn close_token(&self, user: Id, token: u64) -> LogicResult<()> {
        let frame = frame_bytes(&ServerFrame::Kick {
            reason: "logged out".into(),
        });
        Ok(close_token(self.state.as_ref(), self.bus.as_ref(), user, token, frame).await?)
    }

    /// The record carrying `ack` to the connection the send came through.
    pub(super) fn ack_record(ack: &AckFrame, origin: &Origin) -> DownstreamRecord {
        origin_record(origin, frame_bytes(&ServerFrame::Ack(ack.clone())))
    }

    pub(super) async fn route_ack(
        &self,
        ack: &AckFrame,
        origin: Option<&Origin>,
    ) -> LogicResult<()> {
        if let Some(origin) = origin {
            to_origin(
                self.bus.as_ref(),
                origin,
                frame_bytes(&ServerFrame::Ack(ack.clone())),
                true,
            )
            .await?;
        }
        Ok(())
    }

    /// Routes the stored drafts at `stored` and sends `acks` behind them.
    /// Every message's records are worked out first (registry lookups run
    /// concurrently), then all the batch's records go to the log in one
    /// ordered sequence — each conversation's messages in seq order, each
    /// ack after its message — queued together rather than one round trip
    /// each; then the offline pushes.
    pub(super) async fn route_batch(
        &self,
        drafts: &[Draft],
        stored: &[usize],
        acks: Vec<DownstreamRecord>,
    ) -> LogicResult<()> {
        let mut order: Vec<&Draft> = stored.iter().map(|&i| &drafts[i]).collect();
        order.sort_by(|a, b| {
            (a.message.conversation_id.as_str(), a.message.seq_id)
                .cmp(&(b.message.conversation_id.as_str(), b.message.seq_id))
        });
        let gateways = OnceCell::new();
        // Each message's records and tasks under its own send's trace (an
        // untraced one under none, not the batch's).
        let trace_of = |d: &Draft| d.trace.clone().unwrap_or_default();
        let plans = order.iter().map(|d| {
            self.plan_message(&d.message, d.origin.as_ref(), &gateways)
                .with_context(trace_of(d))
        });
        let mut records = Vec::new();
        let mut tasks = Vec::new();
        for (plan, d) in futures::future::join_all(plans)
            .await
            .into_iter()
            .zip(&order)
        {
            let plan = plan?;
            records.extend(plan.records);
            tasks.extend(plan.tasks.into_iter().map(|t| (t, trace_of(d))));
        }
        records.extend(acks);
        self.bus.send_downstream_many(&records).await?;
        let tasks = tasks
            .iter()
            .map(|(t, cx)| self.bus.send_task(t).with_context(cx.clone()));
        for sent in futures::future::join_all(tasks).await {
            sent?;
        }
        Ok(())
    }

    /// The members (or the two participants) of a message's conversation.
    async fn audience(&self, group_id: i64, a: i64, b: i64) -> LogicResult<Vec<Id>> {
        if group_id != 0 {
            return Ok(self
                .repo
                .list_members(group_id)
                .await?
                .into_iter()
                .map(|m| Id(m.user_id))
                .collect());
        }
        Ok(if a == b {
            vec![Id(a)]
        } else {
            vec![Id(a), Id(b)]
        })
    }

    /// Where one stored message goes: its records and offline pushes.
    async fn plan_message(
        &self,
        m: &StoredMessage,
        origin: Option<&Origin>,
        gateways: &OnceCell<Vec<(String, u32)>>,
    ) -> LogicResult<Routed> {
        let frame = frame_bytes(&ServerFrame::Message(message_frame(m)));
        if m.group_id != 0 && self.is_large_group(m.group_id).await? {
            return self.plan_rooms(m, origin, frame, gateways).await;
        }
        let audience: Vec<Id> = self
            .audience(m.group_id, m.from_user_id, m.to_user_id)
            .await?
            .into_iter()
            .filter(|u| *u != SYSTEM_USER)
            .collect();
        let (records, delivered) =
            plan_delivery(self.state.as_ref(), &audience, origin, frame).await?;
        let mut tasks = Vec::new();
        // An edit or a recall changes what the user will see when they open
        // the chat; it is not news worth a notification.
        let is_change = MessageType::parse(&m.message_type).is_some_and(MessageType::is_change);
        for user in audience
            .iter()
            .filter(|u| !is_change && u.0 != m.from_user_id && !delivered.online.contains(u))
        {
            tasks.push(self.offline_push(*user, m).await);
        }
        Ok(Routed { records, tasks })
    }

    /// The offline push of `m` to `user`.
    pub(super) async fn offline_push(&self, user: Id, m: &StoredMessage) -> TaskRecord {
        let mentioned = m
            .mentions
            .iter()
            .any(|x| x == "all" || *x == user.to_string());
        let task = Task::OfflinePush(OfflinePush {
            user_id: user,
            message_id: Id(m.message_id),
            conversation_id: m.conversation_id.clone(),
            title: self.push_title(m, mentioned).await,
            content: self.push_text(m).await,
            push_type: if mentioned {
                "mention"
            } else if m.from_user_id == SYSTEM_USER.0 {
                "system"
            } else {
                "message"
            }
            .into(),
            seq_id: m.seq_id,
            created_at: m.timestamp,
        });
        self.task_record(task)
    }

    async fn sender_name(&self, m: &StoredMessage) -> String {
        if m.from_user_id == SYSTEM_USER.0 {
            return "GoChat".to_owned();
        }
        self.repo
            .get_user(m.from_user_id)
            .await
            .map(|u| {
                if u.nickname.is_empty() {
                    u.username
                } else {
                    u.nickname
                }
            })
            .unwrap_or_default()
    }

    /// A push notification's title.
    pub(super) async fn push_title(&self, m: &StoredMessage, mentioned: bool) -> String {
        if mentioned {
            format!("{} mentioned you", self.sender_name(m).await)
        } else {
            "New message".into()
        }
    }

    /// A push notification's body: who, and a preview.
    pub(super) async fn push_text(&self, m: &StoredMessage) -> String {
        let preview: String = match m.message_type.as_str() {
            "image" => "[image]".into(),
            "file" => "[file]".into(),
            "location" => "[location]".into(),
            _ => m.content.chars().take(100).collect(),
        };
        format!("{}: {preview}", self.sender_name(m).await)
    }

    pub(super) fn task_record(&self, task: Task) -> TaskRecord {
        TaskRecord::new(format!("task-{}", self.next_id()), task)
    }

    /// Read receipts go to everyone in 1:1 and small groups (the reader's other
    /// devices too, so their unread counts follow); never in large groups.
    pub(super) async fn route_read(
        &self,
        info: &ConversationInfo,
        user: Id,
        seq_id: i64,
    ) -> LogicResult<()> {
        if info.group_id != 0 && self.is_large_group(info.group_id).await? {
            deliver(
                self.state.as_ref(),
                self.bus.as_ref(),
                &[user],
                None,
                self.read_frame(info, user, seq_id),
            )
            .await?;
            return Ok(());
        }
        let audience = self
            .audience(info.group_id, info.user_low, info.user_high)
            .await?;
        deliver(
            self.state.as_ref(),
            self.bus.as_ref(),
            &audience,
            None,
            self.read_frame(info, user, seq_id),
        )
        .await?;
        Ok(())
    }

    fn read_frame(&self, info: &ConversationInfo, user: Id, seq_id: i64) -> Bytes {
        frame_bytes(&ServerFrame::Read {
            conversation_id: info.conversation_id.clone(),
            user_id: user,
            seq_id,
        })
    }

    pub(super) async fn route_typing(&self, info: &ConversationInfo, user: Id) -> LogicResult<()> {
        if info.group_id != 0 && self.is_large_group(info.group_id).await? {
            return Ok(());
        }
        let audience: Vec<Id> = self
            .audience(info.group_id, info.user_low, info.user_high)
            .await?
            .into_iter()
            .filter(|u| *u != user)
            .collect();
        let frame = frame_bytes(&ServerFrame::Typing {
            conversation_id: info.conversation_id.clone(),
            user_id: user,
        });
        deliver(
            self.state.as_ref(),
            self.bus.as_ref(),
            &audience,
            None,
            frame,
        )
        .await?;
        Ok(())
    }
}

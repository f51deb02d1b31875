//! Values carried on Kafka between tiers (seed 002, `"version":"1.0"`).
//!
//! - `im-upstream-topic`: [`UpstreamRecord`], a client frame plus who sent it and
//!   through which connection; key = from_user_id.
//! - `im-downstream-topic-{gateway}`: the value is a [`crate::frames::ServerFrame`]
//!   byte for byte; the key is a [`DownstreamKey`] naming the connections (or
//!   the group room) on the partition's core, so the edge never parses JSON on
//!   the way down.
//! - `im-task-topic` / `im-task-dlq`: [`TaskRecord`].

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

pub use crate::downstream::DownstreamKey;
use crate::frames::ClientFrame;
use crate::ids::Id;

/// Where a frame came from: the connection that gets the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Gateway id (names the downstream topic).
    pub gateway_id: String,
    /// Worker core on the gateway (the downstream partition).
    pub core: u32,
    /// Connection id on that core.
    pub conn_id: u64,
}

/// A client frame on `im-upstream-topic`: the frame's own fields, flat, plus
/// the sender and its connection (seed 002's flat layout).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamRecord {
    /// Always [`crate::WIRE_VERSION`].
    pub version: String,
    /// The authenticated sender (from the token, never from the client).
    pub from_user_id: Id,
    /// The sender's device.
    pub device_id: String,
    /// The connection to answer.
    #[serde(flatten)]
    pub origin: Origin,
    /// When the gateway received it.
    pub timestamp: i64,
    /// The client frame (`send`, `read` or `typing`).
    #[serde(flatten)]
    pub frame: ClientFrame,
}

const ENVELOPE_FIELDS: [&str; 7] = [
    "version",
    "from_user_id",
    "device_id",
    "gateway_id",
    "core",
    "conn_id",
    "timestamp",
];

// Hand-written so the flat layout can keep the frame strict: serde's flatten
// would hand the envelope fields to the frame, whose deny_unknown_fields refuses them.
impl<'de> Deserialize<'de> for UpstreamRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = Map::<String, Value>::deserialize(d)?;
        let take = |name: &str| {
            map.remove(name)
                .ok_or_else(|| D::Error::missing_field_owned(name))
        };
        let [version, from, device, gateway, core, conn, timestamp] = ENVELOPE_FIELDS.map(take);
        let origin = Origin {
            gateway_id: from_value(gateway?)?,
            core: from_value(core?)?,
            conn_id: from_value(conn?)?,
        };
        Ok(UpstreamRecord {
            version: from_value(version?)?,
            from_user_id: from_value(from?)?,
            device_id: from_value(device?)?,
            origin,
            timestamp: from_value(timestamp?)?,
            frame: from_value(Value::Object(map))?,
        })
    }
}

trait MissingOwned {
    fn missing_field_owned(name: &str) -> Self;
}
impl<E: serde::de::Error> MissingOwned for E {
    fn missing_field_owned(name: &str) -> Self {
        E::custom(format!("missing field `{name}`"))
    }
}

fn from_value<T: serde::de::DeserializeOwned, E: serde::de::Error>(v: Value) -> Result<T, E> {
    serde_json::from_value(v).map_err(E::custom)
}

/// A task on `im-task-topic` (and, after three failures, `im-task-dlq`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Unique per task.
    pub task_id: String,
    /// `task_type` + `payload`.
    #[serde(flatten)]
    pub task: Task,
    /// When it was first enqueued.
    pub timestamp: i64,
    /// How many times handling failed so far.
    #[serde(default)]
    pub retry_count: u32,
    /// Always [`crate::WIRE_VERSION`].
    pub version: String,
    /// The last failure, on retries and in the dead-letter topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The kinds of task (seed 002 §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task_type", content = "payload", rename_all = "snake_case")]
pub enum Task {
    /// Tell an offline user about a message through a push provider.
    OfflinePush(OfflinePush),
    /// Notify the online members of a large group.
    GroupFanout(GroupFanout),
    /// A user's connections changed: tell their friends whether they are online.
    Presence(PresenceChange),
    /// An admin's announcement: post it as a `system` message to these users.
    SystemNotice(SystemNotice),
}

impl Task {
    /// The record key: the target user or group, so one target's tasks stay in order
    /// while different targets spread over partitions.
    pub fn key(&self) -> String {
        match self {
            Task::OfflinePush(p) => format!("u{}", p.user_id),
            Task::GroupFanout(g) => format!("g{}", g.group_id),
            Task::Presence(p) => format!("u{}", p.user_id),
            // Batches of one push are independent: spread them over partitions.
            Task::SystemNotice(n) => match n.user_ids.first() {
                Some(first) => format!("n{}-{first}", n.push_id),
                None => format!("n{}", n.push_id),
            },
        }
    }
}

impl TaskRecord {
    /// A first attempt at `task`, stamped now.
    pub fn new(task_id: String, task: Task) -> Self {
        Self {
            task_id,
            task,
            timestamp: crate::ids::now_millis(),
            retry_count: 0,
            version: crate::WIRE_VERSION.into(),
            last_error: None,
        }
    }
}

/// Payload of `presence`: a gateway saw one of the user's connections open or
/// close. Whether the user is online is read from the session registry when
/// the task runs, so out-of-order hints still end in the true state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceChange {
    /// Whose connections changed.
    pub user_id: Id,
}

/// Payload of `offline_push`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfflinePush {
    /// Who to notify.
    pub user_id: Id,
    /// The message.
    pub message_id: Id,
    /// Where it is.
    #[serde(default)]
    pub conversation_id: String,
    /// Notification title.
    pub title: String,
    /// Notification body.
    pub content: String,
    /// `message`, `mention`, `system`.
    pub push_type: String,
    /// The message's place in its conversation: a read cursor at or past
    /// it by the time the push is due cancels it (v1.1; 0: never).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq_id: i64,
    /// When the message was stored (ms); the push waits until this plus
    /// the deployment's push delay (v1.1; 0: at once).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub created_at: i64,
}

/// Fields added after seed 002 are left out while unset, so a record
/// without them keeps the seed's shape.
fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Payload of `group_fanout`: an `@all` in a large group, pushed to every
/// offline member (online members got the message through the group rooms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupFanout {
    /// The group.
    pub group_id: Id,
    /// The stored message.
    pub message_id: Id,
    /// Members not to notify (the sender's connections got the ack).
    #[serde(default)]
    pub exclude_user_ids: Vec<Id>,
    /// Members per downstream batch.
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    /// The group's conversation.
    #[serde(default)]
    pub conversation_id: String,
    /// The message's seq.
    #[serde(default)]
    pub seq_id: i64,
    /// The push notification's title (an `@all`: "X mentioned you").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// The push notification's body.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content: String,
    /// When the message was stored (ms): the pushes wait until this plus
    /// the push delay (v1.1; 0: at once).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub created_at: i64,
}

/// Payload of `system_notice`: one batch of an admin push. The push is
/// accepted once every batch is on the log, so it survives a restart; posting
/// is idempotent per (push, user), so a retried batch stores nothing twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemNotice {
    /// Names the push (one id for all its batches).
    pub push_id: Id,
    /// Who gets it.
    pub user_ids: Vec<Id>,
    /// Shown as the notice's title (in `metadata.title`).
    #[serde(default)]
    pub title: String,
    /// The notice.
    pub content: String,
    /// Free-form kind (in `metadata.category`).
    #[serde(default)]
    pub category: String,
}

fn default_batch() -> u32 {
    100
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::SendFrame;
    use serde_json::json;

    #[test]
    fn upstream_record_is_flat_and_round_trips() {
        let text = r#"{"version":"1.0","from_user_id":"41","device_id":"web","gateway_id":"gw1","core":1,"conn_id":77,"timestamp":1640995200000,"type":"send","client_msg_id":"c-1","to_user_id":"42","message_type":"text","content":"Hello World","metadata":{},"mentions":[]}"#;
        let record: UpstreamRecord = serde_json::from_str(text).expect("parses");
        assert!(
            matches!(&record.frame, ClientFrame::Send(SendFrame { content, .. }) if content == "Hello World")
        );
        assert_eq!(record.origin.conn_id, 77);
        let back = serde_json::to_value(&record).expect("encodes");
        assert_eq!(back, serde_json::from_str::<Value>(text).expect("json"));
    }

    #[test]
    fn upstream_record_refuses_unknown_frame_fields_and_missing_envelope() {
        let extra = r#"{"version":"1.0","from_user_id":"41","device_id":"web","gateway_id":"gw1","core":1,"conn_id":77,"timestamp":1,"type":"ping","bogus":1}"#;
        assert!(serde_json::from_str::<UpstreamRecord>(extra).is_err());
        let missing = r#"{"version":"1.0","device_id":"web","gateway_id":"gw1","core":1,"conn_id":77,"timestamp":1,"type":"ping"}"#;
        assert!(serde_json::from_str::<UpstreamRecord>(missing).is_err());
    }

    #[test]
    fn seed_002_task_records_round_trip() {
        let push = json!({
            "task_type": "offline_push", "task_id": "task_123",
            "payload": {"user_id":"456","message_id":"123","conversation_id":"c","title":"新消息","content":"John: Hello World","push_type":"message"},
            "timestamp": 1640995200000i64, "retry_count": 0, "version": "1.0"
        });
        let fanout = json!({
            "task_type": "group_fanout", "task_id": "task_124",
            "payload": {"group_id":"123","message_id":"9","exclude_user_ids":["123"],"batch_size":100,"conversation_id":"g123","seq_id":4},
            "timestamp": 1640995200000i64, "retry_count": 2, "version": "1.0"
        });
        for value in [push, fanout] {
            let record: TaskRecord = serde_json::from_value(value.clone()).expect("parses");
            assert_eq!(serde_json::to_value(&record).expect("encodes"), value);
        }
    }
}

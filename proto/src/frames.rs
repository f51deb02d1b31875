//! Client frames (docs/protocol.md §3, "WebSocket"): JSON text frames tagged by `"type"`.
//!
//! Client frames are strict (unknown fields are refused) so a typo never passes
//! silently; server frames may gain fields, as the protocol allows.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::Id;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Send a message.
    Send(SendFrame),
    /// Move my read cursor.
    Read {
        /// The conversation.
        conversation_id: String,
        /// The highest seq read.
        seq_id: i64,
    },
    /// This device holds everything up to `seq_id` (v1.1): pending
    /// offline pushes for those messages are dropped.
    Delivered {
        /// The conversation.
        conversation_id: String,
        /// The highest seq the device holds.
        seq_id: i64,
    },
    /// I am typing (relayed in 1:1 and small groups).
    Typing {
        /// The conversation.
        conversation_id: String,
    },
    /// Heartbeat; answered with `pong`. (A struct variant so that unknown fields
    /// are refused here too; serde lets unit variants ignore them.)
    Ping {},
    /// Edit one of my text messages (v1.1): stored as an `edit` entry.
    Edit(ChangeFrame),
    /// Recall a message (v1.1): stored as a `recall` entry.
    Recall(ChangeFrame),
}

impl ClientFrame {
    /// The frame's `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Send(_) => "send",
            Self::Read { .. } => "read",
            Self::Delivered { .. } => "delivered",
            Self::Typing { .. } => "typing",
            Self::Ping {} => "ping",
            Self::Edit(_) => "edit",
            Self::Recall(_) => "recall",
        }
    }

    /// The `client_msg_id` of a frame that is answered with an `ack` (a
    /// send, an edit, a recall).
    pub fn acked_id(&self) -> Option<&str> {
        match self {
            ClientFrame::Send(send) => Some(&send.client_msg_id),
            ClientFrame::Edit(change) | ClientFrame::Recall(change) => Some(&change.client_msg_id),
            _ => None,
        }
    }
}

/// An `edit` or `recall` frame: a change to a stored message, itself stored
/// as the conversation's next entry and acked like a send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeFrame {
    /// Chosen by the client, unique per sender, as for a send.
    pub client_msg_id: String,
    /// The conversation of the message.
    pub conversation_id: String,
    /// The message changed.
    pub message_id: Id,
    /// An edit's new text (absent in a recall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// An edit's new metadata (absent: `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// The type of a client frame and its `client_msg_id`, read without parsing
/// the rest (unknown fields are skipped, strings borrowed where they can be).
/// For answers that must cost less than a full parse — refusing a send when
/// the server is overloaded — never for accepting one: a frame that peeks
/// as a send may still be an invalid one.
#[derive(Debug, Deserialize)]
pub struct FramePeek<'a> {
    /// The frame's `"type"`.
    #[serde(rename = "type", borrow)]
    pub kind: std::borrow::Cow<'a, str>,
    /// The send's `client_msg_id`, if the frame has one.
    #[serde(default, borrow)]
    pub client_msg_id: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> FramePeek<'a> {
    /// The `client_msg_id` of `text` if it peeks as a frame that is acked
    /// (a `send`, `edit` or `recall`) with one.
    pub fn send_id(text: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        // serde would read a struct from an array too; frames are objects.
        if !text.trim_start().starts_with('{') {
            return None;
        }
        let peek: FramePeek<'a> = serde_json::from_str(text).ok()?;
        if matches!(&*peek.kind, "send" | "edit" | "recall") {
            peek.client_msg_id
        } else {
            None
        }
    }
}

/// A `send` frame; `POST /messages` takes the same object without `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendFrame {
    /// Chosen by the client, unique per sender: the de-duplication key.
    pub client_msg_id: String,
    /// The peer of a 1:1 chat (exactly one of this and `group_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_user_id: Option<Id>,
    /// The group (exactly one of this and `to_user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<Id>,
    /// Defaults to `text`.
    #[serde(default)]
    pub message_type: MessageType,
    /// Text, or a URL for media (seed 002).
    pub content: String,
    /// Free-form, per message type (seed 002).
    #[serde(default = "empty_object")]
    pub metadata: Value,
    /// Mentioned user ids, or `"all"`.
    #[serde(default)]
    pub mentions: Vec<String>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// The kinds of message (seed 002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    /// Plain text.
    #[default]
    Text,
    /// An image URL.
    Image,
    /// A file URL.
    File,
    /// A place.
    Location,
    /// Group events (join, leave, invite); sent by the server only.
    SystemGroup,
    /// Operator notices (admin push); sent by the server only.
    System,
    /// An edit of an earlier message (v1.1); made by an `edit` frame or
    /// `PATCH …/messages/{id}`, never by a `send`.
    Edit,
    /// A recall of an earlier message (v1.1); made by a `recall` frame or
    /// `POST …/recall`, never by a `send`.
    Recall,
}

impl MessageType {
    /// Every message type, for parsing stored names.
    pub const ALL: [MessageType; 8] = [
        MessageType::Text,
        MessageType::Image,
        MessageType::File,
        MessageType::Location,
        MessageType::SystemGroup,
        MessageType::System,
        MessageType::Edit,
        MessageType::Recall,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Text => "text",
            MessageType::Image => "image",
            MessageType::File => "file",
            MessageType::Location => "location",
            MessageType::SystemGroup => "system_group",
            MessageType::System => "system",
            MessageType::Edit => "edit",
            MessageType::Recall => "recall",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// May a `send` carry this type? System types come from the server
    /// only; edits and recalls have frames of their own.
    pub fn client_may_send(self) -> bool {
        !matches!(
            self,
            MessageType::SystemGroup
                | MessageType::System
                | MessageType::Edit
                | MessageType::Recall
        )
    }

    /// A change to another message (an edit or a recall), not a message of its own.
    pub fn is_change(self) -> bool {
        matches!(self, MessageType::Edit | MessageType::Recall)
    }
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A send was stored.
    Ack(AckFrame),
    /// A stored message.
    Message(MessageFrame),
    /// Large groups: something new at `seq_id`; pull to read.
    Notify {
        /// The conversation.
        conversation_id: String,
        /// Its newest seq.
        seq_id: i64,
    },
    /// Someone's read cursor moved.
    Read {
        /// The conversation.
        conversation_id: String,
        /// Who read.
        user_id: Id,
        /// Up to which seq.
        seq_id: i64,
    },
    /// Someone is typing.
    Typing {
        /// The conversation.
        conversation_id: String,
        /// Who types.
        user_id: Id,
    },
    /// Someone came online or went offline.
    Presence {
        /// Who.
        user_id: Id,
        /// Online now?
        online: bool,
    },
    /// A refused frame or send.
    Error(ErrorFrame),
    /// Answer to `ping`.
    Pong,
    /// This connection was superseded (same device signed in elsewhere).
    Kick {
        /// Why.
        reason: String,
    },
    /// The user changed a conversation's settings on another device (v1.1).
    ConversationSettings {
        /// The conversation.
        conversation_id: String,
        /// No offline pushes from it.
        muted: bool,
        /// Listed first.
        pinned: bool,
        /// Filed away.
        archived: bool,
    },
    /// Someone asks to be the user's friend (v1.1).
    FriendRequest {
        /// Accept or reject it by this id.
        request_id: Id,
        /// Who asks.
        from_user_id: Id,
        /// Their note; may be empty.
        message: String,
    },
    /// A friendship formed (v1.1); sent to both sides.
    FriendAdded {
        /// The other side.
        user_id: Id,
    },
}

/// The answer to a stored send. Resending the same `client_msg_id` returns the same ack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckFrame {
    /// The sender's id for the message.
    pub client_msg_id: String,
    /// The server's id for the message.
    pub message_id: Id,
    /// Where it was stored.
    pub conversation_id: String,
    /// Its place in the conversation.
    pub seq_id: i64,
    /// When it was stored, ms since the epoch.
    pub timestamp: i64,
}

/// A stored message, as pushed and as returned by history pulls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageFrame {
    /// The server's id.
    pub message_id: Id,
    /// The conversation.
    pub conversation_id: String,
    /// Its place in the conversation.
    pub seq_id: i64,
    /// The sender (`"0"` for system messages).
    pub from_user_id: Id,
    /// The peer in a 1:1 chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_user_id: Option<Id>,
    /// The group in a group chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<Id>,
    /// The kind.
    pub message_type: MessageType,
    /// Text or URL.
    pub content: String,
    /// Per-type details.
    pub metadata: Value,
    /// Mentioned ids or `"all"`.
    pub mentions: Vec<String>,
    /// The sender's id for it, so the sender's devices can match pending sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// When it was stored.
    pub timestamp: i64,
    /// History only: when it was last edited (ms); absent if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// History only: recalled (its content and metadata are gone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recalled: bool,
}

/// An error answer (docs/protocol.md §2.1, error codes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// The send it answers, when it answers one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// Machine-readable.
    pub code: ErrorCode,
    /// Human-readable.
    pub message: String,
}

/// The protocol's error codes, shared by REST and WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400.
    BadRequest,
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 409.
    Conflict,
    /// 413.
    TooLarge,
    /// 415: an upload of a type the deployment does not take (v1.1).
    UnsupportedType,
    /// 429.
    RateLimited,
    /// 500 (and 503 while a dependency is down).
    Internal,
    /// 503: the send path is saturated; the send was not taken (nothing
    /// stored), resend the same frame after a pause.
    Overloaded,
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::UnsupportedType => 415,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Overloaded => 503,
        }
    }
}

impl ServerFrame {
    /// The frame as the JSON text the client receives.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every map key is a string.
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"type":"error","code":"internal","message":"encode"}"#.into())
    }

    /// An error frame.
    pub fn error(
        client_msg_id: Option<String>,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Self {
        ServerFrame::Error(ErrorFrame {
            client_msg_id,
            code,
            message: message.into(),
        })
    }
}

#[cfg(test)]
mod tests;

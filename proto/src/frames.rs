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
    /// I am typing (relayed in 1:1 and small groups).
    Typing {
        /// The conversation.
        conversation_id: String,
    },
    /// Heartbeat; answered with `pong`. (A struct variant so that unknown fields
    /// are refused here too; serde lets unit variants ignore them.)
    Ping {},
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
    /// The `client_msg_id` of `text` if it peeks as a `send` frame with one.
    pub fn send_id(text: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        // serde would read a struct from an array too; frames are objects.
        if !text.trim_start().starts_with('{') {
            return None;
        }
        let peek: FramePeek<'a> = serde_json::from_str(text).ok()?;
        if peek.kind == "send" {
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
}

impl MessageType {
    /// Every message type, for parsing stored names.
    pub const ALL: [MessageType; 6] = [
        MessageType::Text,
        MessageType::Image,
        MessageType::File,
        MessageType::Location,
        MessageType::SystemGroup,
        MessageType::System,
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
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// May a client send this type? System types come from the server only.
    pub fn client_may_send(self) -> bool {
        !matches!(self, MessageType::SystemGroup | MessageType::System)
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
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip_client(text: &str) -> ClientFrame {
        let frame: ClientFrame = serde_json::from_str(text).expect("parses");
        let back: Value = serde_json::to_value(&frame).expect("encodes");
        let original: Value = serde_json::from_str(text).expect("json");
        assert_eq!(back, original, "round trip of {text}");
        frame
    }

    fn round_trip_server(text: &str) -> ServerFrame {
        let frame: ServerFrame = serde_json::from_str(text).expect("parses");
        let back: Value = serde_json::from_str(&frame.to_json()).expect("encodes");
        let original: Value = serde_json::from_str(text).expect("json");
        assert_eq!(back, original, "round trip of {text}");
        frame
    }

    #[test]
    fn client_frames_of_the_protocol_round_trip() {
        let send = round_trip_client(
            r#"{"type":"send","client_msg_id":"c-1","to_user_id":"42","message_type":"text","content":"hi","metadata":{},"mentions":[]}"#,
        );
        assert!(matches!(
            send,
            ClientFrame::Send(SendFrame {
                to_user_id: Some(Id(42)),
                ..
            })
        ));
        let group = round_trip_client(
            r#"{"type":"send","client_msg_id":"c-2","group_id":"7","message_type":"text","content":"hi @[user_id:42]","mentions":["42"]}"#
                .replace(r#""mentions""#, r#""metadata":{},"mentions""#)
                .as_str(),
        );
        assert!(matches!(
            group,
            ClientFrame::Send(SendFrame {
                group_id: Some(Id(7)),
                ..
            })
        ));
        round_trip_client(r#"{"type":"read","conversation_id":"g7","seq_id":12}"#);
        round_trip_client(r#"{"type":"typing","conversation_id":"g7"}"#);
        round_trip_client(r#"{"type":"ping"}"#);
    }

    #[test]
    fn send_defaults_apply() {
        let frame: ClientFrame = serde_json::from_str(
            r#"{"type":"send","client_msg_id":"c","group_id":"7","content":"x"}"#,
        )
        .expect("parses");
        let ClientFrame::Send(send) = frame else {
            panic!("not a send")
        };
        assert_eq!(send.message_type, MessageType::Text);
        assert_eq!(send.metadata, json!({}));
        assert!(send.mentions.is_empty());
    }

    #[test]
    fn bad_client_frames_are_refused() {
        for bad in [
            r#"{"type":"shout"}"#,
            r#"{"type":"send","client_msg_id":"c","to_user_id":"1","content":"x","extra":1}"#,
            r#"{"type":"send","client_msg_id":"c","to_user_id":"1","content":"x","message_type":"video"}"#,
            r#"{"type":"read","conversation_id":"g1"}"#,
            r#"{"client_msg_id":"c"}"#,
            r#"not json"#,
        ] {
            assert!(serde_json::from_str::<ClientFrame>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_frames_of_the_protocol_round_trip() {
        for text in [
            r#"{"type":"ack","client_msg_id":"c-1","message_id":"9","conversation_id":"abc","seq_id":5,"timestamp":1732608000000}"#,
            r#"{"type":"message","message_id":"9","conversation_id":"abc","seq_id":5,"from_user_id":"41","to_user_id":"42","message_type":"text","content":"hi","metadata":{},"mentions":[],"timestamp":1732608000000}"#,
            r#"{"type":"notify","conversation_id":"g7","seq_id":981}"#,
            r#"{"type":"read","conversation_id":"abc","user_id":"42","seq_id":5}"#,
            r#"{"type":"typing","conversation_id":"abc","user_id":"42"}"#,
            r#"{"type":"presence","user_id":"42","online":true}"#,
            r#"{"type":"error","client_msg_id":"c-1","code":"forbidden","message":"not a member of group 7"}"#,
            r#"{"type":"pong"}"#,
            r#"{"type":"kick","reason":"signed in elsewhere"}"#,
        ] {
            round_trip_server(text);
        }
    }

    #[test]
    fn seed_002_message_types_parse() {
        for (kind, metadata) in [
            (
                "image",
                json!({"width":800,"height":600,"size":1024000,"format":"jpg"}),
            ),
            (
                "file",
                json!({"filename":"document.pdf","size":2048000,"mime_type":"application/pdf"}),
            ),
            (
                "location",
                json!({"latitude":39.9042,"longitude":116.4074,"accuracy":10}),
            ),
            ("text", json!({"format":"plain","language":"zh-CN"})),
        ] {
            let text = json!({"type":"send","client_msg_id":"c","to_user_id":"2","message_type":kind,"content":"x","metadata":metadata,"mentions":[]});
            round_trip_client(&text.to_string());
        }
        for name in ["system_group", "system"] {
            let t = MessageType::parse(name).expect("known");
            assert!(!t.client_may_send());
        }
    }

    #[test]
    fn error_codes_map_to_http() {
        assert_eq!(ErrorCode::Forbidden.http_status(), 403);
        assert_eq!(
            serde_json::to_string(&ErrorCode::RateLimited)
                .ok()
                .as_deref(),
            Some("\"rate_limited\"")
        );
    }

    #[test]
    fn a_peek_finds_a_send_and_its_id_and_nothing_else() {
        let send = r#"{"content":"a \"send\" here","type":"send","metadata":{"type":"x"},"client_msg_id":"c\u00e9-1","to_user_id":"5"}"#;
        assert_eq!(FramePeek::send_id(send).as_deref(), Some("c\u{e9}-1"));
        for other in [
            r#"{"type":"typing","conversation_id":"s_1"}"#,
            r#"{"type":"send"}"#,
            r#"{"type":"send","client_msg_id":7}"#,
            r#"{"type":"send","type":"send","client_msg_id":"a"}"#,
            r#"["send","a"]"#,
            "not json",
        ] {
            assert_eq!(FramePeek::send_id(other), None, "{other}");
        }
    }
}

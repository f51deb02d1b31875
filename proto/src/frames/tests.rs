//! Round trips and refusals of the protocol's frames.

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
    round_trip_client(r#"{"type":"delivered","conversation_id":"g7","seq_id":12}"#);
    round_trip_client(r#"{"type":"typing","conversation_id":"g7"}"#);
    round_trip_client(r#"{"type":"ping"}"#);
    round_trip_client(
        r#"{"type":"edit","client_msg_id":"e1","conversation_id":"g7","message_id":"9","content":"fixed"}"#,
    );
    let recall = round_trip_client(
        r#"{"type":"recall","client_msg_id":"r1","conversation_id":"g7","message_id":"9"}"#,
    );
    assert_eq!(recall.acked_id(), Some("r1"));
}

#[test]
fn send_defaults_apply() {
    let frame: ClientFrame =
        serde_json::from_str(r#"{"type":"send","client_msg_id":"c","group_id":"7","content":"x"}"#)
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
        r#"{"type":"edit","client_msg_id":"e","conversation_id":"g1","message_id":"9","extra":1}"#,
        r#"{"type":"recall","client_msg_id":"r","conversation_id":"g1"}"#,
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
        r#"{"type":"message","message_id":"9","conversation_id":"abc","seq_id":5,"from_user_id":"41","to_user_id":"42","message_type":"text","content":"hi","metadata":{},"mentions":[],"timestamp":1732608000000,"edited_at":1732608001000}"#,
        r#"{"type":"message","message_id":"10","conversation_id":"abc","seq_id":6,"from_user_id":"41","to_user_id":"42","message_type":"recall","content":"","metadata":{"target_message_id":"9","target_seq_id":5},"mentions":[],"timestamp":1732608002000}"#,
        r#"{"type":"notify","conversation_id":"g7","seq_id":981}"#,
        r#"{"type":"read","conversation_id":"abc","user_id":"42","seq_id":5}"#,
        r#"{"type":"typing","conversation_id":"abc","user_id":"42"}"#,
        r#"{"type":"presence","user_id":"42","online":true}"#,
        r#"{"type":"error","client_msg_id":"c-1","code":"forbidden","message":"not a member of group 7"}"#,
        r#"{"type":"pong"}"#,
        r#"{"type":"kick","reason":"signed in elsewhere"}"#,
        r#"{"type":"conversation_settings","conversation_id":"g7","muted":true,"pinned":false,"archived":false}"#,
        r#"{"type":"friend_request","request_id":"5","from_user_id":"41","message":"hi, it's Bob"}"#,
        r#"{"type":"friend_added","user_id":"41"}"#,
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
    for name in ["system_group", "system", "edit", "recall"] {
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
    let recall = r#"{"type":"recall","client_msg_id":"r","conversation_id":"g1","message_id":"9"}"#;
    assert_eq!(FramePeek::send_id(recall).as_deref(), Some("r"));
}

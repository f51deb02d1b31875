//! What a client may put in a message's `content` and `metadata`, by
//! `message_type` (docs/protocol.md §3.2): a message is shown by other
//! people's clients, so nothing in it may turn into a script or a page
//! somewhere else, and nothing may be unboundedly large.
//!
//! - every type: `metadata` is an object of at most [`MAX_METADATA_BYTES`]
//!   serialised, and `content` plus `metadata` fit `logic.max_content_bytes`;
//! - `image`, `file`: `content` is an `http(s)` URL or one of this server's
//!   `/media/...` paths; so is every metadata string whose key ends in `url`;
//!   `width`, `height`, `size` are non-negative integers; `format`,
//!   `filename`, `mime_type` are short strings without control characters;
//! - `location`: `latitude` in −90..90 and `longitude` in −180..180 (numbers,
//!   required), `accuracy` a non-negative number if present.

use gochat_proto::frames::{MessageType, SendFrame};
use serde_json::{Map, Value};

use super::LogicError;

/// Largest `metadata`, serialised.
pub const MAX_METADATA_BYTES: usize = 4096;
const MAX_NAME_CHARS: usize = 255;

/// Checks `content` and `metadata` of a send against its type.
pub fn check(frame: &SendFrame, max_total_bytes: usize) -> Result<(), LogicError> {
    let bad = |m: String| Err(LogicError::BadRequest(m));
    let Some(metadata) = frame.metadata.as_object() else {
        return bad("metadata must be an object".into());
    };
    let metadata_bytes = frame.metadata.to_string().len();
    if metadata_bytes > MAX_METADATA_BYTES {
        return Err(LogicError::TooLarge(format!(
            "metadata is over {MAX_METADATA_BYTES} bytes"
        )));
    }
    if frame.content.len() + metadata_bytes > max_total_bytes {
        return Err(LogicError::TooLarge(format!(
            "content and metadata are over {max_total_bytes} bytes"
        )));
    }
    match frame.message_type {
        MessageType::Image | MessageType::File => check_attachment(&frame.content, metadata),
        MessageType::Location => check_location(metadata),
        _ => Ok(()),
    }
}

fn check_attachment(content: &str, metadata: &Map<String, Value>) -> Result<(), LogicError> {
    let bad = |m: String| Err(LogicError::BadRequest(m));
    if !safe_url(content) {
        return bad("an image or file is an http(s) URL or a /media/ path".into());
    }
    for (key, value) in metadata {
        match (key.as_str(), value) {
            ("width" | "height" | "size", v) if !v.is_u64() => {
                return bad(format!("metadata.{key} is a non-negative integer"));
            }
            ("format" | "filename" | "mime_type", v) if !short_name(v) => {
                return bad(format!(
                    "metadata.{key} is a name of at most {MAX_NAME_CHARS} characters"
                ));
            }
            (k, Value::String(s)) if k.ends_with("url") && !safe_url(s) => {
                return bad(format!(
                    "metadata.{key} is an http(s) URL or a /media/ path"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_location(metadata: &Map<String, Value>) -> Result<(), LogicError> {
    let number = |key: &str| metadata.get(key).and_then(Value::as_f64);
    let within = |v: Option<f64>, limit: f64| v.is_some_and(|v| v.is_finite() && v.abs() <= limit);
    if !within(number("latitude"), 90.0) || !within(number("longitude"), 180.0) {
        return Err(LogicError::BadRequest(
            "a location has metadata.latitude (-90..90) and metadata.longitude (-180..180)".into(),
        ));
    }
    if metadata.contains_key("accuracy") && !number("accuracy").is_some_and(|a| a >= 0.0) {
        return Err(LogicError::BadRequest(
            "metadata.accuracy is a non-negative number".into(),
        ));
    }
    Ok(())
}

/// An absolute http(s) URL, or a path to this server's media.
fn safe_url(s: &str) -> bool {
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    {
        return !rest.is_empty();
    }
    s.starts_with("/media/") && !s.contains("..")
}

fn short_name(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.chars().count() <= MAX_NAME_CHARS && !s.chars().any(char::is_control))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame(kind: MessageType, content: &str, metadata: Value) -> SendFrame {
        SendFrame {
            client_msg_id: "c".into(),
            to_user_id: None,
            group_id: None,
            message_type: kind,
            content: content.into(),
            metadata,
            mentions: vec![],
        }
    }

    fn ok(kind: MessageType, content: &str, metadata: Value) -> bool {
        check(&frame(kind, content, metadata), 16 * 1024).is_ok()
    }

    #[test]
    fn attachments_point_at_http_or_our_media() {
        let image = json!({"width": 640, "height": 480, "size": 1234, "format": "png"});
        assert!(ok(MessageType::Image, "/media/ab12.png", image.clone()));
        assert!(ok(MessageType::Image, "https://cdn.example/x.png", image));
        assert!(ok(
            MessageType::File,
            "/media/f.pdf",
            json!({"filename": "a.pdf", "size": 3, "mime_type": "application/pdf"})
        ));
        for content in [
            "javascript:alert(1)",
            "data:text/html,x",
            "//evil.example/x",
            "/media/../etc",
            "https://",
            "http://x y",
        ] {
            assert!(!ok(MessageType::Image, content, json!({})), "{content}");
        }
        assert!(!ok(
            MessageType::Image,
            "/media/a.png",
            json!({"url": "javascript:alert(1)"})
        ));
        assert!(!ok(
            MessageType::Image,
            "/media/a.png",
            json!({"thumbnail_url": "JavaScript:x"})
        ));
        assert!(!ok(
            MessageType::Image,
            "/media/a.png",
            json!({"width": -1})
        ));
        assert!(!ok(
            MessageType::File,
            "/media/a",
            json!({"filename": "a\u{0}b"})
        ));
    }

    #[test]
    fn locations_are_in_range() {
        assert!(ok(
            MessageType::Location,
            "Paris",
            json!({"latitude": 48.85, "longitude": 2.35, "accuracy": 10})
        ));
        assert!(!ok(MessageType::Location, "Nowhere", json!({})));
        assert!(!ok(
            MessageType::Location,
            "North of north",
            json!({"latitude": 91, "longitude": 0})
        ));
        assert!(!ok(
            MessageType::Location,
            "Text",
            json!({"latitude": "48", "longitude": 2})
        ));
        assert!(!ok(
            MessageType::Location,
            "Paris",
            json!({"latitude": 1, "longitude": 2, "accuracy": -3})
        ));
    }

    #[test]
    fn metadata_is_bounded_and_counted() {
        let big = json!({"pad": "x".repeat(MAX_METADATA_BYTES)});
        assert!(matches!(
            check(&frame(MessageType::Text, "hi", big), 16 * 1024),
            Err(LogicError::TooLarge(_))
        ));
        let some = json!({"pad": "x".repeat(1000)});
        assert!(matches!(
            check(&frame(MessageType::Text, &"y".repeat(1500), some), 2048),
            Err(LogicError::TooLarge(_))
        ));
        assert!(!ok(MessageType::Text, "hi", json!([1, 2])));
        assert!(ok(MessageType::Text, "hi", json!({"format": "plain"})));
    }
}

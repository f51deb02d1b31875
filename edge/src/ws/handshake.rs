//! The HTTP/1.1 upgrade (RFC 6455 §4.2), socket-free: parse the request with
//! httparse, check method, path, headers and origin, and build the 101 answer
//! (accept key from tungstenite) or a refusal. Authentication happens after
//! parsing, before the 101 is written, so a bad token never gets a WebSocket.

use tungstenite::handshake::derive_accept_key;

/// The largest upgrade request accepted (headers included).
pub const MAX_REQUEST: usize = 8 * 1024;

/// What a valid upgrade request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// `Sec-WebSocket-Key`.
    pub key: String,
    /// `?token=` or `Authorization: Bearer`.
    pub token: Option<String>,
    /// `?device_id=` (default: the token's device).
    pub device_id: Option<String>,
    /// `Origin`, when the client sent one (browsers always do).
    pub origin: Option<String>,
}

/// A refusal: the HTTP status line to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400.
    BadRequest(&'static str),
    /// 401.
    Unauthorized(&'static str),
    /// 403.
    Forbidden(&'static str),
    /// 404.
    NotFound,
    /// 426.
    UpgradeRequired,
    /// 431.
    TooLarge,
    /// 503: draining or overloaded.
    Unavailable,
}

impl Refusal {
    /// The HTTP status code, as text (a metrics label).
    pub fn status(&self) -> &'static str {
        match self {
            Refusal::BadRequest(_) => "400",
            Refusal::Unauthorized(_) => "401",
            Refusal::Forbidden(_) => "403",
            Refusal::NotFound => "404",
            Refusal::UpgradeRequired => "426",
            Refusal::TooLarge => "431",
            Refusal::Unavailable => "503",
        }
    }

    /// The HTTP response bytes (the connection is closed after them).
    pub fn response(self) -> Vec<u8> {
        let (status, reason) = match self {
            Refusal::BadRequest(r) => ("400 Bad Request", r),
            Refusal::Unauthorized(r) => ("401 Unauthorized", r),
            Refusal::Forbidden(r) => ("403 Forbidden", r),
            Refusal::NotFound => ("404 Not Found", "no such endpoint; WebSocket is at /ws"),
            Refusal::UpgradeRequired => ("426 Upgrade Required", "this endpoint speaks WebSocket"),
            Refusal::TooLarge => ("431 Request Header Fields Too Large", "request too large"),
            Refusal::Unavailable => ("503 Service Unavailable", "draining; reconnect elsewhere"),
        };
        let code = status.split(' ').next().unwrap_or("400");
        let body = format!(
            r#"{{"error":{{"code":"{}","message":"{reason}"}}}}"#,
            error_code(code)
        );
        let mut extra = String::new();
        if matches!(self, Refusal::UpgradeRequired) {
            extra.push_str("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
        }
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

fn error_code(status: &str) -> &'static str {
    match status {
        "401" => "unauthorized",
        "403" => "forbidden",
        "404" => "not_found",
        "431" => "too_large",
        "503" => "internal",
        _ => "bad_request",
    }
}

/// The 101 answer to an accepted upgrade.
pub fn accept(key: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    )
    .into_bytes()
}

/// Parses an upgrade request from the bytes read so far. `Ok(None)`: incomplete.
/// On success also returns how many bytes the request used (anything after it
/// is the client's first frames).
pub fn parse(buf: &[u8], path: &str) -> Result<Option<(Upgrade, usize)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let used = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST => return Err(Refusal::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::TooLarge),
        Err(_) => return Err(Refusal::BadRequest("malformed HTTP request")),
    };
    let target = request.path.unwrap_or("/");
    let (req_path, query) = target.split_once('?').unwrap_or((target, ""));
    // `*` accepts any path (the protocol test mode).
    if path != "*" && req_path != path {
        return Err(Refusal::NotFound);
    }
    if request.method != Some("GET") || request.version != Some(1) {
        return Err(Refusal::BadRequest("an upgrade is an HTTP/1.1 GET"));
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| {
            v.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    };
    if !has_token("Upgrade", "websocket") || !has_token("Connection", "upgrade") {
        return Err(Refusal::UpgradeRequired);
    }
    if header("Sec-WebSocket-Version") != Some("13") {
        return Err(Refusal::BadRequest("Sec-WebSocket-Version must be 13"));
    }
    let key = header("Sec-WebSocket-Key")
        .filter(|k| k.len() == 24)
        .ok_or(Refusal::BadRequest("missing Sec-WebSocket-Key"))?;
    let mut token = None;
    let mut device_id = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "token" => token = Some(value.into_owned()),
            "device_id" => device_id = Some(value.into_owned()),
            _ => {}
        }
    }
    if token.is_none() {
        token = header("Authorization")
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_owned());
    }
    if device_id
        .as_ref()
        .is_some_and(|d| d.is_empty() || d.len() > 64 || d.chars().any(char::is_control))
    {
        return Err(Refusal::BadRequest("device_id: 1 to 64 characters"));
    }
    let upgrade = Upgrade {
        key: key.to_owned(),
        token,
        device_id,
        origin: header("Origin").map(str::to_owned),
    };
    Ok(Some((upgrade, used)))
}

/// Is `origin` allowed? An empty list allows every origin; requests without an
/// Origin header (non-browser clients) are allowed, since Origin only protects browsers.
pub fn origin_allowed(origin: Option<&str>, allowed: &[String]) -> bool {
    match origin {
        None => true,
        Some(o) => {
            allowed.is_empty()
                || allowed
                    .iter()
                    .any(|a| a == "*" || a.eq_ignore_ascii_case(o))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request(target: &str, extra: &str) -> Vec<u8> {
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{extra}\r\n").into_bytes()
    }

    #[test]
    fn parses_token_device_and_origin() {
        let bytes = request(
            "/ws?token=abc.def.ghi&device_id=my%20phone",
            "Origin: https://chat.example\r\n",
        );
        let (up, used) = parse(&bytes, "/ws").expect("valid").expect("complete");
        assert_eq!(used, bytes.len());
        assert_eq!(up.token.as_deref(), Some("abc.def.ghi"));
        assert_eq!(up.device_id.as_deref(), Some("my phone"));
        assert_eq!(up.origin.as_deref(), Some("https://chat.example"));
        let bearer = request("/ws", "Authorization: Bearer tok\r\n");
        assert_eq!(
            parse(&bearer, "/ws")
                .ok()
                .flatten()
                .and_then(|(u, _)| u.token)
                .as_deref(),
            Some("tok")
        );
    }

    #[test]
    fn accept_key_follows_rfc_6455() {
        let response = String::from_utf8(accept(KEY)).unwrap_or_default();
        assert!(
            response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "{response}"
        );
    }

    #[test]
    fn incomplete_and_bad_requests() {
        let bytes = request("/ws", "");
        assert_eq!(parse(&bytes[..bytes.len() - 3], "/ws"), Ok(None));
        assert_eq!(parse(&request("/other", ""), "/ws"), Err(Refusal::NotFound));
        let plain = b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(parse(plain, "/ws"), Err(Refusal::UpgradeRequired));
        let post = String::from_utf8_lossy(&request("/ws", ""))
            .replacen("GET", "POST", 1)
            .into_bytes();
        assert!(matches!(parse(&post, "/ws"), Err(Refusal::BadRequest(_))));
        assert!(matches!(
            parse(b"\x00\x01garbage\r\n\r\n", "/ws"),
            Err(Refusal::BadRequest(_))
        ));
        assert_eq!(
            parse(&vec![b'a'; MAX_REQUEST], "/ws").err(),
            Some(Refusal::TooLarge)
        );
        let long = format!("GET /ws HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_REQUEST));
        assert_eq!(parse(long.as_bytes(), "/ws"), Err(Refusal::TooLarge));
    }

    #[test]
    fn origins_are_checked_against_the_allow_list() {
        let allowed = vec!["https://chat.example".to_owned()];
        assert!(origin_allowed(Some("https://chat.example"), &allowed));
        assert!(!origin_allowed(Some("https://evil.example"), &allowed));
        assert!(origin_allowed(None, &allowed));
        assert!(origin_allowed(Some("https://any"), &[]));
    }

    #[test]
    fn refusals_are_http_with_a_json_body() {
        let text = String::from_utf8(Refusal::Unauthorized("invalid token").response())
            .unwrap_or_default();
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
        assert!(text.ends_with(r#"{"error":{"code":"unauthorized","message":"invalid token"}}"#));
    }
}

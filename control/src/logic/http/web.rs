//! The web client (`control/web/`), embedded into the binary so running the
//! product needs nothing beside it. Debug builds read the files from disk at
//! run time (rust-embed's behaviour), so editing the client needs no rebuild.
//! Also `GET /api/v1/client/config`: where the client opens its WebSocket,
//! which is a different listener (the edge) than this one.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use gochat_proto::frames::ErrorCode;
use rust_embed::RustEmbed;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, ApiState};

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

/// `/` and `/<file>`: a file of the client, or the API's 404.
pub async fn asset(method: Method, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let file = match method {
        Method::GET | Method::HEAD => Assets::get(path),
        _ => None,
    };
    let Some(file) = file else {
        return ApiError::new(ErrorCode::NotFound, "no such endpoint").into_response();
    };
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(path)),
        ),
        // Small files and a client that must match the server it came from:
        // revalidate every time rather than run yesterday's script.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
    ];
    (headers, file.data.into_owned()).into_response()
}

/// What the client's page may load and run: its own scripts only (no
/// inline script, no eval), so a message that slipped past the checks still
/// cannot run; images from anywhere (avatars, linked images) and the blob:
/// previews of uploads; the WebSocket on the gateway's own port; never
/// framed. Inline `style` attributes are allowed (the icon sprite uses one).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https: http:; \
    connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'self'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// What a client needs before it connects.
#[derive(Serialize, ToSchema)]
pub struct ClientConfig {
    /// Where to open the WebSocket (the edge listens apart from this API).
    ws_url: String,
}

/// `GET /api/v1/client/config`. `{host}` in the configured URL becomes the
/// host name the browser used, so one setting serves every name the
/// deployment is reached by.
#[utoipa::path(
    get,
    path = "/client/config",
    tag = "client",
    responses((status = 200, description = "Where the client connects", body = ClientConfig))
)]
pub async fn client_config(State(s): State<ApiState>, headers: HeaderMap) -> Json<ClientConfig> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_name)
        .unwrap_or("127.0.0.1");
    let ws_url = s.public_ws_url.replace("{host}", host);
    Json(ClientConfig { ws_url })
}

/// The name part of a `Host` header (`[::1]:8080` → `[::1]`, `a:80` → `a`).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.split(':').next().unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("chat.example.com:8080"), "chat.example.com");
        assert_eq!(host_name("chat.example.com"), "chat.example.com");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
    }
}

//! Operations endpoints (health, readiness, metrics), uploads and media, admin push.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::body::Body;
use axum::extract::{Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gochat_proto::frames::ErrorCode;
use gochat_proto::ids::Id;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{ApiJson, AuthUser};
use super::{ApiError, ApiResult, ApiState};
use crate::bus::Bus;
use crate::repo::Repo;
use crate::state::StateStore;

/// What `/readyz` checks.
pub struct Readiness {
    /// SQL (local or remote repo).
    pub repo: Option<Arc<dyn Repo>>,
    /// Redis or in-process state.
    pub state: Option<Arc<dyn StateStore>>,
    /// Kafka or in-process log.
    pub bus: Option<Arc<dyn Bus>>,
}

impl Readiness {
    /// Each dependency's status; `Err` names the first one down.
    pub async fn check(&self) -> Result<(), String> {
        if let Some(repo) = &self.repo {
            repo.ping().await.map_err(|e| format!("database: {e}"))?;
        }
        if let Some(state) = &self.state {
            state.ping().await.map_err(|e| format!("redis: {e}"))?;
        }
        if let Some(bus) = &self.bus {
            bus.ping().await.map_err(|e| format!("kafka: {e}"))?;
        }
        Ok(())
    }
}

/// The process-wide Prometheus recorder (installed once, shared by all servers in a process).
pub fn prometheus() -> &'static Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(s): State<ApiState>) -> Response {
    readyz_of(s.readiness).await
}

/// `/readyz` for a given set of dependencies.
pub async fn readyz_of(readiness: Arc<Readiness>) -> Response {
    match readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

pub async fn metrics() -> Response {
    let body = prometheus()
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Counts requests by route and status for `/metrics`.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("gochat_http_requests_total", "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("gochat_http_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

fn media_dir(s: &ApiState) -> PathBuf {
    s.logic.config.media_dir.clone()
}

fn mime_of(name: &str) -> &'static str {
    match name
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain; charset=utf-8",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    }
}

pub async fn upload(
    State(s): State<ApiState>,
    _user: AuthUser,
    mut form: Multipart,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let bad = |m: String| ApiError::new(ErrorCode::BadRequest, m);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| upload_error(&e.body_text(), e.status()))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let original = field.file_name().unwrap_or("upload").to_owned();
        let ext: String = original
            .rsplit_once('.')
            .map(|(_, e)| {
                e.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(8)
                    .collect::<String>()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let data = field
            .bytes()
            .await
            .map_err(|e| upload_error(&e.body_text(), e.status()))?;
        if data.is_empty() {
            return Err(bad("the file is empty".into()));
        }
        let name = if ext.is_empty() {
            uuid::Uuid::new_v4().simple().to_string()
        } else {
            format!("{}.{ext}", uuid::Uuid::new_v4().simple())
        };
        let dir = media_dir(&s);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("media dir: {e}")))?;
        tokio::fs::write(dir.join(&name), &data)
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("media write: {e}")))?;
        return Ok((
            StatusCode::CREATED,
            Json(
                json!({"url": format!("/media/{name}"), "size": data.len(), "mime_type": mime_of(&name)}),
            ),
        ));
    }
    Err(bad("multipart field `file` is missing".into()))
}

fn upload_error(text: &str, status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::TooLarge, "file is too large")
    } else {
        ApiError::new(ErrorCode::BadRequest, text)
    }
}

pub async fn media(State(s): State<ApiState>, Path(name): Path<String>) -> ApiResult<Response> {
    // Names are ours (uuid + short extension): anything else cannot be a file we wrote.
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
        || name.starts_with('.')
    {
        return Err(ApiError::new(ErrorCode::NotFound, "no such file"));
    }
    let data = tokio::fs::read(media_dir(&s).join(&name))
        .await
        .map_err(|_| ApiError::new(ErrorCode::NotFound, "no such file"))?;
    Ok((
        [
            (header::CONTENT_TYPE, mime_of(&name)),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        Body::from(data),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushBody {
    #[serde(default)]
    user_ids: Vec<Id>,
    #[serde(default)]
    all: bool,
    title: String,
    content: String,
    #[serde(default)]
    category: String,
}

pub async fn admin_push(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<PushBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let me = s.logic.repo.get_user(user.id.0).await?;
    if !s
        .logic
        .admin_usernames
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&me.username))
    {
        return Err(ApiError::new(ErrorCode::Forbidden, "admin only"));
    }
    if body.all != body.user_ids.is_empty() {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "either user_ids or all:true",
        ));
    }
    if body.content.is_empty()
        || body.content.len() > s.logic.config.max_content_bytes
        || body.title.len() > 200
    {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "content: 1 byte up to the message limit; title up to 200 bytes",
        ));
    }
    let targets: Vec<Id> = if body.all {
        s.logic
            .repo
            .list_user_ids()
            .await?
            .into_iter()
            .map(Id)
            .collect()
    } else {
        let ids: Vec<i64> = body.user_ids.iter().map(|i| i.0).collect();
        s.logic
            .repo
            .get_users(&ids)
            .await?
            .into_iter()
            .map(|u| Id(u.user_id))
            .collect()
    };
    let logic = s.logic.clone();
    let metadata = json!({"title": body.title, "category": body.category});
    let count = targets.len();
    // Accepted now, delivered in the background: a push to everyone can be long.
    tokio::spawn(async move {
        for target in targets {
            if let Err(e) = logic
                .post_system_notice(target, body.content.clone(), metadata.clone())
                .await
            {
                tracing::warn!(error = %e, %target, "system notice not posted");
            }
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!({"accepted": count}))))
}

//! Operations endpoints (health, readiness, metrics), and the REST faces of
//! uploads, media and admin push (their rules are in `logic/media.rs` and
//! `logic/admin.rs`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gochat_proto::frames::ErrorCode;
use gochat_proto::ids::Id;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::extract::{ApiJson, AuthUser};
use super::{ApiError, ApiResult, ApiState, ErrorBody};
use crate::bus::Bus;
use crate::logic::SystemPush;
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
    HANDLE.get_or_init(|| {
        let handle = gochat_proto::metrics::install(PrometheusBuilder::new());
        zero_rare_counters();
        handle
    })
}

/// Counters of rare events are shown from the start, at zero: an alert's
/// `increase()` or a dashboard's `rate()` then sees the first event, and the
/// series exist before anything happened.
fn zero_rare_counters() {
    metrics::counter!("gochat_sends_shed_total", "door" => "api").increment(0);
    metrics::counter!("gochat_messages_stored_total").increment(0);
    for user in ["state", "cache"] {
        metrics::counter!("gochat_redis_errors_total", "user" => user).increment(0);
    }
    for outcome in ["done", "retried", "dead_lettered"] {
        metrics::counter!("gochat_tasks_total", "outcome" => outcome).increment(0);
    }
    for outcome in ["sent", "token_rejected", "failed"] {
        metrics::counter!("gochat_pushes_total", "provider" => "fallback", "outcome" => outcome)
            .increment(0);
    }
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    responses((status = 200, description = "`ok`: the process is up", body = String, content_type = "text/plain"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "`ready`: every dependency answers", body = String, content_type = "text/plain"),
        (status = 503, description = "The first dependency that does not answer", body = String, content_type = "text/plain"),
    )
)]
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

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(s): State<ApiState>) -> Response {
    metrics_of(s.readiness).await
}

/// `/metrics`, with the gauges read at scrape time brought up to date.
pub async fn metrics_of(readiness: Arc<Readiness>) -> Response {
    if let Some((open, idle)) = readiness.repo.as_ref().and_then(|r| r.pool_usage()) {
        metrics::gauge!("gochat_sql_pool_connections", "state" => "open").set(f64::from(open));
        metrics::gauge!("gochat_sql_pool_connections", "state" => "idle").set(f64::from(idle));
    }
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

/// The form of `POST /uploads`. Only a schema: the handler reads the form
/// as a stream, field by field.
pub struct UploadForm;

impl PartialSchema for UploadForm {
    fn schema() -> RefOr<Schema> {
        let file = ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/octet-stream")
            .description(Some("The file; its name's extension sets the served type"));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("file", file)
            .required("file")
            .into()
    }
}

impl ToSchema for UploadForm {}

/// A stored file.
#[derive(Serialize, ToSchema)]
pub struct Uploaded {
    /// Where it is served (`/media/<name>`); send it as a message's content.
    url: String,
    /// Bytes.
    size: usize,
    /// From the file name's extension.
    mime_type: &'static str,
}

#[utoipa::path(
    post,
    path = "/uploads",
    tag = "media",
    security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = Uploaded),
        (status = 400, description = "The field `file` is missing or empty, or the form is malformed", body = ErrorBody),
        (status = 413, description = "Over the upload size limit", body = ErrorBody),
        (status = 415, description = "Code `unsupported_type`: the file's type (from its name) is not in `uploads.allowed_types`", body = ErrorBody),
    )
)]
pub async fn upload(
    State(s): State<ApiState>,
    _user: AuthUser,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<Uploaded>)> {
    // Not a multipart body at all: the protocol's JSON error, not axum's text.
    let mut form = form.map_err(|e| upload_error(&e.body_text(), e.status()))?;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| upload_error(&e.body_text(), e.status()))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let original = field.file_name().unwrap_or("upload").to_owned();
        let data = field
            .bytes()
            .await
            .map_err(|e| upload_error(&e.body_text(), e.status()))?;
        let file = s.logic.store_media(&original, &data).await?;
        return Ok((
            StatusCode::CREATED,
            Json(Uploaded {
                url: file.url,
                size: file.size,
                mime_type: file.mime_type,
            }),
        ));
    }
    Err(ApiError::new(
        ErrorCode::BadRequest,
        "multipart field `file` is missing",
    ))
}

fn upload_error(text: &str, status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::TooLarge, "file is too large")
    } else {
        ApiError::new(ErrorCode::BadRequest, text)
    }
}

#[utoipa::path(
    get,
    path = "/media/{name}",
    tag = "media",
    params(
        ("name" = String, Path, description = "The last part of an upload's url"),
        ("exp" = Option<u64>, Query, description = "A signed link's expiry (unix seconds)"),
        ("sig" = Option<String>, Query, description = "A signed link's signature"),
        ("token" = Option<String>, Query, description = "A session token, when there is no signature or `Authorization` header"),
    ),
    responses(
        (status = 200, description = "The file, with the content type of its extension, `X-Content-Type-Options: nosniff`, and `Content-Disposition: attachment` unless it is an image; privately cacheable for a day", content_type = "*/*"),
        (status = 401, description = "No valid signature, and no valid token in the header or `?token=`", body = ErrorBody),
        (status = 404, description = "No such file", body = ErrorBody),
    )
)]
pub async fn media(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let signed = match (q.get("exp").and_then(|e| e.parse().ok()), q.get("sig")) {
        (Some(exp), Some(sig)) => s.logic.media_link_valid(&name, exp, sig),
        _ => false,
    };
    if !signed {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        let token = bearer.or(q.get("token").map(String::as_str));
        let Some(token) = token else {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "a signed link or a token is needed",
            ));
        };
        s.logic.authenticate(token.trim()).await?;
    }
    let (data, mime) = s.logic.read_media(&name).await?;
    // Never sniffed into something else; anything but an image is a download,
    // so an uploaded page or script never runs on this origin.
    let disposition = if crate::logic::shown_inline(mime) {
        "inline"
    } else {
        "attachment"
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            // Behind a link that expires: no shared cache may keep it.
            (header::CACHE_CONTROL, "private, max-age=86400"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from(data),
    )
        .into_response())
}

/// A system notice to some users or to all.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushBody {
    /// The targets (exactly one of this and `all`); unknown ids are skipped.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    user_ids: Vec<Id>,
    /// Every user.
    #[serde(default)]
    all: bool,
    /// At most 200 bytes.
    title: String,
    /// 1 byte up to the message size limit.
    content: String,
    #[serde(default)]
    category: String,
}

/// How many users the push targets.
#[derive(Serialize, ToSchema)]
pub struct PushAccepted {
    accepted: usize,
}

#[utoipa::path(
    post,
    path = "/admin/push",
    tag = "admin",
    security(("bearer" = [])),
    request_body = PushBody,
    responses(
        (status = 202, description = "Durable: each target will get a `system` message", body = PushAccepted),
        (status = 400, description = "Not exactly one of user_ids and all, or a field out of the rules", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    )
)]
pub async fn admin_push(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<PushBody>,
) -> ApiResult<(StatusCode, Json<PushAccepted>)> {
    let push = SystemPush {
        user_ids: body.user_ids,
        all: body.all,
        title: body.title,
        content: body.content,
        category: body.category,
    };
    let accepted = s.logic.admin_push(user.id, push).await?;
    Ok((StatusCode::ACCEPTED, Json(PushAccepted { accepted })))
}

//! The OpenAPI 3.1 document of the HTTP API, served at `GET /api/v1/openapi.json`.
//! Each handler's `#[utoipa::path]` gives its method, path, parameters, body
//! and answers; `router` in `mod.rs` registers handlers through utoipa-axum's
//! `routes!`, which takes the route's path from that same annotation, so the
//! router and the document are one list. This module owns the document's
//! frame (info, the bearer scheme, tags) and the error answers every handler
//! shares, which are added from what an operation takes rather than written
//! out on each one.

use std::sync::Arc;

use axum::{Extension, Json};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi as _};

use super::ErrorBody;

/// The bearer scheme's name. Handlers taking [`super::AuthUser`] list it
/// under `security` as the literal `"bearer"` (the attribute takes no constants).
const BEARER: &str = "bearer";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "GoChat",
        description = "The REST API of the GoChat instant-messaging service; \
            docs/protocol.md §2 is the prose version. Paths under /api/v1 \
            are the client API; /healthz, /readyz, /metrics and /media are at the root.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerScheme),
    components(schemas(ErrorBody)),
    tags(
        (name = "accounts", description = "Registration, login and profiles"),
        (name = "friends", description = "Friends with consent, friend requests and blocks"),
        (name = "groups", description = "Groups and their members"),
        (name = "conversations", description = "Conversations, history, read cursors, mentions and sending"),
        (name = "media", description = "Uploads and the files they serve"),
        (name = "admin", description = "Operator actions"),
        (name = "client", description = "What a client needs before it connects"),
        (name = "ops", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("The token from POST /api/v1/auth/login".into());
        components.add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// The document before any route is added.
pub fn base() -> OpenApi {
    ApiDoc::openapi()
}

/// The error answers operations share (status, component name, meaning): a
/// bearer token can be missing or revoked, a JSON body can be malformed or too
/// large, and anything that reaches the service can meet a failure of its own
/// (500) or of a dependency (503). Adding them from what each operation takes
/// keeps a handler's annotation to the answers that are particular to it.
const SHARED: [(&str, &str, &str); 5] = [
    (
        "400",
        "BadRequest",
        "The body is malformed or does not fit the endpoint",
    ),
    ("401", "Unauthorized", "No valid bearer token"),
    ("413", "TooLarge", "The body is over the size limit"),
    (
        "500",
        "Internal",
        "An internal failure; details stay in the server's log",
    ),
    (
        "503",
        "Unavailable",
        "A dependency (database, Redis, Kafka) is unreachable; the same request may succeed later",
    ),
];

/// Adds the shared error answers to the operations they apply to and
/// returns the finished document.
pub fn finish(mut doc: OpenApi) -> OpenApi {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            add_shared_errors(op);
        }
    }
    let components = doc.components.get_or_insert_with(Default::default);
    for (_, name, description) in SHARED {
        let response = Response::builder()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build();
        components.responses.insert(name.into(), response.into());
    }
    doc
}

/// An operation that declares no error of its own, takes no body and needs
/// no token cannot fail (health, the client config, this document).
fn add_shared_errors(op: &mut Operation) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    let fails = secured
        || has_body
        || op
            .responses
            .responses
            .keys()
            .any(|status| status.starts_with('4'));
    let applies = |status: &str| match status {
        "400" | "413" => has_body,
        "401" => secured,
        _ => fails,
    };
    for (status, name, _) in SHARED.into_iter().filter(|(s, _, _)| applies(s)) {
        op.responses
            .responses
            .entry(status.into())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
}

/// `GET /api/v1/openapi.json`: this document. The document is built with the
/// router and handed to this handler as an extension, since it only exists
/// once every route is registered.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "client",
    operation_id = "openapi",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object))
)]
pub async fn document(Extension(doc): Extension<Arc<OpenApi>>) -> Json<OpenApi> {
    Json(doc.as_ref().clone())
}

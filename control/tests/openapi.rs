//! The OpenAPI document at `/api/v1/openapi.json` against what it must agree
//! with: the route table of docs/protocol.md §2 (every route the protocol
//! promises is documented) and the running server (every documented
//! operation exists, and a call without a token gets a status the operation
//! documents: 401 exactly when it lists the bearer scheme).

mod support;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use support::{Backend, TestServer, start_server};

/// The methods the protocol and the document use.
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "PATCH"];

async fn document(s: &TestServer) -> Result<Value> {
    let r = s.http.get(s.url("/openapi.json")).send().await?;
    ensure!(
        r.status() == 200,
        "GET /api/v1/openapi.json: {}",
        r.status()
    );
    let content_type = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    Ok(r.json().await?)
}

/// Each documented operation by (method in capitals, path).
fn operations(doc: &Value) -> Result<BTreeMap<(String, String), &Value>> {
    let paths = doc["paths"].as_object().context("paths")?;
    let mut ops = BTreeMap::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().context("path item")? {
            let method = method.to_uppercase();
            ensure!(METHODS.contains(&method.as_str()), "{method} {path}");
            ops.insert((method, path.clone()), op);
        }
    }
    Ok(ops)
}

/// (method, path) of every route in the REST table of docs/protocol.md §2:
/// each `METHOD /path` in a row's first cell, the query string dropped,
/// under `/api/v1` unless the row says the route is at the root.
fn protocol_routes() -> Result<BTreeSet<(String, String)>> {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let text = std::fs::read_to_string(file).context(file)?;
    let start = text.find("\n## 2. ").context("no §2 in protocol.md")?;
    let len = text[start..].find("\n## 3. ").context("no §3")?;
    let mut routes = BTreeSet::new();
    for row in text[start..start + len].lines() {
        let Some(cell) = row.strip_prefix('|').and_then(|r| r.split('|').next()) else {
            continue;
        };
        let prefix = if cell.contains("at the root") {
            ""
        } else {
            "/api/v1"
        };
        let words: Vec<&str> = cell.split_whitespace().collect();
        for pair in words.windows(2) {
            if let [method, path] = pair
                && METHODS.contains(method)
                && path.starts_with('/')
            {
                let path = path.trim_end_matches([',', ';']);
                let path = path.split('?').next().unwrap_or(path);
                routes.insert((method.to_string(), format!("{prefix}{path}")));
            }
        }
    }
    Ok(routes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_1() -> Result<()> {
    let s = start_server(Backend::Embedded).await?;
    let doc = document(&s).await?;
    let version = doc["openapi"].as_str().unwrap_or_default();
    ensure!(version.starts_with("3.1."), "openapi {version}");
    serde_json::from_value::<utoipa::openapi::OpenApi>(doc.clone())
        .context("the document does not parse as OpenAPI")?;
    assert_eq!(doc["info"]["title"], "GoChat");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (&bearer["type"], &bearer["scheme"]),
        (&"http".into(), &"bearer".into())
    );
    let mut ids = BTreeSet::new();
    for ((method, path), op) in operations(&doc)? {
        let id = op["operationId"].as_str().unwrap_or_default();
        ensure!(
            ids.insert(id.to_owned()),
            "{method} {path}: operationId {id:?} is not unique"
        );
        ensure!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path}: no responses"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_route_is_documented() -> Result<()> {
    let s = start_server(Backend::Embedded).await?;
    let doc = document(&s).await?;
    let documented = operations(&doc)?;
    let routes = protocol_routes()?;
    // Guards against a change of the table's layout that would make this pass by finding nothing.
    ensure!(
        routes.len() >= 30,
        "only {} routes found in protocol.md §2",
        routes.len()
    );
    let missing: Vec<String> = routes
        .iter()
        .filter(|route| !documented.contains_key(*route))
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    ensure!(
        missing.is_empty(),
        "in protocol.md §2 but not in the document: {missing:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served() -> Result<()> {
    let s = start_server(Backend::Embedded).await?;
    let doc = document(&s).await?;
    let media = uploaded_media_name(&s).await?;
    let mut failures = Vec::new();
    for ((method, path), op) in operations(&doc)? {
        // Ids that exist nowhere, except for the one public route with a
        // parameter, whose handler would answer 404 for a name that does not.
        let concrete = path.replace("{name}", &media);
        let concrete = concrete
            .split('/')
            .map(|seg| if seg.starts_with('{') { "1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let r = s
            .http
            .request(method.parse()?, format!("{}{concrete}", s.base))
            .send()
            .await?;
        let status = r.status().as_u16();
        let documented = op["responses"]
            .as_object()
            .is_some_and(|r| r.contains_key(&status.to_string()));
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        if status == 404 || status == 405 {
            failures.push(format!("{method} {path}: {status}, not served"));
        } else if !documented {
            failures.push(format!(
                "{method} {path}: {status} is not among its responses"
            ));
        } else if secured != (status == 401) {
            failures.push(format!(
                "{method} {path}: {status} without a token, security {secured}"
            ));
        }
    }
    ensure!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

/// The name under `/media/` of a file uploaded for the purpose.
async fn uploaded_media_name(s: &TestServer) -> Result<String> {
    let user = s.user("uploader").await?;
    let part = reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("hello.txt");
    let r = s
        .http
        .post(s.url("/uploads"))
        .bearer_auth(&user.token)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await?;
    let body: Value = r.json().await?;
    match body["url"].as_str().and_then(|u| u.strip_prefix("/media/")) {
        Some(name) => Ok(name.to_owned()),
        None => bail!("upload answered {body}"),
    }
}

//! Groups (system messages, mentions), uploads and admin push, operations
//! endpoints, and the services split over gRPC, end to end against both
//! engine sets like `api.rs`.

#[macro_use]
mod support;

use anyhow::Result;
use serde_json::{Value, json};
use support::{Backend, TestServer, TestUser, cid, start_server};

async fn groups_post_system_messages_and_mentions(s: TestServer) -> Result<()> {
    let owner = s.user("owner").await?;
    let m1 = s.user("mem1").await?;
    let m2 = s.user("mem2").await?;
    let (_, group) = s
        .post(
            &owner,
            "/groups",
            json!({"name":"team","member_ids":[m1.id]}),
        )
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(group["member_count"], 2);
    assert_eq!(
        group["conversation_id"].as_str(),
        Some(format!("g{gid}").as_str())
    );
    let (status, _) = s
        .post(
            &m1,
            &format!("/groups/{gid}/members"),
            json!({"user_ids":[m2.id]}),
        )
        .await?;
    assert_eq!(status, 200);
    let (_, members) = s.get(&m2, &format!("/groups/{gid}/members")).await?;
    assert_eq!(members["members"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        s.post(&m2, &format!("/groups/{gid}/members/{}", m1.id), json!({}))
            .await?
            .0,
        405
    );
    let m1_path = format!("/groups/{gid}/members/{}", m1.id);
    let removed = s.delete(&m2, &m1_path).await?.0;
    assert_eq!(removed, 403, "members cannot remove members");
    let (status, _) = s.send(&m1, json!({"client_msg_id":"at","group_id":gid,"content":"hey @[user_id:x]","mentions":[m2.id]})).await?;
    assert_eq!(status, 200);
    let (_, mentions) = s.get(&m2, "/mentions").await?;
    assert_eq!(mentions["mentions"].as_array().map(Vec::len), Some(1));
    let (_, list) = s.get(&m2, "/conversations").await?;
    assert_eq!(list["conversations"][0]["unread_mentions"], 1);
    let m2_path = format!("/groups/{gid}/members/{}", m2.id);
    assert_eq!(s.delete(&m2, &m2_path).await?.0, 204);
    let (_, page) = s
        .get(
            &owner,
            &format!("/conversations/g{gid}/messages?after_seq=0"),
        )
        .await?;
    let kinds: Vec<&str> = page["messages"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|m| m["message_type"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        kinds,
        vec!["system_group", "system_group", "text", "system_group"]
    );
    assert_eq!(page["messages"][0]["from_user_id"], "0");
    assert_eq!(
        s.get(&m2, &format!("/conversations/g{gid}/messages"))
            .await?
            .0,
        403,
        "gone means gone"
    );
    Ok(())
}

async fn health_and_metrics(s: TestServer) -> Result<()> {
    // Traffic before the first scrape must be counted too (nextest runs each
    // test in a process of its own, so the recorder starts fresh here).
    let alice = s.user("alice").await?;
    let bob = s.user("bob").await?;
    let (status, _) = s
        .send(
            &alice,
            json!({"client_msg_id":"m1","to_user_id":bob.id,"content":"hi"}),
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(
        s.http
            .get(format!("{}/healthz", s.base))
            .send()
            .await?
            .status(),
        200
    );
    assert_eq!(
        s.http
            .get(format!("{}/readyz", s.base))
            .send()
            .await?
            .status(),
        200
    );
    let metrics = s.http.get(format!("{}/metrics", s.base)).send().await?;
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await?;
    assert!(
        text.lines()
            .any(|l| l.starts_with("gochat_messages_stored_total") && !l.ends_with(" 0")),
        "the send before the first scrape is counted:\n{text}"
    );
    Ok(())
}

/// `/media` opens to its signed link, to a token in the header or the
/// query, and to nothing else; a profile's avatar link is signed afresh.
async fn signed_links_or_a_token_open_media(
    s: &TestServer,
    bob: &TestUser,
    url: &str,
) -> Result<()> {
    let status = |path: String, token: Option<&str>| {
        let mut request = s.http.get(format!("{}{path}", s.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { anyhow::Ok(request.send().await?.status().as_u16()) }
    };
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    assert!(
        query.starts_with("exp=") && query.contains("&sig="),
        "{url}"
    );
    assert_eq!(status(url.to_owned(), None).await?, 200);
    assert_eq!(
        status(path.to_owned(), None).await?,
        401,
        "no link, no token"
    );
    let forged = url.replace("&sig=", "&sig=x");
    assert_eq!(status(forged, None).await?, 401);
    let expired = format!(
        "{path}?exp=1&{}",
        query.split('&').nth(1).unwrap_or_default()
    );
    assert_eq!(status(expired, None).await?, 401);
    assert_eq!(status(path.to_owned(), Some(&bob.token)).await?, 200);
    assert_eq!(
        status(format!("{path}?token={}", bob.token), None).await?,
        200
    );
    assert_eq!(status(format!("{path}?token=nonsense"), None).await?, 401);
    // An avatar set from an upload comes back signed afresh, and opens.
    let (code, me) = s
        .patch(bob, "/users/me", json!({"avatar_url": path}))
        .await?;
    assert_eq!(code, 200);
    let avatar = me["avatar_url"].as_str().unwrap_or_default().to_owned();
    assert!(avatar.starts_with(&format!("{path}?exp=")), "{avatar}");
    assert_eq!(status(avatar, None).await?, 200);
    Ok(())
}

async fn uploads_and_admin_push(s: TestServer) -> Result<()> {
    let admin = s.user("admin").await?;
    let bob = s.user("bob").await?;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"\x89PNG fake".to_vec()).file_name("cat.png"),
    );
    let r = s
        .http
        .post(s.url("/uploads"))
        .bearer_auth(&bob.token)
        .multipart(form)
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    let up: Value = r.json().await?;
    assert_eq!(
        (up["size"].as_u64(), up["mime_type"].as_str()),
        (Some(9), Some("image/png"))
    );
    let url = up["url"].as_str().unwrap_or_default().to_owned();
    let fetched = s.http.get(format!("{}{url}", s.base)).send().await?;
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["x-content-type-options"], "nosniff");
    assert_eq!(fetched.headers()["content-disposition"], "inline");
    assert_eq!(fetched.bytes().await?.as_ref(), b"\x89PNG fake");
    // A page named like an image is refused, a page by its name is not a
    // type taken (415), and anything not an image is a download.
    let upload = |name: &'static str, bytes: &'static [u8]| {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name),
        );
        s.http
            .post(s.url("/uploads"))
            .bearer_auth(&bob.token)
            .multipart(form)
            .send()
    };
    assert_eq!(
        upload("evil.png", b"<html><script>x</script>")
            .await?
            .status(),
        400
    );
    let refused = upload("page.html", b"<html><script>x</script>").await?;
    assert_eq!(refused.status(), 415);
    let refused: Value = refused.json().await?;
    assert_eq!(refused["error"]["code"], "unsupported_type");
    let page: Value = upload("notes.txt", b"<html><script>x</script>")
        .await?
        .json()
        .await?;
    let fetched = s
        .http
        .get(format!(
            "{}{}",
            s.base,
            page["url"].as_str().unwrap_or_default()
        ))
        .send()
        .await?;
    assert_eq!(fetched.headers()["content-disposition"], "attachment");
    assert_eq!(
        fetched.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        s.http
            .get(format!("{}/media/..%2Fsecret?token={}", s.base, bob.token))
            .send()
            .await?
            .status(),
        404
    );
    signed_links_or_a_token_open_media(&s, &bob, &url).await?;
    // Not a form at all: the protocol's JSON error, like every other error.
    let r = s
        .http
        .post(s.url("/uploads"))
        .bearer_auth(&bob.token)
        .header("content-type", "text/plain")
        .body("not a form")
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["code"], "bad_request");

    assert_eq!(
        s.post(
            &bob,
            "/admin/push",
            json!({"all":true,"title":"t","content":"c"})
        )
        .await?
        .0,
        403
    );
    let (status, _) = s
        .post(
            &admin,
            "/admin/push",
            json!({"user_ids":[bob.id],"title":"Maintenance","content":"tonight","category":"ops"}),
        )
        .await?;
    assert_eq!(status, 202);
    let system = cid("0", &bob.id);
    let mut found = Value::Null;
    for _ in 0..100 {
        let (status, page) = s
            .get(
                &bob,
                &format!("/conversations/{system}/messages?after_seq=0"),
            )
            .await?;
        if status == 200 && page["messages"].as_array().is_some_and(|m| !m.is_empty()) {
            found = page["messages"][0].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        (
            found["message_type"].as_str(),
            found["from_user_id"].as_str(),
            found["content"].as_str()
        ),
        (Some("system"), Some("0"), Some("tonight"))
    );
    Ok(())
}

/// Owner, two members, their group's id, and the owner's ack of a message to it.
async fn team_with_a_message(
    s: &TestServer,
) -> Result<(TestUser, TestUser, TestUser, String, Value)> {
    let owner = s.user("owner").await?;
    let m1 = s.user("mem1").await?;
    let m2 = s.user("mem2").await?;
    let (_, group) = s
        .post(
            &owner,
            "/groups",
            json!({"name":"team","member_ids":[m1.id, m2.id]}),
        )
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    let (_, ack) = s
        .send(
            &owner,
            json!({"client_msg_id":"r1","group_id":gid,"content":"read me"}),
        )
        .await?;
    Ok((owner, m1, m2, gid, ack))
}

/// Read receipts (PROTOCOL v1.1 §6.4): from the participants' cursors, the
/// sender left out, for any participant to ask; readers named up to
/// `logic.receipt_list_max` members.
async fn read_receipts(s: TestServer) -> Result<()> {
    let (owner, m1, m2, gid, ack) = team_with_a_message(&s).await?;
    let outsider = s.user("outsider").await?;
    let path = format!(
        "/conversations/g{gid}/messages/{}/reads",
        ack["message_id"].as_str().unwrap_or_default()
    );
    let (status, reads) = s.get(&m2, &path).await?;
    assert_eq!(
        (status, &reads),
        (200, &json!({"read_count":0,"read_by":[]}))
    );
    s.post(
        &m1,
        &format!("/conversations/g{gid}/read"),
        json!({"seq_id": ack["seq_id"]}),
    )
    .await?;
    let (_, reads) = s.get(&owner, &path).await?;
    assert_eq!(
        reads,
        json!({"read_count":1,"read_by":[m1.id]}),
        "the sender is not counted"
    );
    assert_eq!(s.get(&outsider, &path).await?.0, 403);
    let unknown = format!("/conversations/g{gid}/messages/12345/reads");
    assert_eq!(s.get(&owner, &unknown).await?.0, 404);

    let (_, direct) = s
        .send(
            &m1,
            json!({"client_msg_id":"r2","to_user_id":m2.id,"content":"and me"}),
        )
        .await?;
    let cid = direct["conversation_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    s.post(
        &m2,
        &format!("/conversations/{cid}/read"),
        json!({"seq_id": direct["seq_id"]}),
    )
    .await?;
    let direct_path = format!(
        "/conversations/{cid}/messages/{}/reads",
        direct["message_id"].as_str().unwrap_or_default()
    );
    let (_, reads) = s.get(&m1, &direct_path).await?;
    assert_eq!(reads, json!({"read_count":1,"read_by":[m2.id]}));
    Ok(())
}

on_both!(
    groups_post_system_messages_and_mentions,
    health_and_metrics,
    read_receipts
);

mod extra {
    use super::*;

    /// Over `logic.receipt_list_max` members a receipt is a count only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_groups_get_a_read_count_only() -> Result<()> {
        let mut config = support::test_config(Backend::Embedded).await?;
        config.logic.receipt_list_max = 2;
        let s = support::start_with(config).await?;
        let (_, m1, m2, gid, ack) = team_with_a_message(&s).await?;
        s.post(
            &m1,
            &format!("/conversations/g{gid}/read"),
            json!({"seq_id": ack["seq_id"]}),
        )
        .await?;
        let path = format!(
            "/conversations/g{gid}/messages/{}/reads",
            ack["message_id"].as_str().unwrap_or_default()
        );
        assert_eq!(s.get(&m2, &path).await?.1, json!({"read_count":1}));
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uploads_and_admin_push_embedded() -> Result<()> {
        super::uploads_and_admin_push(start_server(Backend::Embedded).await?).await
    }

    /// repo in one process, logic + task in another, talking gRPC.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn split_services_talk_grpc() -> Result<()> {
        use gochat_control::config::{Service, parse_services};
        let mut repo_config = support::test_config(Backend::Real).await?;
        repo_config.services = [Service::Repo].into_iter().collect();
        let repo = support::start_with(repo_config.clone()).await?;
        let grpc = repo
            .running
            .as_ref()
            .and_then(|r| r.grpc_addr)
            .ok_or_else(|| anyhow::anyhow!("grpc addr"))?;
        let mut logic_config = repo_config;
        logic_config.services = parse_services("logic,task")?;
        logic_config.grpc.repo_endpoint = Some(format!("http://{grpc}"));
        let s = support::start_with(logic_config).await?;
        let alice = s.user("alice").await?;
        let bob = s.user("bob").await?;
        let (status, ack) = s
            .send(
                &alice,
                json!({"client_msg_id":"g1","to_user_id":bob.id,"content":"via grpc"}),
            )
            .await?;
        assert_eq!((status, ack["seq_id"].as_i64()), (200, Some(1)), "{ack}");
        let (_, page) = s
            .get(
                &bob,
                &format!("/conversations/{}/messages", cid(&alice.id, &bob.id)),
            )
            .await?;
        assert_eq!(page["messages"][0]["content"], "via grpc");
        assert_eq!(
            repo.http
                .get(format!("{}/readyz", repo.base))
                .send()
                .await?
                .status(),
            200
        );
        Ok(())
    }
}

//! The REST API and the send pipeline end to end, against both engine sets:
//! embedded (SQLite, in-process state and log) and real (MariaDB, Redis, Kafka).

mod support;

use anyhow::Result;
use gochat_proto::ids::{Id, single_conversation_id};
use serde_json::{Value, json};
use support::{Backend, TestServer, start_server};

fn cid(a: &str, b: &str) -> String {
    single_conversation_id(Id(a.parse().unwrap_or(0)), Id(b.parse().unwrap_or(0)))
}

async fn register_login_logout(s: TestServer) -> Result<()> {
    let r = s
        .http
        .post(s.url("/auth/register"))
        .json(&json!({"username":"alice","password":"password123","nickname":"Alice"}))
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await?;
    assert_eq!(
        (body["username"].as_str(), body["nickname"].as_str()),
        (Some("alice"), Some("Alice"))
    );
    assert!(body["user_id"].is_string(), "ids are strings");
    let again = s
        .http
        .post(s.url("/auth/register"))
        .json(&json!({"username":"alice","password":"password123"}))
        .send()
        .await?;
    assert_eq!(again.status(), 409);
    let wrong = s
        .http
        .post(s.url("/auth/login"))
        .json(&json!({"username":"alice","password":"nope-nope"}))
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);
    let nobody = s
        .http
        .post(s.url("/auth/login"))
        .json(&json!({"username":"nobody","password":"password123"}))
        .send()
        .await?;
    assert_eq!(nobody.status(), 401);
    let login: Value = s
        .http
        .post(s.url("/auth/login"))
        .json(&json!({"username":"alice","password":"password123","device_id":"laptop"}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().unwrap_or_default().to_owned();
    assert!(login["expires_at"].as_i64().unwrap_or(0) > gochat_proto::ids::now_millis());
    let me = s
        .http
        .get(s.url("/users/me"))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(me.status(), 200);
    assert_eq!(s.http.get(s.url("/users/me")).send().await?.status(), 401);
    assert_eq!(
        s.http
            .get(s.url("/users/me"))
            .bearer_auth("forged.token.here")
            .send()
            .await?
            .status(),
        401
    );
    assert_eq!(
        s.http
            .post(s.url("/auth/logout"))
            .bearer_auth(&token)
            .send()
            .await?
            .status(),
        204
    );
    let after = s
        .http
        .get(s.url("/users/me"))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(after.status(), 401, "a logged-out token opens nothing");
    Ok(())
}

async fn send_store_ack_pull(s: TestServer) -> Result<()> {
    let alice = s.user("alice").await?;
    let bob = s.user("bob").await?;
    let (status, ack) = s
        .send(
            &alice,
            json!({"client_msg_id":"c-1","to_user_id":bob.id,"content":"hi bob"}),
        )
        .await?;
    assert_eq!(status, 200, "{ack}");
    let cid = cid(&alice.id, &bob.id);
    assert_eq!(
        (
            ack["conversation_id"].as_str(),
            ack["seq_id"].as_i64(),
            ack["client_msg_id"].as_str()
        ),
        (Some(cid.as_str()), Some(1), Some("c-1"))
    );
    let (status, page) = s
        .get(&bob, &format!("/conversations/{cid}/messages?after_seq=0"))
        .await?;
    assert_eq!(status, 200);
    let messages = page["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["content"], "hi bob");
    assert_eq!(messages[0]["message_id"], ack["message_id"]);
    assert_eq!(
        messages[0]["from_user_id"].as_str(),
        Some(alice.id.as_str())
    );
    let (_, list) = s.get(&bob, "/conversations").await?;
    let conv = &list["conversations"][0];
    assert_eq!(
        (
            conv["type"].as_str(),
            conv["unread"].as_i64(),
            conv["last_seq_id"].as_i64()
        ),
        (Some("single"), Some(1), Some(1))
    );
    assert_eq!(conv["peer_user_id"].as_str(), Some(alice.id.as_str()));
    // Read cursors never move back.
    assert_eq!(
        s.post(
            &bob,
            &format!("/conversations/{cid}/read"),
            json!({"seq_id":1})
        )
        .await?
        .0,
        204
    );
    assert_eq!(
        s.post(
            &bob,
            &format!("/conversations/{cid}/read"),
            json!({"seq_id":0})
        )
        .await?
        .0,
        204
    );
    let (_, list) = s.get(&bob, "/conversations").await?;
    assert_eq!(
        (
            list["conversations"][0]["read_seq_id"].as_i64(),
            list["conversations"][0]["unread"].as_i64()
        ),
        (Some(1), Some(0))
    );
    Ok(())
}

async fn resend_returns_the_same_ack(s: TestServer) -> Result<()> {
    let alice = s.user("alice").await?;
    let bob = s.user("bob").await?;
    let body = json!({"client_msg_id":"dup-1","to_user_id":bob.id,"content":"once"});
    let (_, first) = s.send(&alice, body.clone()).await?;
    let (status, second) = s.send(&alice, body).await?;
    assert_eq!(status, 200);
    assert_eq!(first, second, "same message_id, seq_id and timestamp");
    let (_, page) = s
        .get(
            &bob,
            &format!(
                "/conversations/{}/messages?after_seq=0",
                cid(&alice.id, &bob.id)
            ),
        )
        .await?;
    assert_eq!(
        page["messages"].as_array().map(Vec::len),
        Some(1),
        "stored once"
    );
    Ok(())
}

async fn concurrent_sends_get_gap_free_seqs(s: TestServer) -> Result<()> {
    let owner = s.user("owner").await?;
    let mut members = Vec::new();
    for i in 0..4 {
        members.push(s.user(&format!("member{i}")).await?);
    }
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let (status, group) = s
        .post(&owner, "/groups", json!({"name":"busy","member_ids":ids}))
        .await?;
    assert_eq!(status, 201, "{group}");
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    let cid = format!("g{gid}");
    let (_, before) = s
        .get(
            &owner,
            &format!("/conversations/{cid}/messages?after_seq=0&limit=200"),
        )
        .await?;
    let base = before["messages"].as_array().map(Vec::len).unwrap_or(0) as i64; // "created the group"
    let s = std::sync::Arc::new(s);
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let s = s.clone();
        let sender = members[i % members.len()].clone();
        let gid = gid.clone();
        sends.spawn(async move {
            s.send(
                &sender,
                json!({"client_msg_id":format!("m-{i}"),"group_id":gid,"content":format!("n{i}")}),
            )
            .await
        });
    }
    let mut seqs = Vec::new();
    while let Some(result) = sends.join_next().await {
        let (status, ack) = result??;
        assert_eq!(status, 200, "{ack}");
        seqs.push(ack["seq_id"].as_i64().unwrap_or(-1));
    }
    seqs.sort_unstable();
    let expected: Vec<i64> = (base + 1..=base + 1000).collect();
    assert_eq!(
        seqs, expected,
        "seq 1..1000 after the group's first event, no gap, no duplicate"
    );
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let (_, page) = s
            .get(
                &owner,
                &format!("/conversations/{cid}/messages?after_seq={after}&limit=200"),
            )
            .await?;
        let batch = page["messages"].as_array().cloned().unwrap_or_default();
        stored.extend(batch.iter().filter_map(|m| m["seq_id"].as_i64()));
        after = stored.last().copied().unwrap_or(after);
        if !page["has_more"].as_bool().unwrap_or(false) {
            break;
        }
    }
    assert_eq!(stored, (1..=base + 1000).collect::<Vec<_>>());
    Ok(())
}

async fn outsiders_cannot_read_or_write(s: TestServer) -> Result<()> {
    let alice = s.user("alice").await?;
    let bob = s.user("bob").await?;
    let eve = s.user("eve").await?;
    s.send(
        &alice,
        json!({"client_msg_id":"x","to_user_id":bob.id,"content":"secret"}),
    )
    .await?;
    let (_, group) = s
        .post(
            &alice,
            "/groups",
            json!({"name":"private","member_ids":[bob.id]}),
        )
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    let single = cid(&alice.id, &bob.id);
    assert_eq!(
        s.get(
            &eve,
            &format!("/conversations/{single}/messages?after_seq=0")
        )
        .await?
        .0,
        403
    );
    assert_eq!(
        s.get(&eve, &format!("/conversations/g{gid}/messages?after_seq=0"))
            .await?
            .0,
        403
    );
    assert_eq!(s.get(&eve, &format!("/groups/{gid}/members")).await?.0, 403);
    assert_eq!(
        s.post(
            &eve,
            &format!("/conversations/g{gid}/read"),
            json!({"seq_id":1})
        )
        .await?
        .0,
        403
    );
    let (status, err) = s
        .send(
            &eve,
            json!({"client_msg_id":"e1","group_id":gid,"content":"let me in"}),
        )
        .await?;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let unknown = cid("999998", "999999");
    assert_eq!(
        s.get(
            &eve,
            &format!("/conversations/{unknown}/messages?after_seq=0")
        )
        .await?
        .0,
        404
    );
    assert_eq!(s.get(&eve, "/conversations/g999999/messages").await?.0, 404);
    // Blocks: bob blocks alice; her sends to him are refused.
    assert_eq!(
        s.post(&bob, "/blocks", json!({"user_id":alice.id}))
            .await?
            .0,
        201
    );
    let (status, err) = s
        .send(
            &alice,
            json!({"client_msg_id":"b1","to_user_id":bob.id,"content":"hello?"}),
        )
        .await?;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    Ok(())
}

async fn bad_input_is_refused_cleanly(s: TestServer) -> Result<()> {
    let alice = s.user("alice").await?;
    let bob = s.user("bob").await?;
    let raw = |path: &str, body: &'static str| {
        s.http
            .post(s.url(path))
            .bearer_auth(&alice.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (path, body) in [
        ("/messages", "{not json"),
        (
            "/messages",
            r#"{"client_msg_id":"u","to_user_id":"1","content":"x","sneaky":true}"#,
        ),
        (
            "/messages",
            r#"{"client_msg_id":"u","to_user_id":"1; DROP TABLE users","content":"x"}"#,
        ),
        ("/messages", r#"{"client_msg_id":"u","content":"x"}"#),
        (
            "/auth/register",
            r#"{"username":"x' OR '1'='1","password":"password123"}"#,
        ),
        (
            "/auth/register",
            r#"{"username":"carol","password":"password123","admin":true}"#,
        ),
        ("/groups", r#"{"name":"g","member_ids":"everyone"}"#),
    ] {
        let r = raw(path, body).await?;
        let status = r.status().as_u16();
        let err: Value = r.json().await?;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{path} {body}: {err}"
        );
    }
    let huge = "x".repeat(300 * 1024);
    let r = s
        .http
        .post(s.url("/messages"))
        .bearer_auth(&alice.token)
        .json(&json!({"client_msg_id":"big","to_user_id":bob.id,"content":huge}))
        .send()
        .await?;
    assert_eq!(r.status(), 413);
    let (status, err) = s
        .send(
            &alice,
            json!({"client_msg_id":"big2","to_user_id":bob.id,"content":"y".repeat(20_000)}),
        )
        .await?;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (413, Some("too_large"))
    );
    // SQL-looking text is data: searched literally, stored verbatim.
    let (status, found) = s.get(&alice, "/users?q=%27%20OR%201%3D1%20--").await?;
    assert_eq!(
        (status, found["users"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let evil = "'); DROP TABLE messages; --";
    let (status, _) = s
        .send(
            &alice,
            json!({"client_msg_id":"sql","to_user_id":bob.id,"content":evil}),
        )
        .await?;
    assert_eq!(status, 200);
    let (_, page) = s
        .get(
            &bob,
            &format!("/conversations/{}/messages", cid(&alice.id, &bob.id)),
        )
        .await?;
    let contents: Vec<&str> = page["messages"]
        .as_array()
        .map(|v| v.iter().filter_map(|m| m["content"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(contents, vec![evil], "nothing else changed");
    assert_eq!(
        s.get(&alice, "/conversations/not-a-cid/messages").await?.0,
        400
    );
    assert_eq!(s.get(&alice, "/users/abc").await?.0, 400);
    assert_eq!(s.get(&alice, "/nowhere").await?.0, 404);
    Ok(())
}

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
    let remove = s
        .http
        .delete(s.url(&format!("/groups/{gid}/members/{}", m1.id)))
        .bearer_auth(&m2.token)
        .send()
        .await?;
    assert_eq!(remove.status(), 403, "members cannot remove members");
    let (status, _) = s.send(&m1, json!({"client_msg_id":"at","group_id":gid,"content":"hey @[user_id:x]","mentions":[m2.id]})).await?;
    assert_eq!(status, 200);
    let (_, mentions) = s.get(&m2, "/mentions").await?;
    assert_eq!(mentions["mentions"].as_array().map(Vec::len), Some(1));
    let (_, list) = s.get(&m2, "/conversations").await?;
    assert_eq!(list["conversations"][0]["unread_mentions"], 1);
    let leave = s
        .http
        .delete(s.url(&format!("/groups/{gid}/members/{}", m2.id)))
        .bearer_auth(&m2.token)
        .send()
        .await?;
    assert_eq!(leave.status(), 204);
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
    Ok(())
}

macro_rules! on_both {
    ($($name:ident),*) => {
        mod embedded {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() -> Result<()> { super::$name(start_server(Backend::Embedded).await?).await })*
        }
        mod real {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() -> Result<()> { super::$name(start_server(Backend::Real).await?).await })*
        }
    };
}

on_both!(
    register_login_logout,
    send_store_ack_pull,
    resend_returns_the_same_ack,
    concurrent_sends_get_gap_free_seqs,
    outsiders_cannot_read_or_write,
    bad_input_is_refused_cleanly,
    groups_post_system_messages_and_mentions,
    health_and_metrics
);

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
    assert_eq!(fetched.bytes().await?.as_ref(), b"\x89PNG fake");
    assert_eq!(
        s.http
            .get(format!("{}/media/..%2Fsecret", s.base))
            .send()
            .await?
            .status(),
        404
    );

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

mod extra {
    use super::*;
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

//! The REST API and the send pipeline end to end — accounts, sends, history,
//! authorization, hostile input — against both engine sets: embedded
//! (SQLite, in-process state and log) and real (MariaDB, Redis, Kafka).
//! Groups, uploads, admin push and operations are in `api_groups.rs`.

#[macro_use]
mod support;

use anyhow::Result;
use serde_json::{Value, json};
use support::{Backend, TestServer, TestUser, cid, start_server};

async fn register_login_logout(s: TestServer) -> Result<()> {
    let register = |body| s.post_anonymous("/auth/register", body);
    let login = |body| s.post_anonymous("/auth/login", body);
    let (status, body) =
        register(json!({"username":"alice","password":"password123","nickname":"Alice"})).await?;
    assert_eq!(status, 201);
    assert_eq!(
        (body["username"].as_str(), body["nickname"].as_str()),
        (Some("alice"), Some("Alice"))
    );
    assert!(body["user_id"].is_string(), "ids are strings");
    let again = register(json!({"username":"alice","password":"password123"})).await?;
    assert_eq!(again.0, 409);
    let wrong = login(json!({"username":"alice","password":"nope-nope"})).await?;
    assert_eq!(wrong.0, 401);
    let nobody = login(json!({"username":"nobody","password":"password123"})).await?;
    assert_eq!(nobody.0, 401);
    let (status, session) =
        login(json!({"username":"alice","password":"password123","device_id":"laptop"})).await?;
    assert_eq!(status, 200);
    assert!(session["expires_at"].as_i64().unwrap_or(0) > gochat_proto::ids::now_millis());
    let alice = TestUser {
        id: session["user_id"].as_str().unwrap_or_default().to_owned(),
        name: "alice".into(),
        token: session["token"].as_str().unwrap_or_default().to_owned(),
    };
    assert_eq!(s.get(&alice, "/users/me").await?.0, 200);
    assert_eq!(s.http.get(s.url("/users/me")).send().await?.status(), 401);
    let forged = TestUser {
        token: "forged.token.here".into(),
        ..alice.clone()
    };
    assert_eq!(s.get(&forged, "/users/me").await?.0, 401);
    // The laptop registered for pushes; signing it out ends them.
    let device = json!({"device_id":"laptop","platform":"webhook","push_token":"t"});
    assert_eq!(s.post(&alice, "/devices", device).await?.0, 201);
    assert_eq!(s.post(&alice, "/auth/logout", json!({})).await?.0, 204);
    let after = s.get(&alice, "/users/me").await?.0;
    assert_eq!(after, 401, "a logged-out token opens nothing");
    let (_, again) =
        login(json!({"username":"alice","password":"password123","device_id":"phone"})).await?;
    let phone = TestUser {
        token: again["token"].as_str().unwrap_or_default().to_owned(),
        ..alice
    };
    let (status, _) = s.delete(&phone, "/devices/laptop").await?;
    assert_eq!(status, 404, "logout removed the laptop's push registration");
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
    Ok(())
}

async fn blocked_senders_are_refused(s: TestServer) -> Result<()> {
    let alice = s.user("alice").await?;
    let bob = s.user("bob").await?;
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
    // The blocker's list (PROTOCOL v1.1 §6.4), and only theirs.
    let (status, list) = s.get(&bob, "/blocks").await?;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["users"]
        .as_array()
        .map(|users| users.iter().filter_map(|u| u["user_id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![alice.id.as_str()]);
    assert_eq!(s.get(&alice, "/blocks").await?.1, json!({"users": []}));
    Ok(())
}

/// `PUT /conversations/{cid}/settings` (PROTOCOL v1.1 §6.4): per user, the
/// settings left out stay, and `GET /conversations` lists pinned ones first.
async fn conversation_settings(s: TestServer) -> Result<()> {
    let alice = s.user("alice").await?;
    let bob = s.user("bob").await?;
    let eve = s.user("eve").await?;
    let (_, ack) = s
        .send(
            &alice,
            json!({"client_msg_id":"c1","to_user_id":bob.id,"content":"older"}),
        )
        .await?;
    let cid = ack["conversation_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_, group) = s
        .post(
            &alice,
            "/groups",
            json!({"name":"newer","member_ids":[bob.id]}),
        )
        .await?;
    let path = format!("/conversations/{cid}/settings");
    let (status, now) = s.put(&alice, &path, json!({"pinned":true})).await?;
    assert_eq!(
        (status, now),
        (
            200,
            json!({"conversation_id":cid,"muted":false,"pinned":true,"archived":false})
        )
    );
    let (_, now) = s
        .put(&alice, &path, json!({"muted":true,"archived":true}))
        .await?;
    assert_eq!(
        (&now["pinned"], &now["muted"], &now["archived"]),
        (&json!(true), &json!(true), &json!(true))
    );
    let (_, list) = s.get(&alice, "/conversations").await?;
    let order: Vec<&str> = list["conversations"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|c| c["conversation_id"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let gcid = format!("g{}", group["group_id"].as_str().unwrap_or_default());
    assert_eq!(
        order,
        vec![cid.as_str(), gcid.as_str()],
        "pinned first, archived listed"
    );
    let (_, theirs) = s.get(&bob, "/conversations").await?;
    let mine_for_bob = theirs["conversations"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["conversation_id"] == cid.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(mine_for_bob["pinned"], false, "settings are per user");
    assert_eq!(s.put(&eve, &path, json!({"muted":true})).await?.0, 403);
    assert_eq!(
        s.put(&alice, "/conversations/g999999/settings", json!({}))
            .await?
            .0,
        404
    );
    assert_eq!(s.put(&alice, &path, json!({"loud":true})).await?.0, 400);
    Ok(())
}

async fn malformed_bodies_are_refused(s: TestServer) -> Result<()> {
    let alice = s.user("alice").await?;
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
    Ok(())
}

async fn oversized_and_sql_looking_input_is_handled(s: TestServer) -> Result<()> {
    let alice = s.user("alice").await?;
    let bob = s.user("bob").await?;
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

on_both!(
    register_login_logout,
    send_store_ack_pull,
    resend_returns_the_same_ack,
    concurrent_sends_get_gap_free_seqs,
    outsiders_cannot_read_or_write,
    blocked_senders_are_refused,
    malformed_bodies_are_refused,
    oversized_and_sql_looking_input_is_handled,
    conversation_settings
);

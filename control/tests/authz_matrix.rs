//! The authorization matrix: every authenticated endpoint × who calls it —
//! nobody (no token), an outsider, a member of the group or participant of
//! the chat, the group's owner, the site admin — and the status each must
//! get. One world per row, so a row that changes state (a removal) cannot
//! change another's answer. The site admin is no member of the world's
//! group: group powers come from group roles only.

mod support;

use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};
use support::{Backend, TestServer, TestUser, start_server};

/// The people and places of one row.
struct World {
    owner: TestUser,
    member: TestUser,
    outsider: TestUser,
    admin: TestUser,
    /// A group of `owner` (owner) and `member`.
    gid: String,
    /// The 1:1 chat of `owner` and `member`.
    pair: String,
    /// `owner`'s message in `pair`.
    message: String,
    /// `outsider`'s friend request to `member`.
    request: String,
    /// `outsider`'s request to join `gid`.
    join_request: String,
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Nobody,
    Outsider,
    Member,
    Owner,
    Admin,
}

async fn world(s: &TestServer, n: usize) -> Result<World> {
    let owner = s.user(&format!("owner{n}")).await?;
    let member = s.user(&format!("member{n}")).await?;
    let outsider = s.user(&format!("outsider{n}")).await?;
    let admin = s.user("admin").await?;
    let (_, group) = s
        .post(
            &owner,
            "/groups",
            json!({"name":"g","member_ids":[member.id]}),
        )
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    let (_, ack) = s
        .send(
            &owner,
            json!({"client_msg_id":"m1","to_user_id":member.id,"content":"hi"}),
        )
        .await?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let pair = text(&ack["conversation_id"]);
    let message = text(&ack["message_id"]);
    let (_, asked) = s
        .post(&outsider, "/friends", json!({"user_id": member.id}))
        .await?;
    let request = text(&asked["request_id"]);
    let (_, joining) = s
        .post(&outsider, &format!("/groups/{gid}/join"), json!({}))
        .await?;
    let join_request = text(&joining["request_id"]);
    Ok(World {
        owner,
        member,
        outsider,
        admin,
        gid,
        pair,
        message,
        request,
        join_request,
    })
}

/// One endpoint: how to call it in a world, and who gets what.
struct Row {
    method: Method,
    path: fn(&World) -> String,
    body: fn(&World) -> Value,
    expect: &'static [(Who, u16)],
}

fn rows() -> Vec<Row> {
    use Who::*;
    let none = |_: &World| json!({});
    vec![
        Row {
            method: Method::GET,
            path: |w| format!("/conversations/{}/messages", w.pair),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 200), (Owner, 200)],
        },
        Row {
            method: Method::GET,
            path: |w| format!("/conversations/g{}/messages", w.gid),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 200), (Owner, 200)],
        },
        Row {
            method: Method::POST,
            path: |w| format!("/conversations/{}/read", w.pair),
            body: |_| json!({"seq_id": 1}),
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 204), (Owner, 204)],
        },
        Row {
            method: Method::POST,
            path: |_| "/messages".into(),
            body: |w| json!({"client_msg_id":"x1","group_id":w.gid,"content":"x"}),
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 200), (Owner, 200)],
        },
        Row {
            method: Method::GET,
            path: |w| format!("/groups/{}/members", w.gid),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 200), (Owner, 200)],
        },
        Row {
            method: Method::PATCH,
            path: |w| format!("/groups/{}", w.gid),
            body: |_| json!({"name":"renamed"}),
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 403), (Owner, 200)],
        },
        Row {
            method: Method::POST,
            path: |w| format!("/groups/{}/members", w.gid),
            body: |w| json!({"user_ids":[w.admin.id]}),
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 200), (Owner, 200)],
        },
        Row {
            method: Method::DELETE,
            path: |w| format!("/groups/{}/members/{}", w.gid, w.member.id),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 403), (Owner, 204)],
        },
        Row {
            method: Method::DELETE,
            path: |w| format!("/groups/{}/members/{}", w.gid, w.owner.id),
            body: none,
            expect: &[(Nobody, 401), (Member, 409), (Owner, 409)],
        },
        Row {
            method: Method::POST,
            path: |_| "/admin/push".into(),
            body: |_| json!({"all":true,"title":"t","content":"c"}),
            expect: &[(Nobody, 401), (Member, 403), (Owner, 403), (Admin, 202)],
        },
        Row {
            method: Method::GET,
            path: |_| "/users/me".into(),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 200)],
        },
        Row {
            method: Method::GET,
            path: |_| "/conversations".into(),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 200)],
        },
        Row {
            method: Method::POST,
            path: |_| "/uploads".into(),
            body: none,
            expect: &[(Nobody, 401)],
        },
        Row {
            method: Method::POST,
            path: |_| "/friends".into(),
            body: |w| json!({"user_id": w.owner.id}),
            expect: &[(Nobody, 401)],
        },
        Row {
            method: Method::POST,
            path: |_| "/blocks".into(),
            body: |w| json!({"user_id": w.owner.id}),
            expect: &[(Nobody, 401)],
        },
        Row {
            method: Method::GET,
            path: |w| format!("/groups/{}", w.gid),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 200), (Member, 200)],
        },
        Row {
            method: Method::POST,
            path: |w| format!("/groups/{}/join", w.gid),
            body: none,
            // New groups ask for approval: an outsider's join waits.
            expect: &[(Nobody, 401), (Outsider, 202), (Member, 200)],
        },
        Row {
            method: Method::GET,
            path: |w| format!("/users/{}", w.owner.id),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 200)],
        },
        Row {
            method: Method::PATCH,
            path: |_| "/users/me".into(),
            body: |_| json!({"nickname":"Nick"}),
            expect: &[(Nobody, 401), (Outsider, 200)],
        },
        Row {
            method: Method::DELETE,
            path: |w| format!("/friends/{}", w.owner.id),
            body: none,
            expect: &[(Nobody, 401)],
        },
        Row {
            method: Method::DELETE,
            path: |w| format!("/blocks/{}", w.owner.id),
            body: none,
            expect: &[(Nobody, 401)],
        },
        Row {
            method: Method::GET,
            path: |_| "/groups".into(),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 200)],
        },
        Row {
            method: Method::GET,
            path: |_| "/friends".into(),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 200)],
        },
        Row {
            method: Method::POST,
            path: |_| "/auth/logout".into(),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 204)],
        },
        Row {
            method: Method::GET,
            path: |_| "/mentions".into(),
            body: none,
            expect: &[(Nobody, 401), (Member, 200)],
        },
    ]
    .into_iter()
    .chain(version_1_1_rows())
    .collect()
}

/// The endpoints of PROTOCOL v1.1.
fn version_1_1_rows() -> Vec<Row> {
    use Who::*;
    let none = |_: &World| json!({});
    vec![
        Row {
            method: Method::PATCH,
            path: |w| format!("/conversations/{}/messages/{}", w.pair, w.message),
            body: |_| json!({"content":"edited"}),
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 403), (Owner, 200)],
        },
        Row {
            method: Method::POST,
            path: |w| format!("/conversations/{}/messages/{}/recall", w.pair, w.message),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 403), (Owner, 200)],
        },
        Row {
            method: Method::DELETE,
            path: |w| format!("/conversations/{}/messages/{}", w.pair, w.message),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 204), (Owner, 204)],
        },
        Row {
            method: Method::GET,
            path: |w| format!("/conversations/{}/messages/{}/reads", w.pair, w.message),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 200), (Owner, 200)],
        },
        Row {
            method: Method::PUT,
            path: |w| format!("/conversations/{}/settings", w.pair),
            body: |_| json!({"muted":true}),
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 200)],
        },
        Row {
            method: Method::POST,
            path: |_| "/admin/users".into(),
            body: |w| json!({"users":[{"username":format!("bulk{}", w.owner.id),"password":"password1"}]}),
            expect: &[(Nobody, 401), (Outsider, 403), (Owner, 403), (Admin, 201)],
        },
        Row {
            method: Method::GET,
            path: |_| "/blocks".into(),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 200)],
        },
        Row {
            method: Method::PUT,
            path: |w| format!("/groups/{}/members/{}/role", w.gid, w.member.id),
            body: |_| json!({"role":"admin"}),
            expect: &[
                (Nobody, 401),
                (Outsider, 403),
                (Member, 403),
                (Admin, 403),
                (Owner, 200),
            ],
        },
        Row {
            method: Method::POST,
            path: |w| format!("/groups/{}/transfer", w.gid),
            body: |w| json!({"user_id": w.member.id}),
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 403), (Owner, 200)],
        },
        Row {
            method: Method::DELETE,
            path: |w| format!("/groups/{}", w.gid),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 403), (Owner, 204)],
        },
        Row {
            method: Method::PATCH,
            path: |w| format!("/groups/{}", w.gid),
            body: |_| json!({"mute_all": true, "join_policy": "open"}),
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 403), (Owner, 200)],
        },
        Row {
            method: Method::POST,
            path: |w| format!("/groups/{}/members/{}/mute", w.gid, w.member.id),
            body: |_| json!({"until": 4_102_444_800_000_i64}),
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 403), (Owner, 200)],
        },
        Row {
            method: Method::DELETE,
            path: |w| format!("/groups/{}/members/{}/mute", w.gid, w.member.id),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 403), (Owner, 204)],
        },
        Row {
            method: Method::GET,
            path: |w| format!("/groups/{}/join-requests", w.gid),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 403), (Owner, 200)],
        },
        Row {
            method: Method::POST,
            path: |w| format!("/groups/{}/join-requests/{}/accept", w.gid, w.join_request),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 403), (Owner, 200)],
        },
        Row {
            method: Method::POST,
            path: |w| format!("/groups/{}/join-requests/{}/reject", w.gid, w.join_request),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 403), (Member, 403), (Owner, 204)],
        },
        Row {
            method: Method::GET,
            path: |_| "/search/messages?q=hi".into(),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 200)],
        },
        Row {
            method: Method::GET,
            path: |w| format!("/search/messages?q=hi&conversation_id={}", w.pair),
            body: none,
            expect: &[(Outsider, 403), (Member, 200), (Owner, 200)],
        },
        Row {
            method: Method::POST,
            path: |_| "/devices".into(),
            body: |_| json!({"device_id":"phone","platform":"fcm","push_token":"t"}),
            expect: &[(Nobody, 401), (Outsider, 201)],
        },
        Row {
            method: Method::DELETE,
            path: |_| "/devices/phone".into(),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 404)],
        },
        Row {
            method: Method::GET,
            path: |_| "/friend-requests".into(),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 200)],
        },
        Row {
            method: Method::POST,
            path: |w| format!("/friend-requests/{}/accept", w.request),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 404), (Owner, 404), (Member, 200)],
        },
        Row {
            method: Method::POST,
            path: |w| format!("/friend-requests/{}/reject", w.request),
            body: none,
            expect: &[(Nobody, 401), (Outsider, 404), (Member, 204)],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_each_caller_as_documented() -> Result<()> {
    let s = start_server(Backend::Embedded).await?;
    let mut wrong = Vec::new();
    let mut n = 0;
    for row in rows() {
        for &(who, expected) in row.expect {
            n += 1;
            let w = world(&s, n).await?;
            let path = (row.path)(&w);
            let mut request = s
                .http
                .request(row.method.clone(), s.url(&path))
                .json(&(row.body)(&w));
            let token = match who {
                Who::Nobody => None,
                Who::Outsider => Some(&w.outsider.token),
                Who::Member => Some(&w.member.token),
                Who::Owner => Some(&w.owner.token),
                Who::Admin => Some(&w.admin.token),
            };
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let status = request.send().await?.status().as_u16();
            if status != expected {
                wrong.push(format!(
                    "{} {path} as {who:?}: {status}, expected {expected}",
                    row.method
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {n} answers differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    Ok(())
}

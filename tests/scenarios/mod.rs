//! End-to-end scenarios (issue: edge gateway, point 8), run against standalone
//! and against the local cluster. Users on "gateway 0" and "gateway 1" are on
//! different gateways in the cluster (the message crosses Kafka) and on the
//! same one in standalone.
#![allow(dead_code)]

use std::collections::BTreeSet;

use anyhow::Result;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Client, Ended, Target, upgrade_status};

mod changes;
mod friends;
mod group_admin;
mod search;
mod settings;
pub use changes::{edit_recall_and_delete_for_me, group_managers_recall_lower_roles};
pub use friends::{
    blocks_stop_requests_invitations_and_presence, friend_policy_decides_who_may_ask,
    friend_requests_wait_for_consent, presence_reaches_conversation_peers_with_last_seen,
    presence_reaches_friends,
};
pub use group_admin::{group_join_policies_and_requests, group_roles_mutes_transfer_and_dissolve};
pub use search::search_finds_only_what_the_caller_may_read;
pub use settings::settings_reach_the_users_other_devices;

/// Calls `$each!` with every scenario, so standalone and the cluster run one list.
macro_rules! every_scenario {
    ($each:ident) => {
        $each!(
            one_to_one_send_ack_deliver,
            resend_is_deduplicated,
            offline_then_pull,
            concurrent_senders_get_gap_free_seq,
            rest_and_socket_sends_arrive_in_seq_order,
            group_rooms_follow_membership_live,
            group_send_reaches_members_on_both_gateways,
            refused_upgrades,
            bad_tokens_are_refused_on_rest_and_upgrade,
            logout_closes_that_tokens_connections,
            bad_frames_leave_others_untouched,
            second_login_of_a_device_kicks_the_first,
            presence_reaches_friends,
            presence_reaches_conversation_peers_with_last_seen,
            friend_requests_wait_for_consent,
            friend_policy_decides_who_may_ask,
            blocks_stop_requests_invitations_and_presence,
            group_roles_mutes_transfer_and_dissolve,
            group_join_policies_and_requests,
            search_finds_only_what_the_caller_may_read,
            edit_recall_and_delete_for_me,
            group_managers_recall_lower_roles,
            settings_reach_the_users_other_devices
        );
    };
}

fn unique(name: &str) -> String {
    format!("{name}{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

pub async fn one_to_one_send_ack_deliver(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let bob = t.user(&unique("bob")).await?;
    let mut a = t.connect(&alice, 0).await?;
    let mut b = t.connect(&bob, 1).await?;
    a.send(json!({"type":"send","client_msg_id":"m1","to_user_id":bob.id,"message_type":"text","content":"hello bob"})).await?;
    let ack = a.next_of("ack").await?;
    assert_eq!(
        (ack["client_msg_id"].as_str(), ack["seq_id"].as_i64()),
        (Some("m1"), Some(1))
    );
    let message = b.next_of("message").await?;
    assert_eq!(message["content"], "hello bob");
    assert_eq!(message["message_id"], ack["message_id"]);
    assert_eq!(message["from_user_id"].as_str(), Some(alice.id.as_str()));
    // And back, over the same connections.
    b.send(json!({"type":"send","client_msg_id":"r1","to_user_id":alice.id,"content":"hi alice"}))
        .await?;
    assert_eq!(b.next_of("ack").await?["seq_id"], 2);
    assert_eq!(a.next_of("message").await?["content"], "hi alice");
    a.send(json!({"type":"ping"})).await?;
    a.next_of("pong").await?;
    Ok(())
}

pub async fn resend_is_deduplicated(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let bob = t.user(&unique("bob")).await?;
    let mut a = t.connect(&alice, 0).await?;
    let send = json!({"type":"send","client_msg_id":"same","to_user_id":bob.id,"content":"once"});
    a.send(send.clone()).await?;
    let first = a.next_of("ack").await?;
    a.send(send).await?;
    let second = a.next_of("ack").await?;
    assert_eq!(first, second);
    let cid = first["conversation_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(t.pull_all(&bob, &cid).await?.len(), 1);
    Ok(())
}

pub async fn offline_then_pull(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let bob = t.user(&unique("bob")).await?;
    let mut a = t.connect(&alice, 0).await?;
    let mut cid = String::new();
    for i in 0..5 {
        a.send(json!({"type":"send","client_msg_id":format!("o{i}"),"to_user_id":bob.id,"content":format!("while away {i}")})).await?;
        cid = a.next_of("ack").await?["conversation_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    // Bob comes online later and pulls what he missed.
    let _b = t.connect(&bob, 1).await?;
    let messages = t.pull_all(&bob, &cid).await?;
    let seqs: Vec<i64> = messages
        .iter()
        .filter_map(|m| m["seq_id"].as_i64())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    let (_, list) = t.get(&bob, "/conversations").await?;
    assert_eq!(list["conversations"][0]["unread"], 5);
    Ok(())
}

pub async fn concurrent_senders_get_gap_free_seq(t: &Target) -> Result<()> {
    let owner = t.user(&unique("owner")).await?;
    let mut members = Vec::new();
    for i in 0..4 {
        members.push(t.user(&unique(&format!("m{i}_"))).await?);
    }
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let (_, group) = t
        .post(&owner, "/groups", json!({"name":"seq","member_ids":ids}))
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    // Under the default per-user send rate (20/s): a burst, not a flood.
    let per_sender = 15;
    let mut tasks = tokio::task::JoinSet::new();
    for (n, member) in members.iter().enumerate() {
        let mut client = t.connect(member, n).await?;
        let gid = gid.clone();
        tasks.spawn(async move {
            for i in 0..per_sender {
                client.send(json!({"type":"send","client_msg_id":format!("c{i}"),"group_id":gid,"content":format!("{n}-{i}")})).await?;
            }
            let mut seqs = Vec::new();
            while seqs.len() < per_sender {
                let frame = client.next().await?;
                anyhow::ensure!(frame["type"] != "error", "send refused: {frame}");
                if frame["type"] == "ack" {
                    seqs.push(frame["seq_id"].as_i64().unwrap_or(-1));
                }
            }
            anyhow::Ok(seqs)
        });
    }
    let mut seqs = BTreeSet::new();
    while let Some(result) = tasks.join_next().await {
        for s in result?? {
            assert!(seqs.insert(s), "seq {s} given twice");
        }
    }
    let all = t.pull_all(&owner, &format!("g{gid}")).await?;
    let stored: Vec<i64> = all.iter().filter_map(|m| m["seq_id"].as_i64()).collect();
    assert_eq!(
        stored,
        (1..=stored.len() as i64).collect::<Vec<_>>(),
        "gap-free from 1"
    );
    assert_eq!(seqs.len(), 4 * per_sender);
    assert!(seqs.iter().all(|s| stored.contains(s)));
    Ok(())
}

/// `POST /messages` and WebSocket sends of one conversation, all at once:
/// a member who only listens gets every message, in seq order, gap-free
/// (REST sends join the same ordered send path as the socket's).
pub async fn rest_and_socket_sends_arrive_in_seq_order(t: &Target) -> Result<()> {
    let listener = t.user(&unique("listener")).await?;
    let mut members = Vec::new();
    for i in 0..4 {
        members.push(t.user(&unique(&format!("s{i}_"))).await?);
    }
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let (_, group) = t
        .post(
            &listener,
            "/groups",
            json!({"name":"order","member_ids":ids}),
        )
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    let mut ear = t.connect(&listener, 1).await?;
    // Under the default per-user send rate (20/s).
    let per_sender = 15;
    let mut tasks = tokio::task::JoinSet::new();
    for (n, member) in members.into_iter().enumerate() {
        let rest = t.rest.clone();
        let mut socket = if n % 2 == 0 {
            Some(t.connect(&member, 0).await?)
        } else {
            None
        };
        let gid = gid.clone();
        tasks.spawn(async move {
            let sends = (0..per_sender).map(|i| {
                json!({"client_msg_id":format!("o{i}"),"group_id":gid,"content":format!("{n}-{i}")})
            });
            match socket.as_mut() {
                Some(socket) => {
                    for mut send in sends {
                        send["type"] = json!("send");
                        socket.send(send).await?;
                    }
                    for _ in 0..per_sender {
                        socket.next_of("ack").await?;
                    }
                }
                None => {
                    let posts = sends.map(|send| rest.send(&member, send));
                    for (status, body) in futures::future::try_join_all(posts).await? {
                        anyhow::ensure!(status == 200, "REST send refused: {status} {body}");
                    }
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let mut seqs = Vec::new();
    while seqs.len() < 4 * per_sender {
        let message = ear.next_of("message").await?;
        seqs.push(message["seq_id"].as_i64().unwrap_or(-1));
    }
    // The group's creation notice may hold seq 1.
    let first = seqs[0];
    let expected: Vec<i64> = (first..first + seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "pushed in seq order, gap-free");
    Ok(())
}

/// A group at the harnesses' room threshold (4 members or more): members
/// on either gateway get its messages through the group rooms; a removed
/// member stops receiving at once and one who joins while connected starts
/// at once.
pub async fn group_rooms_follow_membership_live(t: &Target) -> Result<()> {
    let owner = t.user(&unique("owner")).await?;
    let kicked = t.user(&unique("kicked")).await?;
    let stays = t.user(&unique("stays")).await?;
    let third = t.user(&unique("third")).await?;
    let newcomer = t.user(&unique("newcomer")).await?;
    let (_, group) = t
        .post(
            &owner,
            "/groups",
            json!({"name":"rooms","member_ids":[kicked.id, stays.id, third.id]}),
        )
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    let mut o = t.connect(&owner, 0).await?;
    let mut k = t.connect(&kicked, 1).await?;
    let mut s = t.connect(&stays, 0).await?;
    let mut n = t.connect(&newcomer, 1).await?;
    let say = async |o: &mut Client, id: &str, content: &str| -> Result<()> {
        o.send(json!({"type":"send","client_msg_id":id,"group_id":gid,"content":content}))
            .await?;
        o.next_of("ack").await?;
        Ok(())
    };
    say(&mut o, "r1", "one").await?;
    assert_eq!(next_message(&mut k, &gid).await?["content"], "one");
    assert_eq!(next_message(&mut s, &gid).await?["content"], "one");

    let (status, _) = t
        .delete(&owner, &format!("/groups/{gid}/members/{}", kicked.id))
        .await?;
    anyhow::ensure!(status < 300, "remove member: {status}");
    say(&mut o, "r2", "two").await?;
    // Then a 1:1 message on the same gateway core: everything sent to the
    // group before it would have arrived first.
    o.send(json!({"type":"send","client_msg_id":"d1","to_user_id":kicked.id,"content":"direct"}))
        .await?;
    loop {
        let frame = k.next_of("message").await?;
        assert_ne!(
            frame["group_id"].as_str(),
            Some(gid.as_str()),
            "after removal: {frame}"
        );
        if frame["content"] == "direct" {
            break;
        }
    }
    assert_eq!(next_message(&mut s, &gid).await?["content"], "two");

    // New groups ask for approval; this one lets anyone in.
    let (status, _) = t
        .patch(
            &owner,
            &format!("/groups/{gid}"),
            json!({"join_policy":"open"}),
        )
        .await?;
    anyhow::ensure!(status == 200, "open the group: {status}");
    let (status, _) = t
        .post(&newcomer, &format!("/groups/{gid}/join"), json!({}))
        .await?;
    anyhow::ensure!(status < 300, "join: {status}");
    say(&mut o, "r3", "three").await?;
    assert_eq!(next_message(&mut n, &gid).await?["content"], "three");
    Ok(())
}

/// The next `message` of the group that is not a membership notice.
async fn next_message(client: &mut Client, gid: &str) -> Result<serde_json::Value> {
    loop {
        let frame = client.next_of("message").await?;
        if frame["group_id"].as_str() == Some(gid)
            && !frame["message_type"]
                .as_str()
                .unwrap_or_default()
                .starts_with("system")
        {
            return Ok(frame);
        }
    }
}

/// A 2,000-member group, every member connected, half on each gateway;
/// four members on both gateways send at once: every connection gets every
/// message it did not send exactly once, in seq order, gap-free.
pub async fn large_group_delivers_exactly_once_in_order(t: &Target) -> Result<()> {
    use futures::{StreamExt, TryStreamExt};
    const MEMBERS: usize = 2_000;
    const SENDERS: usize = 4;
    const PER_SENDER: usize = 5;
    let tag = unique("big");
    let users: Vec<crate::support::User> = futures::stream::iter(0..MEMBERS)
        .map(|i| {
            let name = format!("{tag}_{i}");
            async move { t.user(&name).await }
        })
        .buffered(16)
        .try_collect()
        .await?;
    let owner = &users[0];
    let ids: Vec<&str> = users[1..].iter().map(|u| u.id.as_str()).collect();
    let (_, group) = t
        .post(
            owner,
            "/groups",
            json!({"name":"big","member_ids":ids[..499]}),
        )
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    for chunk in ids[499..].chunks(500) {
        let (status, body) = t
            .post(
                owner,
                &format!("/groups/{gid}/members"),
                json!({"user_ids": chunk}),
            )
            .await?;
        anyhow::ensure!(status < 300, "invite: {status} {body}");
    }
    let mut clients: Vec<Client> = futures::stream::iter(users.iter().enumerate())
        .map(|(i, u)| t.connect(u, i % 2))
        .buffered(32)
        .try_collect()
        .await?;
    // Senders 0..4 alternate gateways (even on gateway 0, odd on 1).
    for (n, client) in clients.iter_mut().take(SENDERS).enumerate() {
        for i in 0..PER_SENDER {
            client
                .send(json!({"type":"send","client_msg_id":format!("b{n}-{i}"),"group_id":gid,"content":format!("{n}-{i}")}))
                .await?;
        }
    }
    let receivers = clients.iter_mut().enumerate().map(|(i, client)| {
        let gid = gid.clone();
        async move {
            let expected = SENDERS * PER_SENDER - if i < SENDERS { PER_SENDER } else { 0 };
            let mut seqs = Vec::new();
            let mut acks = 0;
            while seqs.len() < expected || (i < SENDERS && acks < PER_SENDER) {
                let frame = client.next().await?;
                match frame["type"].as_str() {
                    Some("ack") => acks += 1,
                    Some("message") if frame["group_id"].as_str() == Some(gid.as_str()) => {
                        seqs.push(frame["seq_id"].as_i64().unwrap_or(-1));
                    }
                    Some("error") => anyhow::bail!("member {i}: {frame}"),
                    _ => {}
                }
            }
            anyhow::ensure!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "member {i}: out of order or twice: {seqs:?}"
            );
            anyhow::Ok(seqs)
        }
    });
    let all = futures::future::try_join_all(receivers).await?;
    // Every message once: the union of what members got is gap-free.
    let mut union: Vec<i64> = all.iter().flatten().copied().collect();
    union.sort_unstable();
    union.dedup();
    let first = union.first().copied().unwrap_or(0);
    assert_eq!(
        union,
        (first..first + (SENDERS * PER_SENDER) as i64).collect::<Vec<_>>()
    );
    // Nothing more arrives (a duplicate would be behind what was read).
    for client in clients.iter_mut().take(8) {
        client.send(json!({"type":"ping"})).await?;
        assert_eq!(client.next().await?["type"], "pong");
    }
    Ok(())
}

pub async fn group_send_reaches_members_on_both_gateways(t: &Target) -> Result<()> {
    let owner = t.user(&unique("owner")).await?;
    let m1 = t.user(&unique("m1_")).await?;
    let m2 = t.user(&unique("m2_")).await?;
    let (_, group) = t
        .post(
            &owner,
            "/groups",
            json!({"name":"team","member_ids":[m1.id, m2.id]}),
        )
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    let mut o = t.connect(&owner, 0).await?;
    let mut c1 = t.connect(&m1, 0).await?;
    let mut c2 = t.connect(&m2, 1).await?;
    o.send(json!({"type":"send","client_msg_id":"g1","group_id":gid,"content":"hello team @all","mentions":["all"]})).await?;
    let ack = o.next_of("ack").await?;
    for client in [&mut c1, &mut c2] {
        let message = client.next_of("message").await?;
        assert_eq!(
            (message["message_id"].clone(), message["group_id"].as_str()),
            (ack["message_id"].clone(), Some(gid.as_str()))
        );
    }
    Ok(())
}

pub async fn refused_upgrades(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let ws = &t.ws[0];
    assert_eq!(upgrade_status(ws, None).await?, Some(401), "no token");
    assert_eq!(
        upgrade_status(&format!("{ws}?token=not.a.token"), None).await?,
        Some(401),
        "garbage"
    );
    let forged = token(&alice.id, "some-other-secret-some-other-secret!!", 3600);
    assert_eq!(
        upgrade_status(&format!("{ws}?token={forged}"), None).await?,
        Some(401),
        "forged"
    );
    let expired = token(&alice.id, &t.secret, -3600);
    assert_eq!(
        upgrade_status(&format!("{ws}?token={expired}"), None).await?,
        Some(401),
        "expired"
    );
    let revoked = t.login(&alice.name, "laptop").await?;
    let r = t
        .http
        .post(t.url("/auth/logout"))
        .bearer_auth(&revoked.token)
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    assert_eq!(
        upgrade_status(&format!("{ws}?token={}", revoked.token), None).await?,
        Some(401),
        "revoked"
    );
    assert_eq!(
        upgrade_status(
            &format!("{ws}?token={}", alice.token),
            Some("https://evil.example")
        )
        .await?,
        Some(403),
        "origin"
    );
    // The product's own web origin is allowed.
    assert_eq!(
        upgrade_status(&format!("{ws}?token={}", alice.token), Some(&t.base)).await?,
        None,
        "own origin"
    );
    Ok(())
}

/// The JWT negative matrix: each token is refused with 401 by the REST API
/// and by the gateway's upgrade, while the same shape, correct, is accepted.
pub async fn bad_tokens_are_refused_on_rest_and_upgrade(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let now = gochat_proto::auth::unix_secs() as i64;
    let claims = |sub: &str, exp: i64, iat: i64, extra: serde_json::Value| {
        let mut c = json!({"sub": sub, "exp": exp, "iat": iat, "jti": uuid::Uuid::new_v4().simple().to_string(), "did": "x"});
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        c
    };
    let sign = |claims: &serde_json::Value, secret: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap_or_default()
    };
    let good = claims(&alice.id, now + 600, now, json!({}));
    let valid = sign(&good, &t.secret);
    // The same claims, unsigned, under `"alg":"none"`.
    let payload = valid.split('.').nth(1).unwrap_or_default();
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let cases = [
        ("alg none", alg_none),
        (
            "wrong key",
            sign(&good, "another-secret-another-secret-another"),
        ),
        (
            "expired",
            sign(
                &claims(&alice.id, now - 600, now - 1200, json!({})),
                &t.secret,
            ),
        ),
        (
            "nbf in the future",
            sign(
                &claims(&alice.id, now + 7200, now, json!({"nbf": now + 3600})),
                &t.secret,
            ),
        ),
        (
            "iat in the future",
            sign(
                &claims(&alice.id, now + 7200, now + 3600, json!({})),
                &t.secret,
            ),
        ),
        (
            "sub 0 (system)",
            sign(&claims("0", now + 600, now, json!({})), &t.secret),
        ),
        (
            "sub negative",
            sign(&claims("-5", now + 600, now, json!({})), &t.secret),
        ),
        (
            "sub unknown",
            sign(&claims("987654321", now + 600, now, json!({})), &t.secret),
        ),
        (
            "oversized",
            sign(
                &claims(&alice.id, now + 600, now, json!({"pad": "x".repeat(4000)})),
                &t.secret,
            ),
        ),
        ("malformed", "a.b.c".to_owned()),
    ];
    let ws = &t.ws[0];
    for (what, token) in &cases {
        let r = t
            .http
            .get(t.url("/users/me"))
            .bearer_auth(token)
            .send()
            .await?;
        assert_eq!(r.status(), 401, "REST, {what}");
        let status = upgrade_status(&format!("{ws}?token={token}"), None).await?;
        assert_eq!(status, Some(401), "upgrade, {what}");
    }
    let r = t
        .http
        .get(t.url("/users/me"))
        .bearer_auth(&valid)
        .send()
        .await?;
    assert_eq!(r.status(), 200, "the valid token");
    assert_eq!(
        upgrade_status(&format!("{ws}?token={valid}"), None).await?,
        None
    );
    Ok(())
}

/// Logging a token out kicks and closes the connections it opened (on
/// either gateway); another device's connection stays.
pub async fn logout_closes_that_tokens_connections(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let laptop = t.login(&alice.name, "laptop").await?;
    let mut a = t.connect(&laptop, 1).await?;
    let mut other = t.connect(&alice, 0).await?;
    let r = t
        .http
        .post(t.url("/auth/logout"))
        .bearer_auth(&laptop.token)
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    let (frames, ended) = a.rest().await?;
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "kick" && f["reason"] == "logged out"),
        "{frames:?}"
    );
    assert_eq!(ended, Ended::Closed(1000));
    other.send(json!({"type":"ping"})).await?;
    other.next_of("pong").await?;
    Ok(())
}

fn token(sub: &str, secret: &str, ttl: i64) -> String {
    let now = gochat_proto::auth::unix_secs() as i64;
    let claims = gochat_proto::auth::Claims {
        sub: sub.to_owned(),
        exp: (now + ttl) as u64,
        iat: (now - 10) as u64,
        jti: uuid::Uuid::new_v4().simple().to_string(),
        did: "x".into(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

pub async fn bad_frames_leave_others_untouched(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let bob = t.user(&unique("bob")).await?;
    let mut bystander = t.connect(&bob, 0).await?;
    let mut a = t.connect(&alice, 0).await?;
    a.send_raw(Message::text("{not json")).await?;
    assert_eq!(a.next_of("error").await?["code"], "bad_request");
    a.send(json!({"type":"shout"})).await?;
    assert_eq!(a.next_of("error").await?["code"], "bad_request");
    a.send(json!({"type":"ping"})).await?;
    a.next_of("pong").await?;
    // Invalid UTF-8 in a text frame: 1007.
    let mut bad = t.connect(&alice, 0).await?;
    bad.write_raw(&[0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe]).await?;
    assert_eq!(bad.ended().await?, Ended::Closed(1007));
    // A frame over 64 KiB: 1009.
    let mut big = t.connect(&alice, 0).await?;
    big.send_raw(Message::text("x".repeat(70 * 1024))).await?;
    assert_eq!(big.ended().await?, Ended::Closed(1009));
    // A continuation with no message started: 1002.
    let mut abuse = t.connect(&alice, 0).await?;
    abuse.write_raw(&[0x80, 0x81, 1, 2, 3, 4, b'a' ^ 1]).await?;
    assert_eq!(abuse.ended().await?, Ended::Closed(1002));
    // The bystander never noticed.
    bystander.send(json!({"type":"send","client_msg_id":"ok","to_user_id":alice.id,"content":"still here"})).await?;
    assert_eq!(bystander.next_of("ack").await?["client_msg_id"], "ok");
    assert_eq!(a.next_of("message").await?["content"], "still here");
    Ok(())
}

pub async fn second_login_of_a_device_kicks_the_first(t: &Target) -> Result<()> {
    let name = unique("carol");
    let first = t.user_on(&name, "phone").await?;
    let mut old = t.connect_device(&first, 0, "phone").await?;
    // Give the registry a moment to record the first connection.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let second = t.login(&name, "phone").await?;
    let mut new = t.connect_device(&second, 1, "phone").await?;
    let kick = old.next_of("kick").await?;
    assert_eq!(kick["reason"], "signed in elsewhere");
    assert!(matches!(
        old.ended().await?,
        Ended::Closed(1000) | Ended::Dropped
    ));
    new.send(json!({"type":"ping"})).await?;
    new.next_of("pong").await?;
    Ok(())
}

pub(crate) async fn wait_for_presence(client: &mut Client, user: &str, online: bool) -> Result<()> {
    loop {
        let frame = client.next_of("presence").await?;
        if frame["user_id"] == user && frame["online"] == online {
            return Ok(());
        }
    }
}

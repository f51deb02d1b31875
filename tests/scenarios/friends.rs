//! Friends with consent, blocks and presence (PROTOCOL v1.1): requests wait
//! for the target, the frames reach both sides wherever they are connected,
//! and a block stops requests, invitations and presence between the two.

use std::time::Duration;

use anyhow::{Result, ensure};
use serde_json::{Value, json};

use super::{unique, wait_for_presence};
use crate::support::{Client, Target, User};

/// Friends learn when a user comes online (first connection) and goes offline
/// (last connection closed), wherever the connections are.
pub async fn presence_reaches_friends(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let bob = t.user(&unique("bob")).await?;
    t.befriend(&alice, &bob).await?;
    let mut b = t.connect(&bob, 1).await?;
    let a = t.connect(&alice, 0).await?;
    wait_for_presence(&mut b, &alice.id, true).await?;
    drop(a);
    wait_for_presence(&mut b, &alice.id, false).await?;
    Ok(())
}

/// Two users who only share a 1:1 chat see each other come and go, and
/// the profile of someone offline says when they were last seen.
pub async fn presence_reaches_conversation_peers_with_last_seen(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let bob = t.user(&unique("bob")).await?;
    let (status, _) = t
        .send(
            &alice,
            json!({"client_msg_id":"p1","to_user_id":bob.id,"content":"hi"}),
        )
        .await?;
    ensure!(status == 200, "send: {status}");
    let mut b = t.connect(&bob, 1).await?;
    let a = t.connect(&alice, 0).await?;
    wait_for_presence(&mut b, &alice.id, true).await?;
    let (_, online) = t.get(&bob, &format!("/users/{}", alice.id)).await?;
    assert_eq!(online["online"], true);
    assert!(online.get("last_seen").is_none(), "{online}");
    drop(a);
    wait_for_presence(&mut b, &alice.id, false).await?;
    let (_, offline) = t.get(&bob, &format!("/users/{}", alice.id)).await?;
    assert_eq!(offline["online"], false);
    assert!(offline["last_seen"].as_i64().unwrap_or(0) > 0, "{offline}");
    Ok(())
}

/// A request waits for the target's answer; only the target may answer;
/// accepting makes both friends and tells both.
pub async fn friend_requests_wait_for_consent(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let bob = t.user(&unique("bob")).await?;
    let carol = t.user(&unique("carol")).await?;
    let (_, me) = t.get(&bob, "/users/me").await?;
    assert_eq!(me["friend_policy"], "approve", "the default asks first");
    let mut b = t.connect(&bob, 1).await?;
    let mut a = t.connect(&alice, 0).await?;
    let (status, asked) = t
        .post(
            &alice,
            "/friends",
            json!({"user_id": bob.id, "message": "it's Alice"}),
        )
        .await?;
    assert_eq!(status, 202, "{asked}");
    assert_eq!(asked["status"], "requested");
    let rid = asked["request_id"].as_str().unwrap_or_default().to_owned();
    let frame = b.next_of("friend_request").await?;
    assert_eq!(
        frame,
        json!({"type":"friend_request","request_id":rid,"from_user_id":alice.id,"message":"it's Alice"})
    );
    // Not friends yet, and asking again keeps the one request.
    assert_eq!(friend_ids(t, &alice).await?, Vec::<String>::new());
    let (status, again) = t
        .post(&alice, "/friends", json!({"user_id": bob.id}))
        .await?;
    assert_eq!((status, &again["request_id"]), (202, &json!(rid)));
    let (_, mine) = t.get(&alice, "/friend-requests").await?;
    assert_eq!(mine["incoming"], json!([]));
    assert_eq!(mine["outgoing"].as_array().map(Vec::len), Some(1));
    let (_, theirs) = t.get(&bob, "/friend-requests").await?;
    let incoming = &theirs["incoming"][0];
    assert_eq!(
        (
            &incoming["request_id"],
            &incoming["from_user_id"],
            &incoming["to_user_id"],
            &incoming["message"]
        ),
        (
            &json!(rid),
            &json!(alice.id),
            &json!(bob.id),
            &json!("it's Alice")
        )
    );
    assert!(incoming["created_at"].as_i64().unwrap_or(0) > 0);
    // Only the target answers: to anyone else the request does not exist.
    for who in [&alice, &carol] {
        let (status, _) = t
            .post(who, &format!("/friend-requests/{rid}/accept"), Value::Null)
            .await?;
        assert_eq!(status, 404);
        let (status, _) = t
            .post(who, &format!("/friend-requests/{rid}/reject"), Value::Null)
            .await?;
        assert_eq!(status, 404);
    }
    let (status, body) = t
        .post(&bob, &format!("/friend-requests/{rid}/accept"), Value::Null)
        .await?;
    assert_eq!((status, body), (200, json!({"status":"friends"})));
    assert_eq!(added(&mut a).await?, bob.id);
    assert_eq!(added(&mut b).await?, alice.id);
    assert_eq!(friend_ids(t, &alice).await?, vec![bob.id.clone()]);
    assert_eq!(friend_ids(t, &bob).await?, vec![alice.id.clone()]);
    let (_, left) = t.get(&bob, "/friend-requests").await?;
    assert_eq!(left, json!({"incoming":[],"outgoing":[]}));

    // A request the other way is a yes: Carol asks Bob, Bob asks Carol.
    let (status, _) = t
        .post(&carol, "/friends", json!({"user_id": bob.id}))
        .await?;
    assert_eq!(status, 202);
    let (status, body) = t
        .post(&bob, "/friends", json!({"user_id": carol.id}))
        .await?;
    assert_eq!((status, body), (201, json!({"status":"friends"})));
    // A rejected request is gone, and the sender is not told.
    let dave = t.user(&unique("dave")).await?;
    let (_, asked) = t
        .post(&dave, "/friends", json!({"user_id": carol.id}))
        .await?;
    let rid = asked["request_id"].as_str().unwrap_or_default();
    let (status, _) = t
        .post(
            &carol,
            &format!("/friend-requests/{rid}/reject"),
            Value::Null,
        )
        .await?;
    assert_eq!(status, 204);
    let (_, left) = t.get(&dave, "/friend-requests").await?;
    assert_eq!(left, json!({"incoming":[],"outgoing":[]}));
    assert_eq!(friend_ids(t, &dave).await?, Vec::<String>::new());
    Ok(())
}

/// `open` befriends at once, `closed` refuses, and the policy is the
/// caller's own to read and set.
pub async fn friend_policy_decides_who_may_ask(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let bob = t.user(&unique("bob")).await?;
    let (status, me) = t
        .patch(&bob, "/users/me", json!({"friend_policy":"open"}))
        .await?;
    assert_eq!((status, &me["friend_policy"]), (200, &json!("open")));
    let (_, seen) = t.get(&alice, &format!("/users/{}", bob.id)).await?;
    assert!(seen.get("friend_policy").is_none(), "{seen}");
    let (status, body) = t
        .post(&alice, "/friends", json!({"user_id": bob.id}))
        .await?;
    assert_eq!((status, body), (201, json!({"status":"friends"})));
    let carol = t.user(&unique("carol")).await?;
    t.patch(&bob, "/users/me", json!({"friend_policy":"closed"}))
        .await?;
    let (status, body) = t
        .post(&carol, "/friends", json!({"user_id": bob.id}))
        .await?;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
    let (status, _) = t
        .patch(&bob, "/users/me", json!({"friend_policy":"anyone"}))
        .await?;
    assert_eq!(status, 400);
    // Even `closed` gives way to the user's own earlier request.
    t.patch(&carol, "/users/me", json!({"friend_policy":"approve"}))
        .await?;
    let (status, _) = t
        .post(&bob, "/friends", json!({"user_id": carol.id}))
        .await?;
    assert_eq!(status, 202);
    let (status, _) = t
        .post(&carol, "/friends", json!({"user_id": bob.id}))
        .await?;
    assert_eq!(status, 201);
    Ok(())
}

/// A block either way refuses requests, drops the pending ones, refuses
/// the blocked user's group invitations and hides presence both ways.
pub async fn blocks_stop_requests_invitations_and_presence(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let bob = t.user(&unique("bob")).await?;
    let (status, _) = t
        .post(&alice, "/friends", json!({"user_id": bob.id}))
        .await?;
    assert_eq!(status, 202);
    t.send(
        &alice,
        json!({"client_msg_id":"b1","to_user_id":bob.id,"content":"hi"}),
    )
    .await?;
    let (status, _) = t
        .post(&bob, "/blocks", json!({"user_id": alice.id}))
        .await?;
    assert_eq!(status, 201);
    let (_, left) = t.get(&bob, "/friend-requests").await?;
    assert_eq!(left, json!({"incoming":[],"outgoing":[]}));
    for (from, to) in [(&alice, &bob), (&bob, &alice)] {
        let (status, _) = t.post(from, "/friends", json!({"user_id": to.id})).await?;
        assert_eq!(status, 403, "a block in either direction refuses");
    }
    // Alice may not bring Bob into a group, new or existing.
    let (status, _) = t
        .post(
            &alice,
            "/groups",
            json!({"name":"trap","member_ids":[bob.id]}),
        )
        .await?;
    assert_eq!(status, 403);
    let (_, group) = t
        .post(&alice, "/groups", json!({"name":"mine","member_ids":[]}))
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default();
    let (status, _) = t
        .post(
            &alice,
            &format!("/groups/{gid}/members"),
            json!({"user_ids":[bob.id]}),
        )
        .await?;
    assert_eq!(status, 403);
    // Presence: neither sees the other, live or in the profile.
    let mut b = t.connect(&bob, 1).await?;
    let _a = t.connect(&alice, 0).await?;
    for (viewer, seen) in [(&bob, &alice), (&alice, &bob)] {
        let (_, profile) = t.get(viewer, &format!("/users/{}", seen.id)).await?;
        assert!(profile.get("online").is_none(), "{profile}");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_no_presence_of(&mut b, &alice).await?;
    // Lifted, requests work again.
    t.delete(&bob, &format!("/blocks/{}", alice.id)).await?;
    let (status, _) = t
        .post(&alice, "/friends", json!({"user_id": bob.id}))
        .await?;
    assert_eq!(status, 202);
    Ok(())
}

async fn friend_ids(t: &Target, user: &User) -> Result<Vec<String>> {
    let (_, list) = t.get(user, "/friends").await?;
    Ok(list["friends"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["user_id"].as_str().map(str::to_owned))
        .collect())
}

async fn added(client: &mut Client) -> Result<String> {
    let frame = client.next_of("friend_added").await?;
    Ok(frame["user_id"].as_str().unwrap_or_default().to_owned())
}

/// Reads what has arrived up to a pong: no presence of `whom` among it.
async fn assert_no_presence_of(client: &mut Client, whom: &User) -> Result<()> {
    client.send(json!({"type":"ping"})).await?;
    loop {
        let frame = client.next().await?;
        ensure!(
            !(frame["type"] == "presence" && frame["user_id"] == whom.id.as_str()),
            "presence crossed a block: {frame}"
        );
        if frame["type"] == "pong" {
            return Ok(());
        }
    }
}

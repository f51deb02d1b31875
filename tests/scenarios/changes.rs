//! Edits, recalls and delete-for-me (PROTOCOL.md v1.1), over the WebSocket
//! and REST, on standalone and across the cluster's two gateways.

use anyhow::Result;
use serde_json::{Value, json};

use super::unique;
use crate::support::Target;

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

pub async fn edit_recall_and_delete_for_me(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let bob = t.user(&unique("bob")).await?;
    let mut a = t.connect(&alice, 0).await?;
    let mut b = t.connect(&bob, 1).await?;
    a.send(json!({"type":"send","client_msg_id":"m1","to_user_id":bob.id,"content":"helo"}))
        .await?;
    let sent = a.next_of("ack").await?;
    let (cid, mid) = (text(&sent, "conversation_id"), text(&sent, "message_id"));
    b.next_of("message").await?;

    // An edit over the WebSocket: acked, stored as the next entry, pushed.
    let edit = json!({"type":"edit","client_msg_id":"e1","conversation_id":cid,"message_id":mid,"content":"hello"});
    a.send(edit.clone()).await?;
    let edited = a.next_of("ack").await?;
    assert_eq!(edited["seq_id"], 2);
    let event = b.next_of("message").await?;
    assert_eq!(
        (text(&event, "message_type"), text(&event, "content")),
        ("edit".into(), "hello".into())
    );
    assert_eq!(
        event["metadata"]["target_message_id"].as_str(),
        Some(mid.as_str())
    );
    assert_eq!(event["metadata"]["target_seq_id"], 1);
    // A resent edit is the same edit.
    a.send(edit).await?;
    assert_eq!(a.next_of("ack").await?, edited);

    // Over REST: only the sender may edit; the answer is the stored entry.
    let path = format!("/conversations/{cid}/messages/{mid}");
    let (status, body) = t.patch(&bob, &path, json!({"content":"mine now"})).await?;
    assert_eq!(
        (status, text(&body["error"], "code")),
        (403, "forbidden".into())
    );
    let (status, entry) = t.patch(&alice, &path, json!({"content":"hello!"})).await?;
    assert_eq!((status, text(&entry, "message_type")), (200, "edit".into()));
    assert_eq!(entry["seq_id"], 3);
    assert_eq!(b.next_of("message").await?["seq_id"], 3);
    let history = t.pull_all(&bob, &cid).await?;
    assert_eq!(
        (
            text(&history[0], "content"),
            history[0]["edited_at"].is_i64()
        ),
        ("hello!".into(), true)
    );
    assert_eq!(history.len(), 3, "the edits stay in history");

    // A recall empties the target for everyone.
    let (status, recall) = t.post(&alice, &format!("{path}/recall"), json!({})).await?;
    assert_eq!(
        (status, text(&recall, "message_type")),
        (200, "recall".into())
    );
    assert_eq!(b.next_of("message").await?["message_type"], "recall");
    let history = t.pull_all(&bob, &cid).await?;
    assert_eq!(
        (
            &history[0]["recalled"],
            text(&history[0], "content"),
            &history[0]["metadata"]
        ),
        (&json!(true), String::new(), &json!({}))
    );
    // Nothing changes a recalled message, an edit entry or a message that is not there.
    let (status, _) = t.patch(&alice, &path, json!({"content":"again"})).await?;
    assert_eq!(status, 403, "edit after recall");
    let (status, _) = t.post(&alice, &format!("{path}/recall"), json!({})).await?;
    assert_eq!(status, 403, "second recall");
    let edit_entry = text(&edited, "message_id");
    let (status, _) = t
        .post(
            &alice,
            &format!("/conversations/{cid}/messages/{edit_entry}/recall"),
            json!({}),
        )
        .await?;
    assert_eq!(status, 403, "recall of an edit entry");
    let (status, _) = t
        .patch(
            &alice,
            &format!("/conversations/{cid}/messages/12345"),
            json!({"content":"x"}),
        )
        .await?;
    assert_eq!(status, 404, "unknown message");

    // Delete-for-me: a tombstone in the caller's history only.
    a.send(json!({"type":"send","client_msg_id":"m2","to_user_id":bob.id,"content":"keep"}))
        .await?;
    let kept = a.next_of("ack").await?;
    let kept_path = format!(
        "/conversations/{cid}/messages/{}",
        text(&kept, "message_id")
    );
    let (status, _) = t.delete(&bob, &kept_path).await?;
    assert_eq!(status, 204);
    let mine = t.pull_all(&bob, &cid).await?;
    let tombstone = &mine[4];
    assert_eq!(
        (
            &tombstone["deleted"],
            &tombstone["seq_id"],
            tombstone.get("content")
        ),
        (&json!(true), &kept["seq_id"], None)
    );
    let theirs = t.pull_all(&alice, &cid).await?;
    assert_eq!(text(&theirs[4], "content"), "keep");
    // Edits and recalls are not unread messages.
    let (_, list) = t.get(&bob, "/conversations").await?;
    let entry = list["conversations"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["conversation_id"] == cid.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["unread"], 2, "{entry}");
    Ok(())
}

pub async fn group_managers_recall_lower_roles(t: &Target) -> Result<()> {
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
    let gid = text(&group, "group_id");
    let send =
        |id: &str, content: &str| json!({"client_msg_id":id,"group_id":gid,"content":content});
    let (_, from_m1) = t.send(&m1, send("a", "from m1")).await?;
    let (_, from_owner) = t.send(&owner, send("b", "from the owner")).await?;
    let recall = |m: &Value| {
        format!(
            "/conversations/{}/messages/{}/recall",
            text(m, "conversation_id"),
            text(m, "message_id")
        )
    };
    let (status, _) = t.post(&m2, &recall(&from_m1), json!({})).await?;
    assert_eq!(status, 403, "a member recalls another member's message");
    let (status, _) = t.post(&m1, &recall(&from_owner), json!({})).await?;
    assert_eq!(status, 403, "a member recalls the owner's message");
    let (status, _) = t
        .patch(
            &owner,
            &format!(
                "/conversations/{}/messages/{}",
                text(&from_m1, "conversation_id"),
                text(&from_m1, "message_id")
            ),
            json!({"content":"edited by the owner"}),
        )
        .await?;
    assert_eq!(status, 403, "nobody edits another's message");
    // An admin recalls members' messages, not the owner's or another admin's.
    let (status, _) = t
        .put(
            &owner,
            &format!("/groups/{gid}/members/{}/role", m2.id),
            json!({"role":"admin"}),
        )
        .await?;
    assert_eq!(status, 200);
    let (status, _) = t.post(&m2, &recall(&from_owner), json!({})).await?;
    assert_eq!(status, 403, "an admin recalls the owner's message");
    let (_, from_m1_again) = t.send(&m1, send("c", "m1 again")).await?;
    let (status, entry) = t.post(&m2, &recall(&from_m1_again), json!({})).await?;
    assert_eq!((status, text(&entry, "from_user_id")), (200, m2.id.clone()));
    let (_, from_admin) = t.send(&m2, send("d", "from the admin")).await?;
    let (status, _) = t
        .put(
            &owner,
            &format!("/groups/{gid}/members/{}/role", m1.id),
            json!({"role":"admin"}),
        )
        .await?;
    assert_eq!(status, 200);
    let (status, _) = t.post(&m1, &recall(&from_admin), json!({})).await?;
    assert_eq!(status, 403, "an admin recalls another admin's message");
    let (status, entry) = t.post(&owner, &recall(&from_m1), json!({})).await?;
    assert_eq!(
        (status, text(&entry, "from_user_id")),
        (200, owner.id.clone())
    );
    Ok(())
}

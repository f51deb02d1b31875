//! Group administration (PROTOCOL v1.1): roles, mutes, hand-over,
//! dissolution and join requests, each refused to the wrong role and
//! recorded in the group as a `system_group` message naming the event.

use anyhow::{Result, ensure};
use serde_json::{Value, json};

use super::unique;
use crate::support::{Target, User};

/// Powers by role, mutes, mute-all, the hand-over and dissolution.
pub async fn group_roles_mutes_transfer_and_dissolve(t: &Target) -> Result<()> {
    let owner = t.user(&unique("owner")).await?;
    let ann = t.user(&unique("ann")).await?;
    let bob = t.user(&unique("bob")).await?;
    let (_, group) = t
        .post(
            &owner,
            "/groups",
            json!({"name":"admins","member_ids":[ann.id, bob.id]}),
        )
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    let cid = format!("g{gid}");
    assert_eq!(
        (
            &group["join_policy"],
            &group["mute_all"],
            &group["dissolved"]
        ),
        (&json!("approval"), &json!(false), &json!(false))
    );
    let role = |user: &str| format!("/groups/{gid}/members/{user}/role");
    let mute = |user: &str| format!("/groups/{gid}/members/{user}/mute");
    let later = gochat_proto::ids::now_millis() + 3_600_000;

    // Only the owner gives roles.
    let (status, _) = t.put(&ann, &role(&bob.id), json!({"role":"admin"})).await?;
    assert_eq!(status, 403);
    let (status, body) = t
        .put(&owner, &role(&ann.id), json!({"role":"admin"}))
        .await?;
    assert_eq!((status, &body["role"]), (200, &json!("admin")));
    let (status, _) = t
        .put(&owner, &role(&owner.id), json!({"role":"member"}))
        .await?;
    assert_eq!(status, 403, "the owner's role does not change");
    let (status, _) = t
        .put(&owner, &role(&bob.id), json!({"role":"owner"}))
        .await?;
    assert_eq!(status, 400);

    // An admin mutes a member; a member's send and edit are refused.
    let (_, sent) = say(t, &bob, &gid, "b1").await?;
    let (status, _) = t
        .post(&bob, &mute(&ann.id), json!({"until": later}))
        .await?;
    assert_eq!(status, 403, "a member mutes nobody");
    let (status, _) = t
        .post(&ann, &mute(&owner.id), json!({"until": later}))
        .await?;
    assert_eq!(status, 403, "powers act on lower roles only");
    let (status, _) = t
        .post(&ann, &mute(&bob.id), json!({"until": 1_000}))
        .await?;
    assert_eq!(status, 400, "until is in the past");
    let (status, muted) = t
        .post(&ann, &mute(&bob.id), json!({"until": later}))
        .await?;
    assert_eq!((status, &muted["muted_until"]), (200, &json!(later)));
    assert_eq!(say(t, &bob, &gid, "b2").await?.0, 403);
    let edit = format!(
        "/conversations/{cid}/messages/{}",
        sent["message_id"].as_str().unwrap_or_default()
    );
    let (status, _) = t.patch(&bob, &edit, json!({"content":"changed"})).await?;
    assert_eq!(status, 403, "a mute blocks edits");
    let (status, _) = t.delete(&ann, &mute(&bob.id)).await?;
    assert_eq!(status, 204);
    // Lifting it again changes nothing, and says nothing (the event list
    // below has one member_unmuted).
    let (status, _) = t.delete(&ann, &mute(&bob.id)).await?;
    assert_eq!(status, 204);
    assert_eq!(say(t, &bob, &gid, "b3").await?.0, 200);

    // Mute-all: only the owner and admins speak.
    let (status, body) = t
        .patch(
            &ann,
            &format!("/groups/{gid}"),
            json!({"mute_all": true, "announcement": "quiet please"}),
        )
        .await?;
    assert_eq!((status, &body["mute_all"]), (200, &json!(true)));
    assert_eq!(say(t, &bob, &gid, "b4").await?.0, 403);
    assert_eq!(say(t, &ann, &gid, "a1").await?.0, 200);
    t.patch(
        &owner,
        &format!("/groups/{gid}"),
        json!({"mute_all": false}),
    )
    .await?;
    assert_eq!(say(t, &bob, &gid, "b5").await?.0, 200);

    // The hand-over: Ann owns the group, the old owner is an admin.
    let transfer = format!("/groups/{gid}/transfer");
    let (status, _) = t.post(&ann, &transfer, json!({"user_id": bob.id})).await?;
    assert_eq!(status, 403, "only the owner hands over");
    let (status, body) = t
        .post(&owner, &transfer, json!({"user_id": ann.id}))
        .await?;
    assert_eq!((status, &body["owner_id"]), (200, &json!(ann.id)));
    let (_, members) = t.get(&bob, &format!("/groups/{gid}/members")).await?;
    let role_of = |user: &User| {
        members["members"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["user_id"] == user.id.as_str())
            .map(|m| m["role"].clone())
    };
    assert_eq!(role_of(&ann), Some(json!("owner")));
    assert_eq!(role_of(&owner), Some(json!("admin")));
    let (status, _) = t.delete(&owner, &format!("/groups/{gid}")).await?;
    assert_eq!(status, 403, "only the owner dissolves");

    // Dissolution: sends refused, history kept, gone from "my groups".
    let (status, _) = t.delete(&ann, &format!("/groups/{gid}")).await?;
    assert_eq!(status, 204);
    assert_eq!(say(t, &ann, &gid, "a2").await?.0, 403);
    let (status, _) = t
        .delete(&ann, &format!("/groups/{gid}/members/{}", bob.id))
        .await?;
    assert_eq!(status, 403, "no kicks in a dissolved group");
    let (_, after) = t.get(&bob, &format!("/groups/{gid}")).await?;
    assert_eq!(after["dissolved"], true);
    let (_, mine) = t.get(&bob, "/groups").await?;
    ensure!(
        !mine["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|g| g["group_id"] == gid.as_str()),
        "a dissolved group is not among mine: {mine}"
    );
    let (_, list) = t.get(&bob, "/conversations").await?;
    ensure!(
        list["conversations"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["conversation_id"] == cid.as_str()),
        "its conversation stays: {list}"
    );
    let history = t.pull_all(&bob, &cid).await?;
    let events: Vec<&str> = history
        .iter()
        .filter_map(|m| m["metadata"]["event"].as_str())
        .collect();
    assert_eq!(
        events,
        [
            "role_changed",
            "member_muted",
            "member_unmuted",
            "announcement_changed",
            "mute_all_changed",
            "mute_all_changed",
            "owner_transferred",
            "group_dissolved"
        ]
    );
    let last = history.last().cloned().unwrap_or(Value::Null);
    assert_eq!(last["message_type"], "system_group");
    assert_eq!(last["metadata"]["event"], "group_dissolved");
    let muted_event = history
        .iter()
        .find(|m| m["metadata"]["event"] == "member_muted")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(muted_event["metadata"]["user_id"], json!(bob.id));
    Ok(())
}

/// Join policies: approval (the default) files a request the managers
/// answer, invite-only refuses, open lets in.
pub async fn group_join_policies_and_requests(t: &Target) -> Result<()> {
    let owner = t.user(&unique("owner")).await?;
    let member = t.user(&unique("member")).await?;
    let asker = t.user(&unique("asker")).await?;
    let other = t.user(&unique("other")).await?;
    let (_, group) = t
        .post(
            &owner,
            "/groups",
            json!({"name":"club","member_ids":[member.id]}),
        )
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    let join = format!("/groups/{gid}/join");
    let requests = format!("/groups/{gid}/join-requests");
    let (status, asked) = t.post(&asker, &join, json!({})).await?;
    assert_eq!(status, 202, "{asked}");
    let rid = asked["request_id"].as_str().unwrap_or_default().to_owned();
    let (status, again) = t.post(&asker, &join, json!({})).await?;
    assert_eq!((status, &again["request_id"]), (202, &json!(rid)));
    assert_eq!(say(t, &asker, &gid, "x1").await?.0, 403, "not in yet");
    let (status, _) = t.get(&member, &requests).await?;
    assert_eq!(status, 403, "members do not answer requests");
    let (status, listed) = t.get(&owner, &requests).await?;
    assert_eq!(status, 200);
    assert_eq!(listed["requests"][0]["request_id"], json!(rid));
    assert_eq!(listed["requests"][0]["user_id"], json!(asker.id));
    let (status, _) = t
        .post(&member, &format!("{requests}/{rid}/accept"), json!({}))
        .await?;
    assert_eq!(status, 403);
    let (status, body) = t
        .post(&owner, &format!("{requests}/{rid}/accept"), json!({}))
        .await?;
    assert_eq!((status, &body["member_count"]), (200, &json!(3)));
    assert_eq!(say(t, &asker, &gid, "x2").await?.0, 200);
    let (_, listed) = t.get(&owner, &requests).await?;
    assert_eq!(listed, json!({"requests": []}));

    let (_, asked) = t.post(&other, &join, json!({})).await?;
    let rid = asked["request_id"].as_str().unwrap_or_default();
    let (status, _) = t
        .post(&owner, &format!("{requests}/{rid}/reject"), json!({}))
        .await?;
    assert_eq!(status, 204);
    let (status, _) = t
        .post(&owner, &format!("{requests}/{rid}/accept"), json!({}))
        .await?;
    assert_eq!(status, 404, "a rejected request is gone");
    let (_, listed) = t.get(&owner, &requests).await?;
    assert_eq!(listed, json!({"requests": []}));

    let policy = |p: &str| json!({ "join_policy": p });
    let (status, _) = t
        .patch(&owner, &format!("/groups/{gid}"), policy("invite_only"))
        .await?;
    assert_eq!(status, 200);
    assert_eq!(t.post(&other, &join, json!({})).await?.0, 403);
    t.patch(&owner, &format!("/groups/{gid}"), policy("open"))
        .await?;
    let (status, body) = t.post(&other, &join, json!({})).await?;
    assert_eq!((status, &body["member_count"]), (200, &json!(4)));
    let (status, _) = t
        .patch(&owner, &format!("/groups/{gid}"), policy("anyone"))
        .await?;
    assert_eq!(status, 400);
    let history = t.pull_all(&owner, &format!("g{gid}")).await?;
    let joined: Vec<&Value> = history
        .iter()
        .filter(|m| m["metadata"]["event"] == "member_joined")
        .map(|m| &m["metadata"]["user_id"])
        .collect();
    assert_eq!(joined, [&json!(asker.id), &json!(other.id)]);
    Ok(())
}

/// A REST send into the group: the status and the answer.
async fn say(t: &Target, user: &User, gid: &str, cmid: &str) -> Result<(u16, Value)> {
    t.send(
        user,
        json!({"client_msg_id": cmid, "group_id": gid, "content": cmid}),
    )
    .await
}

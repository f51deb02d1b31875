//! Message search (PROTOCOL v1.1): every word, case-insensitively, CJK by
//! character pairs, only where the caller may read, following edits,
//! recalls and deletes-for-me.

use anyhow::Result;
use serde_json::json;

use super::unique;
use crate::support::{Target, User};

pub async fn search_finds_only_what_the_caller_may_read(t: &Target) -> Result<()> {
    let alice = t.user(&unique("alice")).await?;
    let bob = t.user(&unique("bob")).await?;
    let carol = t.user(&unique("carol")).await?;
    let dave = t.user(&unique("dave")).await?;
    let to = |user: &User, cmid: &str, content: &str| json!({"client_msg_id": cmid, "to_user_id": user.id, "content": content});
    let (_, lunch) = t
        .send(&alice, to(&bob, "s1", "Lunch at the Noodle bar?"))
        .await?;
    t.send(&bob, to(&alice, "s2", "明天见, noodles!")).await?;
    let (_, group) = t
        .post(
            &alice,
            "/groups",
            json!({"name":"food","member_ids":[carol.id]}),
        )
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    let (_, party) = t
        .send(
            &alice,
            json!({"client_msg_id":"s3","group_id":gid,"content":"noodle party tonight"}),
        )
        .await?;
    t.send(&dave, to(&carol, "s4", "a noodle secret")).await?;

    assert_eq!(
        found(t, &alice, "q=noodle").await?,
        ["noodle party tonight", "Lunch at the Noodle bar?"],
        "newest first, only where Alice reads"
    );
    assert_eq!(
        found(t, &alice, "q=NOODLE%20bar").await?,
        ["Lunch at the Noodle bar?"]
    );
    assert_eq!(
        found(t, &alice, "q=%E6%98%8E%E5%A4%A9").await?,
        ["明天见, noodles!"]
    );
    assert_eq!(
        found(t, &bob, "q=noodle").await?,
        ["Lunch at the Noodle bar?"]
    );
    assert_eq!(
        found(t, &alice, &format!("q=noodle&conversation_id=g{gid}")).await?,
        ["noodle party tonight"]
    );
    assert_eq!(found(t, &alice, "q=noodle&limit=1").await?.len(), 1);
    let cid = lunch["conversation_id"].as_str().unwrap_or_default();
    let (status, _) = t
        .get(
            &dave,
            &format!("/search/messages?q=noodle&conversation_id={cid}"),
        )
        .await?;
    assert_eq!(status, 403, "someone else's conversation");
    for bad in ["q=", "q=%20!!", "q=noodle&limit=0", "q=noodle&limit=x"] {
        let (status, body) = t.get(&alice, &format!("/search/messages?{bad}")).await?;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("bad_request")),
            "{bad}"
        );
    }

    // An edit is found by its new words (the target, not the edit entry).
    let mid = lunch["message_id"].as_str().unwrap_or_default();
    let path = format!("/conversations/{cid}/messages/{mid}");
    t.patch(&alice, &path, json!({"content":"Dinner at the ramen bar?"}))
        .await?;
    assert_eq!(
        found(t, &alice, "q=ramen").await?,
        ["Dinner at the ramen bar?"]
    );
    let (_, hit) = t.get(&alice, "/search/messages?q=ramen").await?;
    assert_eq!(hit["messages"][0]["message_id"], json!(mid));
    assert_eq!(
        found(t, &alice, "q=noodle%20bar").await?,
        Vec::<String>::new()
    );
    // A recall takes a message out of every search.
    let party_id = party["message_id"].as_str().unwrap_or_default();
    t.post(
        &alice,
        &format!("/conversations/g{gid}/messages/{party_id}/recall"),
        json!({}),
    )
    .await?;
    assert_eq!(found(t, &carol, "q=party").await?, Vec::<String>::new());
    // Delete-for-me hides it from the one who deleted it only.
    t.delete(&bob, &path).await?;
    assert_eq!(found(t, &bob, "q=ramen").await?, Vec::<String>::new());
    assert_eq!(found(t, &alice, "q=ramen").await?.len(), 1);
    Ok(())
}

/// The contents of what `user` finds with `query` (a query string).
async fn found(t: &Target, user: &User, query: &str) -> Result<Vec<String>> {
    let path = format!("/search/messages?{query}");
    let (status, body) = t.get(user, &path).await?;
    anyhow::ensure!(status == 200, "{path}: {status} {body}");
    Ok(body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect())
}

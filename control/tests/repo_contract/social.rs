//! The contract of friends with consent, last seen and the presence
//! audience (PROTOCOL v1.1), on every backend.

use std::sync::Arc;

use anyhow::Result;
use gochat_control::repo::{Repo, StoreOutcome};
use gochat_proto::ids::{Id, single_conversation_id};

pub(crate) async fn friend_requests_and_presence_audience(repo: Arc<dyn Repo>) -> Result<()> {
    let mut ids = Vec::new();
    for name in ["fa", "fb", "fc", "fd", "fe", "ff"] {
        ids.push(repo.create_user(name, "h", "").await?.user_id);
    }
    let [a, b, c, d, e, f] = ids[..] else {
        anyhow::bail!("six users")
    };
    assert_eq!(
        repo.get_user(a).await?.friend_policy,
        0,
        "approve by default"
    );
    assert_eq!(repo.set_friend_policy(a, 2).await?.friend_policy, 2);
    // The cache (where there is one) must not serve the old policy.
    assert_eq!(repo.get_user(a).await?.friend_policy, 2);
    repo.set_last_seen(a, 1234).await?;
    assert_eq!(repo.get_user(a).await?.last_seen, 1234);

    let first = repo.request_friend(a, b, "hello").await?;
    let again = repo.request_friend(a, b, "changed my mind").await?;
    assert_eq!(again, first, "a pending request is kept as it was");
    assert_eq!((first.from_user_id, first.to_user_id), (a, b));
    assert_eq!(first.message, "hello");
    let other = repo.request_friend(c, b, "").await?;
    let of_b = repo.friend_requests(b).await?;
    assert_eq!(of_b, vec![first.clone(), other.clone()], "oldest first");
    assert_eq!(repo.friend_requests(a).await?, vec![first.clone()]);
    repo.delete_friend_request(other.request_id).await?;
    repo.delete_friend_request(other.request_id).await?;
    assert_eq!(repo.friend_requests(c).await?, vec![]);
    // Friendship clears the requests between the two, either way.
    repo.request_friend(b, a, "").await?;
    repo.add_friend(b, a).await?;
    assert_eq!(repo.friend_requests(a).await?, vec![]);
    // So does a block.
    repo.request_friend(d, c, "").await?;
    repo.add_block(c, d).await?;
    assert_eq!(repo.friend_requests(d).await?, vec![]);
    repo.remove_block(c, d).await?;

    // a's presence: friend b; 1:1 peer c; e and f share a's small group,
    // d shares a's large one; a block hides f.
    let cid = single_conversation_id(Id(a), Id(c));
    repo.store_message(&super::message_of(&cid, 1, a, c, "p-1"))
        .await?;
    repo.create_group(a, "small", &[a, e, f]).await?;
    let crowd = repo.create_group(b, "large", &[b, d]).await?;
    repo.add_members(crowd.group_id, &[a, c, e]).await?;
    repo.add_block(f, a).await?;
    assert_eq!(repo.presence_audience(a, 3).await?, vec![b, c, e]);
    assert_eq!(repo.presence_audience(a, 5).await?, vec![b, c, d, e]);
    repo.remove_block(f, a).await?;
    assert_eq!(repo.presence_audience(a, 3).await?, vec![b, c, e, f]);
    Ok(())
}

/// The search index follows stores, edits and recalls, on every backend
/// (terms compare byte for byte; short words, stop words and CJK pairs are
/// found on MySQL's FULLTEXT index as on FTS5).
pub(crate) async fn search_follows_changes(repo: Arc<dyn Repo>) -> Result<()> {
    let a = repo.create_user("sa", "h", "").await?.user_id;
    let b = repo.create_user("sb", "h", "").await?.user_id;
    let outsider = repo.create_user("sc", "h", "").await?.user_id;
    let cid = single_conversation_id(Id(a), Id(b));
    let mut ids = Vec::new();
    for (n, cmid, text) in [
        (1, "q1", "Café au lait"),
        (2, "q2", "cafe 明天见"),
        (3, "q3", "CAFÉ"),
        (4, "q4", "it is the 去 of a go"),
    ] {
        let mut m = super::message_of(&cid, n, a, b, cmid);
        m.content = text.to_owned();
        let StoreOutcome::Stored(m) = repo.store_message(&m).await? else {
            anyhow::bail!("stored")
        };
        ids.push(m.message_id);
    }
    let found = |user: i64, q: &'static str, only: Option<&'static str>| {
        let repo = repo.clone();
        async move {
            let hits = repo.search_messages(user, q, only, 10).await?;
            Ok::<Vec<i64>, anyhow::Error>(hits.iter().map(|m| m.message_id).collect())
        }
    };
    assert_eq!(found(a, "café", None).await?, vec![ids[2], ids[0]]);
    assert_eq!(found(b, "CAFE", None).await?, vec![ids[1]], "é is not e");
    assert_eq!(
        found(a, "明天", Some("g999")).await?,
        Vec::<i64>::new(),
        "another conversation"
    );
    let only_here = repo.search_messages(a, "明天", Some(&cid), 10).await?;
    assert_eq!(only_here.len(), 1);
    assert_eq!(found(a, "天见 cafe", None).await?, vec![ids[1]]);
    assert_eq!(
        found(outsider, "café", None).await?,
        Vec::<i64>::new(),
        "not in it"
    );
    assert_eq!(found(a, "", None).await?, Vec::<i64>::new());
    assert_eq!(found(b, "the A, go! 去", None).await?, vec![ids[3]]);
    assert_eq!(found(b, "the A, go! 去 x", None).await?, Vec::<i64>::new());
    // An edit re-indexes its target; a recall drops it.
    let mut edit = super::message_of(&cid, 5, a, b, "q5");
    edit.message_type = "edit".into();
    edit.content = "thé".into();
    edit.metadata_json = format!(r#"{{"target_message_id":"{}","target_seq_id":1}}"#, ids[0]);
    repo.store_message(&edit).await?;
    assert_eq!(found(a, "café", None).await?, vec![ids[2]]);
    assert_eq!(found(a, "thé", None).await?, vec![ids[0]]);
    let mut recall = super::message_of(&cid, 6, a, b, "q6");
    recall.message_type = "recall".into();
    recall.content = String::new();
    recall.metadata_json = format!(r#"{{"target_message_id":"{}","target_seq_id":3}}"#, ids[2]);
    repo.store_message(&recall).await?;
    assert_eq!(found(a, "café", None).await?, Vec::<i64>::new());
    // Delete-for-me hides a hit from that user only.
    repo.hide_message(b, ids[1]).await?;
    assert_eq!(found(b, "明天", None).await?, Vec::<i64>::new());
    assert_eq!(found(a, "明天", None).await?, vec![ids[1]]);
    Ok(())
}

/// Devices: registered, replaced by a new registration, listed, removed.
pub(crate) async fn devices_register_replace_remove(repo: Arc<dyn Repo>) -> Result<()> {
    let user = repo.create_user("dv", "h", "").await?.user_id;
    let device = |id: &str, platform: &str, token: &str| gochat_control::repo::Device {
        user_id: user,
        device_id: id.to_owned(),
        platform: platform.to_owned(),
        push_token: token.to_owned(),
        updated_at: 0,
    };
    repo.save_device(&device("phone", "apns", "t1")).await?;
    repo.save_device(&device("laptop", "webhook", "t2")).await?;
    repo.save_device(&device("phone", "fcm", "t3")).await?;
    let listed: Vec<(String, String, String)> = repo
        .list_devices(user)
        .await?
        .into_iter()
        .map(|d| (d.device_id, d.platform, d.push_token))
        .collect();
    let own = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        listed,
        vec![own("laptop", "webhook", "t2"), own("phone", "fcm", "t3")]
    );
    // The same token registered by someone else (the phone changed hands).
    let other = repo.create_user("dv2", "h", "").await?.user_id;
    repo.save_device(&gochat_control::repo::Device {
        user_id: other,
        ..device("shared", "webhook", "t2")
    })
    .await?;
    assert_eq!(repo.list_devices(user).await?.len(), 1, "t2 moved on");
    // Ids are compared byte for byte on every backend.
    repo.save_device(&device("Phone", "apns", "t4")).await?;
    assert_eq!(repo.list_devices(user).await?.len(), 2, "Phone and phone");
    assert!(repo.remove_device(user, "Phone").await?);
    assert!(repo.remove_device(user, "phone").await?);
    assert!(!repo.remove_device(user, "phone").await?);
    assert_eq!(repo.list_devices(user).await?.len(), 0);
    assert_eq!(repo.list_devices(other).await?.len(), 1);
    Ok(())
}

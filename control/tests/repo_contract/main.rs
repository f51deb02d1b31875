//! The repo contract: one suite, run against every backend — SQLite, MariaDB,
//! MariaDB behind the Redis cache, and SQLite reached over gRPC.

mod cache;
mod group_admin;
mod social;
#[path = "../support/mod.rs"]
mod support;

use std::sync::Arc;

use anyhow::{Context, Result};
use gochat_control::repo::cache::RepoCache;
use gochat_control::repo::grpc::{RepoClient, RepoServer};
use gochat_control::repo::sql::SqlRepo;
use gochat_control::repo::{
    GroupPatch, NewUser, Page, Repo, RepoError, StoreOutcome, StoredMessage, role,
};
use gochat_proto::ids::{Id, group_conversation_id, now_millis, single_conversation_id};
use gochat_proto::keys::Names;

async fn sqlite() -> Result<Arc<dyn Repo>> {
    Ok(Arc::new(
        SqlRepo::connect(&support::fresh_sqlite(), 4).await?,
    ))
}

async fn mysql() -> Result<Arc<dyn Repo>> {
    Ok(Arc::new(
        SqlRepo::connect(&support::fresh_mysql().await?, 8).await?,
    ))
}

async fn cached_mysql() -> Result<Arc<dyn Repo>> {
    let client = redis::Client::open(support::redis_url()?)?;
    let manager = redis::aio::ConnectionManager::new(client).await?;
    let cache = RepoCache::redis(manager, Names::new(support::unique("t")));
    let sql = SqlRepo::connect(&support::fresh_mysql().await?, 8).await?;
    Ok(Arc::new(sql.with_cache(cache)))
}

async fn grpc_sqlite() -> Result<Arc<dyn Repo>> {
    let local = sqlite().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RepoServer::service(local))
            .serve_with_incoming(incoming),
    );
    Ok(Arc::new(RepoClient::connect_lazy(&format!(
        "http://{addr}"
    ))?))
}

fn message(cid: &str, seq: i64, from: i64, to: i64, group: i64, cmid: &str) -> StoredMessage {
    StoredMessage {
        message_id: now_millis() * 1000 + seq + from * 7,
        conversation_id: cid.to_owned(),
        seq_id: seq,
        from_user_id: from,
        to_user_id: to,
        group_id: group,
        message_type: "text".into(),
        content: format!("hello {seq}"),
        metadata_json: "{}".into(),
        mentions: vec![],
        client_msg_id: cmid.to_owned(),
        timestamp: now_millis(),
        edited_at: 0,
        recalled: false,
    }
}

/// A 1:1 message from `from` to `to`; `n` keeps ids made in the same
/// millisecond apart (the seq is the store's to give).
pub(crate) fn message_of(cid: &str, n: i64, from: i64, to: i64, cmid: &str) -> StoredMessage {
    message(cid, n, from, to, 0, cmid)
}

async fn users_friends_blocks(repo: Arc<dyn Repo>) -> Result<()> {
    let alice = repo.create_user("alice", "hash-a", "Alice").await?;
    let bob = repo.create_user("bob", "hash-b", "").await?;
    assert!(matches!(
        repo.create_user("alice", "x", "").await,
        Err(RepoError::Conflict(_))
    ));
    assert_eq!(repo.get_user_auth("alice").await?.password_hash, "hash-a");
    assert!(matches!(
        repo.get_user_auth("nobody").await,
        Err(RepoError::NotFound(_))
    ));
    assert_eq!(repo.get_user(bob.user_id).await?.username, "bob");
    let updated = repo.update_user(bob.user_id, Some("Bobby"), None).await?;
    assert_eq!(updated.nickname, "Bobby");
    // The cache (where there is one) must not serve the old profile.
    assert_eq!(repo.get_user(bob.user_id).await?.nickname, "Bobby");
    assert_eq!(
        repo.get_users(&[alice.user_id, bob.user_id, 999_999])
            .await?
            .len(),
        2
    );
    assert_eq!(repo.search_users("al", 10).await?.len(), 1);
    // LIKE wildcards are literal.
    assert!(repo.search_users("%", 10).await?.is_empty());
    assert!(repo.search_users("' OR 1=1 --", 10).await?.is_empty());

    repo.add_friend(alice.user_id, bob.user_id).await?;
    repo.add_friend(alice.user_id, bob.user_id).await?;
    assert!(repo.are_friends(bob.user_id, alice.user_id).await?);
    assert_eq!(repo.list_friends(alice.user_id).await?.len(), 1);
    repo.remove_friend(bob.user_id, alice.user_id).await?;
    assert!(!repo.are_friends(alice.user_id, bob.user_id).await?);

    repo.add_block(alice.user_id, bob.user_id).await?;
    assert!(repo.is_blocked(alice.user_id, bob.user_id).await?);
    assert!(!repo.is_blocked(bob.user_id, alice.user_id).await?);
    let blocked: Vec<i64> = repo
        .list_blocks(alice.user_id)
        .await?
        .iter()
        .map(|u| u.user_id)
        .collect();
    assert_eq!(blocked, vec![bob.user_id]);
    assert!(repo.list_blocks(bob.user_id).await?.is_empty());
    repo.remove_block(alice.user_id, bob.user_id).await?;
    assert!(!repo.is_blocked(alice.user_id, bob.user_id).await?);
    assert!(repo.list_blocks(alice.user_id).await?.is_empty());
    Ok(())
}

async fn groups_and_members(repo: Arc<dyn Repo>) -> Result<()> {
    let owner = repo.create_user("owner", "h", "").await?.user_id;
    let m1 = repo.create_user("m1", "h", "").await?.user_id;
    let m2 = repo.create_user("m2", "h", "").await?.user_id;
    let group = repo.create_group(owner, "Rustaceans", &[m1, owner]).await?;
    assert_eq!(group.member_count, 2);
    assert_eq!(
        repo.get_member(group.group_id, owner)
            .await?
            .map(|m| m.role),
        Some(role::OWNER)
    );
    assert_eq!(
        repo.get_member(group.group_id, m1).await?.map(|m| m.role),
        Some(role::MEMBER)
    );
    assert_eq!(repo.get_member(group.group_id, m2).await?, None);
    assert_eq!(
        repo.add_members(group.group_id, &[m1, m2, m2]).await?,
        vec![m2]
    );
    assert_eq!(repo.list_members(group.group_id).await?.len(), 3);
    assert!(repo.get_member(group.group_id, m2).await?.is_some());
    assert!(repo.remove_member(group.group_id, m2).await?);
    assert!(!repo.remove_member(group.group_id, m2).await?);
    assert_eq!(repo.get_member(group.group_id, m2).await?, None);
    assert_eq!(repo.list_members(group.group_id).await?.len(), 2);
    let patch = GroupPatch {
        announcement: Some("be kind".into()),
        ..GroupPatch::default()
    };
    let g = repo.update_group(group.group_id, &patch).await?;
    assert_eq!(
        (g.name.as_str(), g.announcement.as_str()),
        ("Rustaceans", "be kind")
    );
    assert_eq!(repo.search_groups("ustace", 10).await?.len(), 1);
    assert_eq!(repo.list_user_groups(m1).await?.len(), 1);
    assert!(repo.list_user_groups(m2).await?.is_empty());
    assert!(matches!(
        repo.get_group(987_654).await,
        Err(RepoError::NotFound(_))
    ));
    let info = repo
        .get_conversation(&group_conversation_id(Id(group.group_id)))
        .await?;
    assert_eq!(info.map(|c| c.kind), Some("group".to_owned()));
    Ok(())
}

async fn messages_are_unique_and_ordered(repo: Arc<dyn Repo>) -> Result<()> {
    let a = repo.create_user("sender", "h", "").await?.user_id;
    let b = repo.create_user("receiver", "h", "Receiver").await?.user_id;
    let cid = single_conversation_id(Id(a), Id(b));
    assert!(repo.get_conversation(&cid).await?.is_none());
    for seq in 1..=4 {
        let outcome = repo
            .store_message(&message(&cid, seq, a, b, 0, &format!("c-{seq}")))
            .await?;
        assert!(
            matches!(&outcome, StoreOutcome::Stored(m) if m.seq_id == seq),
            "{outcome:?}"
        );
    }
    // Same (sender, client_msg_id) again: the original comes back, and no
    // seq is used up.
    let again = repo
        .store_message(&message(&cid, 6, a, b, 0, "c-2"))
        .await?;
    let StoreOutcome::Duplicate(original) = again else {
        panic!("expected duplicate, got {again:?}")
    };
    assert_eq!(original.seq_id, 2);
    // The seq a caller puts in is ignored: the store hands out the next one.
    let mut late = message(&cid, 5, a, b, 0, "c-5");
    late.seq_id = 3;
    let next = repo.store_message(&late).await?;
    assert!(
        matches!(&next, StoreOutcome::Stored(m) if m.seq_id == 5),
        "{next:?}"
    );
    assert_eq!(
        repo.get_conversation(&cid).await?.map(|c| c.last_seq_id),
        Some(5)
    );
    assert!(repo.find_message(a, "c-4").await?.is_some());
    assert!(repo.find_message(b, "c-4").await?.is_none());

    let page = repo.list_messages(&cid, Page::After(1), 2).await?;
    assert_eq!(
        page.messages.iter().map(|m| m.seq_id).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(page.has_more);
    let page = repo.list_messages(&cid, Page::Before(5), 10).await?;
    assert_eq!(
        page.messages.iter().map(|m| m.seq_id).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(!page.has_more);

    let conversations = repo.list_conversations(b).await?;
    assert_eq!(conversations.len(), 1);
    let c = &conversations[0];
    assert_eq!(
        (c.kind.as_str(), c.peer_user_id, c.last_seq_id, c.unread),
        ("single", a, 5, 5)
    );
    // The peer has no nickname: the username stands in.
    assert_eq!(c.name, "sender");
    assert_eq!(c.last_message.as_ref().map(|m| m.seq_id), Some(5));
    // The sender has read their own messages.
    assert_eq!(repo.list_conversations(a).await?[0].unread, 0);
    // Read cursors only move forward, and never past the end.
    assert_eq!(repo.list_conversations(a).await?[0].peer_read_seq_id, 0);
    assert_eq!(repo.mark_read(b, &cid, 3).await?, 3);
    // The sender sees how far the peer has read.
    assert_eq!(repo.list_conversations(a).await?[0].peer_read_seq_id, 3);
    assert_eq!(repo.mark_read(b, &cid, 2).await?, 3);
    assert_eq!(repo.mark_read(b, &cid, 99).await?, 5);
    assert_eq!(repo.list_conversations(b).await?[0].unread, 0);
    Ok(())
}

async fn mentions_are_indexed(repo: Arc<dyn Repo>) -> Result<()> {
    let owner = repo.create_user("o", "h", "").await?.user_id;
    let u1 = repo.create_user("u1", "h", "").await?.user_id;
    let u2 = repo.create_user("u2", "h", "").await?.user_id;
    let group = repo.create_group(owner, "g", &[u1, u2]).await?;
    let cid = group_conversation_id(Id(group.group_id));
    let mut m = message(&cid, 1, owner, 0, group.group_id, "m-1");
    m.mentions = vec![u1.to_string()];
    repo.store_message(&m).await?;
    assert_eq!(repo.list_mentions(u1).await?.len(), 1);
    assert!(repo.list_mentions(u2).await?.is_empty());
    let mut m = message(&cid, 2, u1, 0, group.group_id, "m-2");
    m.mentions = vec!["all".into()];
    repo.store_message(&m).await?;
    // Writing into a conversation reads it; one's own @all is no mention.
    assert!(repo.list_mentions(u1).await?.is_empty());
    assert_eq!(repo.list_mentions(u2).await?.len(), 1);
    assert_eq!(repo.list_mentions(owner).await?.len(), 1);
    let summary = repo.list_conversations(u2).await?;
    assert_eq!((summary[0].unread, summary[0].unread_mentions), (2, 1));
    repo.mark_read(u2, &cid, 2).await?;
    assert!(repo.list_mentions(u2).await?.is_empty());
    Ok(())
}

/// A batch is one group commit: stored in order across conversations, each
/// conversation's messages at its next seqs; a batch with a duplicate
/// classifies each message and still stores the clean ones.
async fn batches_commit_together_and_classify_clashes(repo: Arc<dyn Repo>) -> Result<()> {
    let a = repo.create_user("batcher", "h", "").await?.user_id;
    let b = repo.create_user("peer_one", "h", "").await?.user_id;
    let c = repo.create_user("peer_two", "h", "").await?.user_id;
    let (ab, ac) = (
        single_conversation_id(Id(a), Id(b)),
        single_conversation_id(Id(a), Id(c)),
    );
    let mut mentioned = message(&ac, 2, a, c, 0, "b-3");
    mentioned.mentions = vec![c.to_string()];
    let mut first = vec![
        message(&ab, 1, a, b, 0, "b-1"),
        message(&ac, 1, a, c, 0, "b-2"),
        mentioned,
        message(&ab, 2, a, b, 0, "b-4"),
    ];
    // message() derives ids from (seq, sender): make this batch's distinct.
    for (i, m) in first.iter_mut().enumerate() {
        m.message_id += 100 * i as i64;
    }
    let outcomes = repo.store_messages(&first).await?;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, StoreOutcome::Stored(_))),
        "{outcomes:?}"
    );
    for (cid, high) in [(&ab, 2), (&ac, 2)] {
        assert_eq!(
            repo.get_conversation(cid).await?.map(|c| c.last_seq_id),
            Some(high)
        );
    }
    let page = repo.list_messages(&ab, Page::After(0), 10).await?;
    let ids: Vec<&str> = page
        .messages
        .iter()
        .map(|m| m.client_msg_id.as_str())
        .collect();
    assert_eq!(ids, vec!["b-1", "b-4"]);

    // A duplicate takes no seq, the rest take the next ones in the order
    // given, and a key sent twice in one batch is stored once.
    let mut second = vec![
        message(&ab, 3, a, b, 0, "b-1"),
        message(&ab, 2, a, b, 0, "b-fresh"),
        message(&ab, 3, a, b, 0, "b-5"),
        message(&ab, 3, a, b, 0, "b-5"),
    ];
    for (i, m) in second.iter_mut().enumerate() {
        m.message_id += 1000 + 100 * i as i64;
    }
    let outcomes = repo.store_messages(&second).await?;
    let seqs: Vec<(bool, i64)> = outcomes
        .iter()
        .map(|o| match o {
            StoreOutcome::Stored(m) => (true, m.seq_id),
            StoreOutcome::Duplicate(m) => (false, m.seq_id),
        })
        .collect();
    assert_eq!(seqs, vec![(false, 1), (true, 3), (true, 4), (false, 4)]);
    assert_eq!(
        repo.get_conversation(&ab).await?.map(|c| c.last_seq_id),
        Some(4)
    );
    assert!(repo.store_messages(&[]).await?.is_empty());
    Ok(())
}

/// An edit or recall entry changes its target in the same commit; a
/// delete-for-me hides a message from one user only.
async fn changes_apply_with_their_entries(repo: Arc<dyn Repo>) -> Result<()> {
    let a = repo.create_user("changer", "h", "").await?.user_id;
    let b = repo.create_user("watcher", "h", "").await?.user_id;
    let ab = single_conversation_id(Id(a), Id(b));
    let target = message(&ab, 1, a, b, 0, "c-1");
    repo.store_message(&target).await?;
    let change = |kind: &str, cmid: &str, n: i64, metadata: serde_json::Value| {
        let mut m = message(&ab, 0, a, b, 0, cmid);
        m.message_id += 1000 * n;
        m.message_type = kind.into();
        m.content = if kind == "edit" {
            "new text".into()
        } else {
            String::new()
        };
        m.metadata_json = metadata.to_string();
        m
    };
    let target_keys =
        serde_json::json!({"target_message_id": target.message_id.to_string(), "target_seq_id": 1});
    let mut edit_metadata = target_keys.clone();
    edit_metadata["format"] = "plain".into();
    let edit = change("edit", "c-2", 1, edit_metadata);
    repo.store_message(&edit).await?;
    let edited = repo
        .get_message(target.message_id)
        .await?
        .context("target")?;
    assert_eq!(
        (
            edited.content.as_str(),
            edited.metadata_json.as_str(),
            edited.edited_at,
            edited.recalled
        ),
        ("new text", r#"{"format":"plain"}"#, edit.timestamp, false)
    );
    let entry = repo.get_message(edit.message_id).await?.context("entry")?;
    assert_eq!((entry.message_type.as_str(), entry.seq_id), ("edit", 2));
    repo.store_message(&change("recall", "c-3", 2, target_keys.clone()))
        .await?;
    repo.store_message(&change("edit", "c-4", 3, target_keys))
        .await?;
    let recalled = repo
        .get_message(target.message_id)
        .await?
        .context("target")?;
    assert_eq!(
        (
            recalled.content.as_str(),
            recalled.metadata_json.as_str(),
            recalled.recalled
        ),
        ("", "{}", true),
        "recalled, and an edit after the recall changed nothing"
    );
    assert_eq!(repo.get_message(1).await?, None);

    repo.hide_message(b, target.message_id).await?;
    repo.hide_message(b, target.message_id).await?;
    assert_eq!(
        repo.hidden_among(b, &[target.message_id, edit.message_id])
            .await?,
        vec![target.message_id]
    );
    assert!(repo.hidden_among(a, &[target.message_id]).await?.is_empty());
    assert!(repo.hidden_among(b, &[]).await?.is_empty());
    Ok(())
}

/// Accounts created together: all of them in order, or none.
async fn bulk_users_are_all_or_none(repo: Arc<dyn Repo>) -> Result<()> {
    let row = |name: &str| NewUser {
        username: name.into(),
        password_hash: "h".into(),
        nickname: String::new(),
    };
    let created = repo
        .create_users(&[row("bulk_one"), row("bulk_two")])
        .await?;
    let names: Vec<&str> = created.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, vec!["bulk_one", "bulk_two"]);
    assert!(created[0].user_id < created[1].user_id);
    assert_eq!(
        repo.get_user(created[1].user_id).await?.username,
        "bulk_two"
    );
    let clash = repo
        .create_users(&[row("bulk_three"), row("BULK_ONE")])
        .await;
    assert!(matches!(clash, Err(RepoError::Conflict(_))), "{clash:?}");
    assert!(
        matches!(
            repo.get_user_auth("bulk_three").await,
            Err(RepoError::NotFound(_))
        ),
        "rolled back"
    );
    Ok(())
}

async fn revocations_last_until_expiry(repo: Arc<dyn Repo>) -> Result<()> {
    let now = gochat_proto::ids::now_millis();
    repo.revoke_token("live", now + 60_000).await?;
    repo.revoke_token("live", now + 60_000).await?;
    repo.revoke_token("expired", now - 1).await?;
    assert_eq!(
        repo.revoked_tokens().await?,
        vec![("live".to_owned(), now + 60_000)],
        "once each, the expired one forgotten"
    );
    Ok(())
}

macro_rules! contract {
    ($backend:ident) => {
        mod $backend {
            use super::*;
            #[tokio::test]
            async fn users_friends_blocks() -> Result<()> {
                super::users_friends_blocks(super::$backend().await?).await
            }
            #[tokio::test]
            async fn groups_and_members() -> Result<()> {
                super::groups_and_members(super::$backend().await?).await
            }
            #[tokio::test]
            async fn messages_are_unique_and_ordered() -> Result<()> {
                super::messages_are_unique_and_ordered(super::$backend().await?).await
            }
            #[tokio::test]
            async fn batches_commit_together_and_classify_clashes() -> Result<()> {
                super::batches_commit_together_and_classify_clashes(super::$backend().await?).await
            }
            #[tokio::test]
            async fn revocations_last_until_expiry() -> Result<()> {
                super::revocations_last_until_expiry(super::$backend().await?).await
            }
            #[tokio::test]
            async fn changes_apply_with_their_entries() -> Result<()> {
                super::changes_apply_with_their_entries(super::$backend().await?).await
            }
            #[tokio::test]
            async fn bulk_users_are_all_or_none() -> Result<()> {
                super::bulk_users_are_all_or_none(super::$backend().await?).await
            }
            #[tokio::test]
            async fn friend_requests_and_presence_audience() -> Result<()> {
                social::friend_requests_and_presence_audience(super::$backend().await?).await
            }
            #[tokio::test]
            async fn roles_mutes_flags_and_join_requests() -> Result<()> {
                group_admin::roles_mutes_flags_and_join_requests(super::$backend().await?).await
            }
            #[tokio::test]
            async fn search_follows_changes() -> Result<()> {
                social::search_follows_changes(super::$backend().await?).await
            }
            #[tokio::test]
            async fn devices_register_replace_remove() -> Result<()> {
                social::devices_register_replace_remove(super::$backend().await?).await
            }
            #[tokio::test]
            async fn mentions_are_indexed() -> Result<()> {
                super::mentions_are_indexed(super::$backend().await?).await
            }
        }
    };
}

contract!(sqlite);
contract!(mysql);
contract!(cached_mysql);
contract!(grpc_sqlite);

//! The batched send path (group commit) on the embedded engines: a bad send
//! fails alone while the rest of its batch is stored in order; sends of one
//! conversation in one batch get consecutive seqs in batch order; a replayed
//! batch (a redelivery after a crash) stores nothing twice and answers the
//! same acks.

mod support;

use std::sync::Arc;

use anyhow::Result;
use gochat_control::config::{AuthConfig, LogicConfig};
use gochat_control::logic::{Logic, MessageWriter, Send};
use gochat_control::repo::sql::SqlRepo;
use gochat_control::repo::{MessageRepo, Page, UserRepo};
use gochat_engines::bus::memory::{MemoryBus, MemoryInboxes};
use gochat_engines::state::memory::MemoryState;
use gochat_proto::frames::{ErrorCode, SendFrame};
use gochat_proto::ids::{Id, single_conversation_id};

/// Logic on SQLite and the in-process engines; the log's consuming ends are
/// returned so the log stays open (offline pushes are produced to it).
async fn logic_on_sqlite() -> Result<(Arc<Logic>, Arc<SqlRepo>, MemoryInboxes)> {
    let repo = Arc::new(SqlRepo::connect(&support::fresh_sqlite(), 1).await?);
    let (bus, inboxes) = MemoryBus::new();
    let config = LogicConfig {
        sends_per_second: 1_000,
        ..LogicConfig::default()
    };
    let writer = MessageWriter::new(
        repo.clone(),
        Arc::new(MemoryState::new()),
        Arc::new(bus),
        config,
        3,
    );
    let auth = AuthConfig {
        jwt_secret: support::SECRET.into(),
        ..AuthConfig::default()
    };
    Ok((
        Arc::new(Logic::new(Arc::new(writer), &auth)?),
        repo,
        inboxes,
    ))
}

fn send(from: i64, to: i64, client_msg_id: &str, content: &str) -> Send {
    Send {
        from: Id(from),
        frame: SendFrame {
            client_msg_id: client_msg_id.into(),
            to_user_id: Some(Id(to)),
            group_id: None,
            message_type: Default::default(),
            content: content.into(),
            metadata: serde_json::json!({}),
            mentions: vec![],
        },
        origin: None,
    }
}

#[tokio::test]
async fn a_bad_send_fails_alone_and_the_batch_keeps_its_order() -> Result<()> {
    let (logic, repo, _log) = logic_on_sqlite().await?;
    let a = repo.create_user("alice", "h", "").await?.user_id;
    let b = repo.create_user("bob", "h", "").await?.user_id;
    let c = repo.create_user("carol", "h", "").await?.user_id;
    repo.add_block(c, a).await?;
    let batch = vec![
        send(a, b, "m1", "one"),
        send(a, c, "m2", "carol blocked alice"),
        send(a, b, "m3", ""),
        send(a, b, "m4", "two"),
        send(a, 999_999, "m5", "nobody"),
        send(a, b, "m6", "three"),
        send(a, b, "m1", "one, resent in the same batch"),
    ];
    let results = logic.send_batch(batch.clone()).await?;
    let codes: Vec<Option<ErrorCode>> = results
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.code()))
        .collect();
    assert_eq!(
        codes,
        vec![
            None,
            Some(ErrorCode::Forbidden),
            Some(ErrorCode::BadRequest),
            None,
            Some(ErrorCode::NotFound),
            None,
            None
        ]
    );
    let seqs: Vec<i64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|ack| ack.seq_id))
        .collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3, 1],
        "consecutive in batch order; the resend gets its original"
    );
    let ab = single_conversation_id(Id(a), Id(b));
    let page = repo.list_messages(&ab, Page::After(0), 10).await?;
    let stored: Vec<(i64, &str)> = page
        .messages
        .iter()
        .map(|m| (m.seq_id, m.content.as_str()))
        .collect();
    assert_eq!(stored, vec![(1, "one"), (2, "two"), (3, "three")]);

    // The same batch again, as a redelivery after a crash would bring it.
    let replayed = logic.send_batch(batch).await?;
    for (first, again) in results.iter().zip(&replayed) {
        match (first, again) {
            (Ok(x), Ok(y)) => assert_eq!((x.message_id, x.seq_id), (y.message_id, y.seq_id)),
            (Err(x), Err(y)) => assert_eq!(x.code(), y.code()),
            other => panic!("a replay changed an answer: {other:?}"),
        }
    }
    let page = repo.list_messages(&ab, Page::After(0), 10).await?;
    assert_eq!(page.messages.len(), 3, "nothing stored twice");
    Ok(())
}

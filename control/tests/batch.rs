//! The batched send path (group commit) on the embedded engines: a bad send
//! fails alone while the rest of its batch is stored in order; sends of one
//! conversation in one batch get consecutive seqs in batch order; a replayed
//! batch (a redelivery after a crash) stores nothing twice and answers the
//! same acks. In a large group, only mentions push to offline members, and
//! `@all` within its budget. A full send queue refuses REST and gRPC sends.

mod support;

use std::sync::Arc;

use anyhow::Result;
use gochat_control::config::{AuthConfig, LogicConfig};
use gochat_control::logic::{Logic, LogicError, MessageWriter, Send, SendQueue};
use gochat_control::repo::sql::SqlRepo;
use gochat_control::repo::{GroupRepo, MessageRepo, Page, UserRepo};
use gochat_engines::bus::Inbox;
use gochat_engines::bus::memory::{MemoryBus, MemoryInbox, MemoryInboxes};
use gochat_engines::state::memory::MemoryState;
use gochat_proto::frames::{ErrorCode, SendFrame};
use gochat_proto::ids::{Id, single_conversation_id};
use gochat_proto::kafka::{Task, TaskRecord};

/// Logic on SQLite and the in-process engines; the log's consuming ends are
/// returned so the log stays open (offline pushes are produced to it).
async fn logic_on_sqlite() -> Result<(Arc<Logic>, Arc<SqlRepo>, MemoryInboxes)> {
    logic_with(LogicConfig {
        sends_per_second: 1_000,
        ..LogicConfig::default()
    })
    .await
}

async fn logic_with(config: LogicConfig) -> Result<(Arc<Logic>, Arc<SqlRepo>, MemoryInboxes)> {
    let repo = Arc::new(SqlRepo::connect(&support::fresh_sqlite(), 1).await?);
    let (bus, inboxes) = MemoryBus::new();
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
    Send::message(
        Id(from),
        SendFrame {
            client_msg_id: client_msg_id.into(),
            to_user_id: Some(Id(to)),
            group_id: None,
            message_type: Default::default(),
            content: content.into(),
            metadata: serde_json::json!({}),
            mentions: vec![],
        },
        None,
    )
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
        send(a, c, "m2", "carol blocked alice, resent"),
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
            None,
            Some(ErrorCode::Forbidden),
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

fn group_send(from: i64, group: i64, client_msg_id: &str, mentions: &[&str]) -> Send {
    Send::message(
        Id(from),
        SendFrame {
            client_msg_id: client_msg_id.into(),
            to_user_id: None,
            group_id: Some(Id(group)),
            message_type: Default::default(),
            content: "hello".into(),
            metadata: serde_json::json!({}),
            mentions: mentions.iter().map(|m| (*m).to_owned()).collect(),
        },
        None,
    )
}

/// The tasks on the log until it has been quiet for a moment.
async fn tasks_now(inbox: &mut MemoryInbox) -> Vec<Task> {
    let mut tasks = Vec::new();
    while let Ok(Some(d)) =
        tokio::time::timeout(std::time::Duration::from_millis(200), inbox.next()).await
    {
        if let Ok(record) = serde_json::from_slice::<TaskRecord>(&d.payload) {
            tasks.push(record.task);
        }
    }
    tasks
}

#[tokio::test]
async fn large_groups_push_only_mentions_and_all_within_its_budget() -> Result<()> {
    let config = LogicConfig {
        large_group_threshold: 3,
        mention_all_per_minute: 1,
        sends_per_second: 1_000,
        ..LogicConfig::default()
    };
    let (logic, repo, mut log) = logic_with(config).await?;
    let a = repo.create_user("alice", "h", "").await?.user_id;
    let b = repo.create_user("bob", "h", "").await?.user_id;
    let c = repo.create_user("carol", "h", "").await?.user_id;
    let outsider = repo.create_user("dave", "h", "").await?.user_id;
    let g = repo.create_group(a, "big", &[b, c]).await?.group_id;
    let pushed_to = |tasks: &[Task]| -> Vec<i64> {
        tasks
            .iter()
            .filter_map(|t| match t {
                Task::OfflinePush(p) => Some(p.user_id.0),
                _ => None,
            })
            .collect()
    };
    let fanouts = |tasks: &[Task]| {
        tasks
            .iter()
            .filter(|t| matches!(t, Task::GroupFanout(_)))
            .count()
    };
    // No mention: nobody offline is pushed. A mention of bob (and of
    // someone outside the group): bob only.
    let (bs, os) = (b.to_string(), outsider.to_string());
    logic
        .send_batch(vec![
            group_send(a, g, "g1", &[]),
            group_send(a, g, "g2", &[bs.as_str(), os.as_str()]),
        ])
        .await?;
    let tasks = tasks_now(&mut log.tasks).await;
    assert_eq!((pushed_to(&tasks), fanouts(&tasks)), (vec![b], 0));
    // @all: one fan-out task; a second @all within the minute is over the
    // budget and pushes only whom it names.
    let cs = c.to_string();
    logic
        .send_batch(vec![group_send(a, g, "g3", &["all"])])
        .await?;
    let tasks = tasks_now(&mut log.tasks).await;
    assert_eq!((pushed_to(&tasks), fanouts(&tasks)), (vec![], 1));
    logic
        .send_batch(vec![group_send(a, g, "g4", &["all", cs.as_str()])])
        .await?;
    let tasks = tasks_now(&mut log.tasks).await;
    assert_eq!((pushed_to(&tasks), fanouts(&tasks)), (vec![c], 0));
    Ok(())
}

/// Admission control: while the queue holds `max_waiting` sends, a REST or
/// gRPC send is refused at once as `overloaded` (nothing stored); the
/// consumer's batches still queue; once the loop catches up, sends are taken.
/// Copies of one send in a batch (resends after an outage) are one send:
/// stored once, one rate token, the same ack for every copy.
#[tokio::test]
async fn copies_in_one_batch_are_one_send() -> Result<()> {
    let (logic, repo, _log) = logic_with(LogicConfig {
        sends_per_second: 2,
        ..LogicConfig::default()
    })
    .await?;
    let a = repo.create_user("alice", "h", "").await?.user_id;
    let b = repo.create_user("bob", "h", "").await?.user_id;
    let batch = vec![
        send(a, b, "c1", "one"),
        send(a, b, "c1", "one"),
        send(a, b, "c1", "one"),
        send(a, b, "c2", "two"),
    ];
    let results = logic.send_batch(batch).await?;
    let answers: Vec<(i64, i64)> = results
        .iter()
        .map(|r| match r {
            Ok(ack) => (ack.seq_id, ack.message_id.0),
            Err(e) => panic!("a copy was refused: {e}"),
        })
        .collect();
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    assert_eq!(
        (answers[0].0, answers[3].0),
        (1, 2),
        "two rate tokens, two seqs"
    );
    let ab = single_conversation_id(Id(a), Id(b));
    assert_eq!(
        repo.list_messages(&ab, Page::After(0), 10)
            .await?
            .messages
            .len(),
        2
    );
    Ok(())
}

#[tokio::test]
async fn a_full_send_queue_refuses_api_sends_as_overloaded() -> Result<()> {
    let (logic, repo, _log) = logic_on_sqlite().await?;
    let a = repo.create_user("alice", "h", "").await?.user_id;
    let b = repo.create_user("bob", "h", "").await?.user_id;
    let (queue, send_loop) = SendQueue::new(logic.clone(), 128, 2);
    let batch = {
        let queue = queue.clone();
        tokio::spawn(async move {
            queue
                .submit(vec![send(a, b, "q1", "one"), send(a, b, "q2", "two")])
                .await
        })
    };
    // The batch is queued (the loop is not running yet) and holds two sends.
    tokio::task::yield_now().await;
    let over = send(a, b, "q3", "three");
    let refused = queue.send(over.from, over.frame.clone(), None).await;
    assert!(
        matches!(refused, Err(LogicError::Overloaded)),
        "{refused:?}"
    );
    assert_eq!(
        LogicError::Overloaded.code(),
        ErrorCode::Overloaded,
        "answered 503 `overloaded`"
    );

    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(send_loop.run(stop.clone()));
    let acks = batch.await??;
    assert!(acks.iter().all(Result::is_ok), "{acks:?}");
    let ack = queue.send(over.from, over.frame, None).await?;
    assert_eq!(ack.seq_id, 3, "taken once the queue drained");
    stop.cancel();
    running.await?;
    Ok(())
}

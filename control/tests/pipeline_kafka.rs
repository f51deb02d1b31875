//! The Kafka pipeline on the real broker, Redis and MariaDB: upstream records
//! from a (simulated) gateway are stored once, acked on the sender's connection
//! and delivered on the recipient's; redelivery stores nothing twice; seq
//! survives Redis losing its data; offline pushes retry and dead-letter.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use gochat_control::config::{KafkaConfig, RedisConfig};
use gochat_control::repo::Page;
use gochat_engines::bus::Bus;
use gochat_engines::bus::kafka::{KafkaBus, KafkaSettings, ensure_topics};
use gochat_proto::frames::{ClientFrame, SendFrame};
use gochat_proto::ids::{Id, now_millis, single_conversation_id};
use gochat_proto::kafka::{Origin, UpstreamRecord};
use gochat_proto::keys::SessionRoute;
use gochat_testkit::process::{Server, free_port, redis_command};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{Value, json};
use support::{Backend, TestServer, TestUser, start_server, start_with, test_config};

const GATEWAY: &str = "gw-test";

fn settings(s: &TestServer) -> Result<KafkaSettings> {
    let k: &KafkaConfig = s.config.kafka.as_ref().context("kafka config")?;
    Ok(KafkaSettings::of(k))
}

/// Reads a topic's partitions from the start, as a gateway core would.
fn reader(settings: &KafkaSettings, topic: &str, partitions: i32) -> Result<StreamConsumer> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", support::unique("reader-"))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    Ok(consumer)
}

/// The next record: (partition, key, JSON value).
/// A fetch error (a topic a fresh broker has not finished creating) is
/// passed over: only the record counts.
async fn next(consumer: &StreamConsumer) -> Result<(i32, String, Value)> {
    let record = async {
        loop {
            match consumer.recv().await {
                Ok(m) => return m,
                Err(e) => eprintln!("reader: {e}; reading on"),
            }
        }
    };
    let m = tokio::time::timeout(Duration::from_secs(30), record)
        .await
        .context("no record within 30 s")?;
    let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
    // Membership records carry no frame.
    let frame = match m.payload().unwrap_or_default() {
        [] => Value::Null,
        payload => serde_json::from_slice(payload)?,
    };
    Ok((m.partition(), key, frame))
}

fn route(core: u32, conn_id: u64) -> SessionRoute {
    SessionRoute {
        gateway_id: GATEWAY.into(),
        core,
        conn_id,
        generation: 1,
        seen_at: now_millis(),
        token: 0,
    }
}

fn upstream(from: &str, to: &str, cmid: &str, conn_id: u64) -> UpstreamRecord {
    UpstreamRecord {
        version: "1.0".into(),
        from_user_id: Id(from.parse().unwrap_or(0)),
        device_id: "web".into(),
        origin: Origin {
            gateway_id: GATEWAY.into(),
            core: 1,
            conn_id,
        },
        timestamp: now_millis(),
        frame: ClientFrame::Send(SendFrame {
            client_msg_id: cmid.into(),
            to_user_id: Some(Id(to.parse().unwrap_or(0))),
            group_id: None,
            message_type: Default::default(),
            content: "over kafka".into(),
            metadata: json!({}),
            mentions: vec![],
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_send_is_acked_delivered_and_deduplicated_on_redelivery() -> Result<()> {
    let s = start_server(Backend::Real).await?;
    let settings = settings(&s)?;
    let downstream = settings.names.downstream_topic(GATEWAY);
    ensure_topics(&settings, &[(downstream.clone(), 2)]).await?;
    let alice = s.user("alice").await?;
    let bob = s.user("bob").await?;
    let running = s.running.as_ref().context("running")?;
    running
        .state
        .register_route(Id(alice.id.parse()?), "web", &route(1, 11), 60)
        .await?;
    running
        .state
        .register_route(Id(bob.id.parse()?), "web", &route(0, 22), 60)
        .await?;

    let edge = KafkaBus::new(&settings)?;
    let record = upstream(&alice.id, &bob.id, "k-1", 11);
    edge.send_upstream(&record).await?;
    let consumer = reader(&settings, &downstream, 2)?;
    let mut ack = None;
    let mut message = None;
    while ack.is_none() || message.is_none() {
        let (partition, key, value) = next(&consumer).await?;
        match value["type"].as_str() {
            Some("ack") => ack = Some((partition, key, value)),
            Some("message") => message = Some((partition, key, value)),
            other => anyhow::bail!("unexpected frame {other:?}"),
        }
    }
    let (ack_partition, ack_key, ack) = ack.context("ack")?;
    let (msg_partition, msg_key, message) = message.context("message")?;
    assert_eq!(
        (ack_partition, ack_key.as_str()),
        (1, "a11"),
        "the ack goes to the sender's core and connection, as an answer (it frees the send's slot in the core's window)"
    );
    assert_eq!(
        (msg_partition, msg_key.as_str()),
        (0, "22"),
        "the message goes to the recipient's"
    );
    assert_eq!(ack["seq_id"], 1);
    assert_eq!(message["message_id"], ack["message_id"]);
    assert_eq!(message["content"], "over kafka");

    // The same record again (a Kafka redelivery): the same ack, nothing stored twice.
    edge.send_upstream(&record).await?;
    let (_, key, again) = next(&consumer).await?;
    assert_eq!((key.as_str(), again["type"].as_str()), ("a11", Some("ack")));
    assert_eq!(
        (again["message_id"].clone(), again["seq_id"].clone()),
        (ack["message_id"].clone(), ack["seq_id"].clone())
    );
    let cid = single_conversation_id(Id(alice.id.parse()?), Id(bob.id.parse()?));
    let stored = running.repo.list_messages(&cid, Page::After(0), 10).await?;
    assert_eq!(stored.messages.len(), 1);

    // A refused send is answered with an error frame on the sender's connection.
    let mut bad = upstream(&alice.id, "987654321", "k-2", 11);
    bad.origin.conn_id = 11;
    edge.send_upstream(&bad).await?;
    let (_, key, err) = next(&consumer).await?;
    assert_eq!(
        (key.as_str(), err["type"].as_str(), err["code"].as_str()),
        ("a11", Some("error"), Some("not_found"))
    );
    assert_eq!(err["client_msg_id"], "k-2");
    Ok(())
}

/// A private redis-server, so FLUSHALL touches no other test.
struct PrivateRedis {
    _server: Server,
    url: String,
}

impl PrivateRedis {
    async fn start() -> Result<Self> {
        let port = free_port()?;
        let mut command = redis_command();
        command.arg("--port").arg(port.to_string());
        let server = Server::spawn(command, port)?;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(Self {
                    _server: server,
                    url: format!("redis://127.0.0.1:{port}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("redis-server did not start")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_survives_redis_flushall_without_reuse() -> Result<()> {
    let redis = PrivateRedis::start().await?;
    let mut config = test_config(Backend::Real).await?;
    config.redis = Some(RedisConfig::at(redis.url.clone()));
    let s = start_with(config).await?;
    let alice = s.user("alice").await?;
    let bob = s.user("bob").await?;
    let mut seqs = Vec::new();
    for i in 0..3 {
        let (_, ack) = s
            .send(
                &alice,
                json!({"client_msg_id":format!("a{i}"),"to_user_id":bob.id,"content":"before"}),
            )
            .await?;
        seqs.push(ack["seq_id"].as_i64().unwrap_or(-1));
    }
    let client = redis::Client::open(redis.url.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    redis::cmd("FLUSHALL").query_async::<()>(&mut conn).await?;
    for i in 0..3 {
        let (status, ack) = s
            .send(
                &bob,
                json!({"client_msg_id":format!("b{i}"),"to_user_id":alice.id,"content":"after"}),
            )
            .await?;
        assert_eq!(status, 200, "{ack}");
        seqs.push(ack["seq_id"].as_i64().unwrap_or(-1));
    }
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4, 5, 6],
        "no seq reused or skipped after Redis lost its data"
    );
    // The token revocation list was in Redis too: the tokens still work (they were not revoked).
    assert_eq!(s.get(&alice, "/users/me").await?.0, 200);
    Ok(())
}

/// A push webhook that accepts everyone's pushes but the `failing` user's.
struct FakeWebhook {
    url: String,
    /// Refused attempts.
    calls: Arc<AtomicUsize>,
    /// The user id whose pushes fail.
    failing: Arc<std::sync::Mutex<String>>,
    /// Accepted pushes.
    received: Arc<std::sync::Mutex<Vec<Value>>>,
}

async fn fake_webhook() -> Result<FakeWebhook> {
    let calls = Arc::new(AtomicUsize::new(0));
    let failing = Arc::new(std::sync::Mutex::new(String::new()));
    let received = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let app = {
        let (calls, failing, received) = (calls.clone(), failing.clone(), received.clone());
        axum::Router::new().route(
            "/push",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let (calls, failing, received) = (calls.clone(), failing.clone(), received.clone());
                async move {
                    let failing = failing.lock().map(|f| f.clone()).unwrap_or_default();
                    if body["user_id"].as_str() == Some(failing.as_str()) {
                        calls.fetch_add(1, Ordering::SeqCst);
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    if let Ok(mut r) = received.lock() {
                        r.push(body);
                    }
                    axum::http::StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/push", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(FakeWebhook {
        url,
        calls,
        failing,
        received,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_pushes_reach_the_webhook_and_failures_dead_letter() -> Result<()> {
    let hook = fake_webhook().await?;
    let mut config = test_config(Backend::Real).await?;
    config.task.webhook_url = Some(hook.url.clone());
    config.task.push_delay_ms = 1500;
    let s = start_with(config).await?;
    let alice = s.user("alice").await?;
    let bob = s.user("bob").await?;
    let fail = s.user("fail").await?;
    if let Ok(mut f) = hook.failing.lock() {
        *f = fail.id.clone();
    }
    // A muted conversation sends no push (PROTOCOL v1.1 §6.4).
    let quiet = s.user("quiet").await?;
    let (_, group) = s
        .post(
            &alice,
            "/groups",
            json!({"name":"hush","member_ids":[quiet.id]}),
        )
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    let (status, _) = s
        .put(
            &quiet,
            &format!("/conversations/g{gid}/settings"),
            json!({"muted":true}),
        )
        .await?;
    assert_eq!(status, 200);
    s.send(
        &alice,
        json!({"client_msg_id":"p0","group_id":gid,"content":"shh"}),
    )
    .await?;
    s.send(
        &alice,
        json!({"client_msg_id":"p1","to_user_id":bob.id,"content":"are you there?"}),
    )
    .await?;
    s.send(
        &alice,
        json!({"client_msg_id":"p2","to_user_id":fail.id,"content":"and you?"}),
    )
    .await?;

    let settings = settings(&s)?;
    let dlq = reader(&settings, &settings.names.task_dlq_topic(), 1)?;
    let (_, _, dead) = next(&dlq).await?;
    assert_eq!(dead["task_type"], "offline_push");
    assert_eq!(dead["payload"]["user_id"].as_str(), Some(fail.id.as_str()));
    assert_eq!(dead["retry_count"], 3);
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("500")
    );
    assert_eq!(
        hook.calls.load(Ordering::SeqCst),
        3,
        "three attempts, then the dead-letter topic"
    );
    // Tasks for other users may sit on another partition: wait for bob's too.
    let for_bob = || {
        let received = hook.received.lock().map(|r| r.clone()).unwrap_or_default();
        received
            .into_iter()
            .filter(|d| d["user_id"].as_str() == Some(bob.id.as_str()))
            .collect::<Vec<Value>>()
    };
    let mut delivered = Vec::new();
    for _ in 0..300 {
        delivered = for_bob();
        if !delivered.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered.len(), 1);
    // Quiet's push of "shh" was due before bob's: a little longer, and none.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = hook.received.lock().map(|r| r.clone()).unwrap_or_default();
    assert!(
        !received
            .iter()
            .any(|d| d["content"].as_str().unwrap_or_default().contains("shh")),
        "a muted conversation was pushed: {received:?}"
    );
    assert_eq!(delivered[0]["user_id"].as_str(), Some(bob.id.as_str()));
    assert_eq!(delivered[0]["push_type"], "message");
    assert!(
        delivered[0]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("are you there?")
    );
    assert!(
        delivered[0].get("push_token").is_none(),
        "no device: per user"
    );
    pushes_go_per_registered_device(&s, &hook, &alice).await?;
    a_read_within_the_delay_cancels_the_push(&s, &hook, &alice).await
}

/// The contents of the pushes `user` got, once there are `count` (or after
/// 30 s).
async fn pushed_contents(hook: &FakeWebhook, user: &TestUser, count: usize) -> Vec<String> {
    let mut contents = Vec::new();
    for _ in 0..300 {
        let received = hook.received.lock().map(|r| r.clone()).unwrap_or_default();
        contents = received
            .iter()
            .filter(|d| d["user_id"].as_str() == Some(user.id.as_str()))
            .map(|d| d["content"].as_str().unwrap_or_default().to_owned())
            .collect();
        if contents.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    contents
}

/// A push waits `task.push_delay_ms` (1.5 s here); the user reading the
/// message, or a device reporting it `delivered`, meanwhile cancels it
/// (PROTOCOL v1.1 §6.4).
async fn a_read_within_the_delay_cancels_the_push(
    s: &TestServer,
    hook: &FakeWebhook,
    alice: &TestUser,
) -> Result<()> {
    let reader = s.user("reader").await?;
    let (_, ack) = s
        .send(
            alice,
            json!({"client_msg_id":"r1","to_user_id":reader.id,"content":"read me"}),
        )
        .await?;
    let cid = ack["conversation_id"].as_str().unwrap_or_default();
    let (status, _) = s
        .post(
            &reader,
            &format!("/conversations/{cid}/read"),
            json!({"seq_id": ack["seq_id"]}),
        )
        .await?;
    assert_eq!(status, 204);
    // Then one left unread: pushed, after the delay.
    s.send(
        alice,
        json!({"client_msg_id":"r2","to_user_id":reader.id,"content":"and me"}),
    )
    .await?;
    let contents = pushed_contents(hook, &reader, 1).await;
    assert_eq!(contents.len(), 1, "{contents:?}");
    assert!(contents[0].contains("and me"), "{contents:?}");

    // A device's `delivered` frame within the delay cancels too.
    let (_, held) = s
        .send(
            alice,
            json!({"client_msg_id":"r3","to_user_id":reader.id,"content":"held"}),
        )
        .await?;
    let mut record = upstream(&reader.id, &alice.id, "unused", 5);
    record.frame = ClientFrame::Delivered {
        conversation_id: cid.to_owned(),
        seq_id: held["seq_id"].as_i64().unwrap_or_default(),
    };
    KafkaBus::new(&settings(s)?)?.send_upstream(&record).await?;
    s.send(
        alice,
        json!({"client_msg_id":"r4","to_user_id":reader.id,"content":"last"}),
    )
    .await?;
    let contents = pushed_contents(hook, &reader, 2).await;
    assert_eq!(contents.len(), 2, "{contents:?}");
    assert!(
        contents[1].contains("last"),
        "the delivered one was pushed: {contents:?}"
    );
    Ok(())
}

/// A user with registered devices gets one push per device, carrying its
/// platform and token (PROTOCOL v1.1 `POST /devices`).
async fn pushes_go_per_registered_device(
    s: &TestServer,
    hook: &FakeWebhook,
    alice: &TestUser,
) -> Result<()> {
    let dee = s.user("dee").await?;
    for (device, platform, token) in [
        ("phone", "apns", "apns-tok"),
        ("tab", "webhook", "hook-tok"),
    ] {
        let body = json!({"device_id": device, "platform": platform, "push_token": token});
        assert_eq!(s.post(&dee, "/devices", body).await?.0, 201);
    }
    let bad = json!({"device_id":"x","platform":"pager","push_token":"t"});
    assert_eq!(s.post(&dee, "/devices", bad).await?.0, 400);
    s.send(
        alice,
        json!({"client_msg_id":"d1","to_user_id":dee.id,"content":"ping"}),
    )
    .await?;
    let mut tokens = Vec::new();
    for _ in 0..300 {
        let received = hook.received.lock().map(|r| r.clone()).unwrap_or_default();
        tokens = received
            .iter()
            .filter(|d| d["user_id"].as_str() == Some(dee.id.as_str()))
            .map(|d| {
                (
                    d["device_id"].clone(),
                    d["platform"].clone(),
                    d["push_token"].clone(),
                )
            })
            .collect::<Vec<_>>();
        if tokens.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokens.sort_by_key(|t| t.0.to_string());
    assert_eq!(
        tokens,
        vec![
            (json!("phone"), json!("apns"), json!("apns-tok")),
            (json!("tab"), json!("webhook"), json!("hook-tok")),
        ]
    );
    assert_eq!(s.delete(&dee, "/devices/tab").await?.0, 204);
    assert_eq!(s.delete(&dee, "/devices/tab").await?.0, 404);
    Ok(())
}

/// A large group's message is one record per core of every live gateway,
/// keyed by the group's room (the sender's connection skipped on its core);
/// a member who joins while connected gets a membership record on the core
/// of each connection, before the group's next message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_groups_go_to_every_gateway_core_by_room() -> Result<()> {
    let mut config = test_config(Backend::Real).await?;
    config.logic.large_group_threshold = 3;
    let s = start_with(config).await?;
    let settings = settings(&s)?;
    let downstream = settings.names.downstream_topic(GATEWAY);
    ensure_topics(&settings, &[(downstream.clone(), 2)]).await?;
    let running = s.running.as_ref().context("running")?;
    running.state.announce_gateway(GATEWAY, 2, 60).await?;
    let alice = s.user("alice").await?;
    let bob = s.user("bob").await?;
    let carol = s.user("carol").await?;
    let dave = s.user("dave").await?;
    let (_, group) = s
        .post(
            &alice,
            "/groups",
            json!({"name":"big","member_ids":[bob.id, carol.id]}),
        )
        .await?;
    let gid = group["group_id"].as_str().unwrap_or_default().to_owned();
    running
        .state
        .register_route(Id(dave.id.parse()?), "web", &route(1, 44), 60)
        .await?;
    let (status, _) = s
        .post(
            &alice,
            &format!("/groups/{gid}/members"),
            json!({"user_ids":[dave.id]}),
        )
        .await?;
    assert_eq!(status, 200);
    let (status, ack) = s
        .send(
            &alice,
            json!({"client_msg_id":"big-1","group_id":gid,"content":"to many"}),
        )
        .await?;
    assert_eq!(status, 200);
    let consumer = reader(&settings, &downstream, 2)?;
    let mut joined = false;
    let mut rooms = std::collections::BTreeSet::new();
    while rooms.len() < 2 {
        let (partition, key, frame) = next(&consumer).await?;
        if key == format!("+{gid}:44") {
            assert_eq!(partition, 1, "on the core of dave's connection");
            joined = true;
        }
        if frame["type"] == "message" && frame["seq_id"] == ack["seq_id"] {
            assert_eq!(key, format!("r{gid}"), "keyed by the room, not the members");
            // Order holds within a partition only: the reader interleaves
            // the two, so only dave's core (1) must show the join first.
            if partition == 1 {
                assert!(joined, "the join record comes before the next message");
            }
            rooms.insert(partition);
        }
    }
    assert_eq!(rooms, [0, 1].into_iter().collect());
    Ok(())
}

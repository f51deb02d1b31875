//! The batched send step on the embedded engines (SQLite, in-process state
//! and log): `Logic::send_batch` of 1, 16 and 128 new 1:1 sends between
//! users spread over many conversations — validation, one de-duplication
//! query, rate and authorization checks, the batch's seqs, one group commit,
//! routing. Throughput is in messages, so the sizes compare per message.
//! Needs nothing running.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gochat_control::config::{AuthConfig, LogicConfig};
use gochat_control::logic::{Logic, MessageWriter, Send};
use gochat_control::repo::UserRepo;
use gochat_control::repo::sql::SqlRepo;
use gochat_engines::bus::Inbox;
use gochat_engines::bus::memory::{MemoryBus, MemoryInboxes};
use gochat_engines::state::memory::MemoryState;
use gochat_proto::frames::SendFrame;
use gochat_proto::ids::Id;

const USERS: usize = 64;

async fn logic() -> Result<(Arc<Logic>, Vec<Id>, MemoryInboxes)> {
    let dir = std::env::temp_dir().join(format!("gochat-batch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let repo = Arc::new(SqlRepo::connect(&url, 1).await?);
    let mut users = Vec::with_capacity(USERS);
    for i in 0..USERS {
        users.push(Id(repo
            .create_user(&format!("bench_{i}"), "x", "")
            .await?
            .user_id));
    }
    let (bus, inboxes) = MemoryBus::new();
    let config = LogicConfig {
        sends_per_second: u32::MAX,
        ..LogicConfig::default()
    };
    let writer = MessageWriter::new(repo, Arc::new(MemoryState::new()), Arc::new(bus), config, 9);
    let auth = AuthConfig {
        jwt_secret: "bench-secret-bench-secret-bench-secret".into(),
        ..AuthConfig::default()
    };
    Ok((
        Arc::new(Logic::new(Arc::new(writer), &auth)?),
        users,
        inboxes,
    ))
}

fn sends(users: &[Id], size: usize, counter: &AtomicU64) -> Vec<Send> {
    (0..size)
        .map(|_| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let from = users[(n as usize) % users.len()];
            let to = users[(n as usize / users.len() + 1 + n as usize) % users.len()];
            Send::message(
                from,
                SendFrame {
                    client_msg_id: format!("b-{n}"),
                    to_user_id: Some(to),
                    group_id: None,
                    message_type: Default::default(),
                    content: "benchmark message".into(),
                    metadata: serde_json::json!({}),
                    mentions: vec![],
                },
                None,
            )
        })
        .collect()
}

fn batch(c: &mut Criterion) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let (logic, users, log) = match runtime.block_on(logic()) {
        Ok(x) => x,
        Err(e) => panic!("batch bench set-up: {e:#}"),
    };
    // The recipients are offline: their push tasks are drained, as a task
    // service would, so the in-process log never fills.
    let MemoryInboxes { mut tasks, .. } = log;
    runtime.spawn(async move { while tasks.next().await.is_some() {} });
    let counter = AtomicU64::new(0);
    let mut group = c.benchmark_group("send_batch_sqlite");
    group.sample_size(30);
    for size in [1usize, 16, 128] {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.to_async(&runtime).iter(|| {
                let logic = logic.clone();
                let batch = sends(&users, size, &counter);
                async move { logic.send_batch(batch).await.map(|r| r.len()) }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, batch);
criterion_main!(benches);

//! One 1:1 send through the logic pipeline step against real Redis and MariaDB:
//! dedup lookup + rate check + authorization + seq (Redis script) + persist
//! (MariaDB transaction) + route (session lookup, in-process log).
//! Needs the dev stack: `deploy/dev-stack up`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gochat_control::config::{AuthConfig, LogicConfig};
use gochat_control::logic::{Logic, MessageWriter, Send};
use gochat_control::repo::UserRepo;
use gochat_control::repo::sql::SqlRepo;
use gochat_engines::bus::memory::MemoryBus;
use gochat_engines::state::redis::RedisState;
use gochat_proto::frames::SendFrame;
use gochat_proto::ids::{Id, now_millis};
use gochat_proto::settings::RedisConfig;
use gochat_testkit::stack::stack_setting;

async fn logic() -> Result<(Arc<Logic>, Id, Id)> {
    let repo = Arc::new(
        SqlRepo::connect(
            &format!("{}/gochat", stack_setting("GOCHAT_TEST_MYSQL_URL")?),
            16,
        )
        .await?,
    );
    let state = Arc::new(
        RedisState::connect(&RedisConfig {
            key_prefix: format!("bench{}:", now_millis()),
            ..RedisConfig::at(stack_setting("GOCHAT_TEST_REDIS_URL")?)
        })
        .await?,
    );
    let (bus, _inboxes) = MemoryBus::new();
    let auth = AuthConfig {
        jwt_secret: "bench-secret-bench-secret-bench-secret".into(),
        ..AuthConfig::default()
    };
    let config = LogicConfig {
        sends_per_second: u32::MAX,
        ..LogicConfig::default()
    };
    let stamp = now_millis();
    let a = repo
        .create_user(&format!("bench_a_{stamp}"), "x", "")
        .await?
        .user_id;
    let b = repo
        .create_user(&format!("bench_b_{stamp}"), "x", "")
        .await?
        .user_id;
    let writer = MessageWriter::new(repo, state, Arc::new(bus), config, 7);
    let logic = Logic::new(Arc::new(writer), &auth)?;
    Ok((Arc::new(logic), Id(a), Id(b)))
}

fn send_frame(client_msg_id: String, to: Id) -> SendFrame {
    SendFrame {
        client_msg_id,
        to_user_id: Some(to),
        group_id: None,
        message_type: Default::default(),
        content: "benchmark message".into(),
        metadata: serde_json::json!({}),
        mentions: vec![],
    }
}

/// One send as a batch of one (what a lone REST send costs).
async fn send_one(logic: &Logic, from: Id, frame: SendFrame) -> Result<i64> {
    let send = Send::message(from, frame, None);
    match logic.send_batch(vec![send]).await?.pop() {
        Some(ack) => Ok(ack?.seq_id),
        None => anyhow::bail!("no result"),
    }
}

fn pipeline(c: &mut Criterion) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let (logic, from, to) = match runtime.block_on(logic()) {
        Ok(x) => x,
        Err(e) => panic!("pipeline bench needs the dev stack: {e:#}"),
    };
    let counter = AtomicU64::new(0);
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));
    group.sample_size(50);
    group.bench_function("send_1to1_mariadb_redis", |b| {
        b.to_async(&runtime).iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let logic = logic.clone();
            async move {
                let frame = send_frame(format!("bench-{n}"), to);
                send_one(&logic, from, frame).await
            }
        })
    });
    group.bench_function("resend_dedup_hit", |b| {
        b.to_async(&runtime).iter(|| {
            let logic = logic.clone();
            async move {
                let frame = send_frame("bench-0".into(), to);
                send_one(&logic, from, frame).await
            }
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);

//! The end-to-end scenarios against standalone mode (edge cores and control
//! services in one process on the embedded engines), started in-process on port 0.

#[macro_use]
mod scenarios;
mod support;

use anyhow::Result;
use gochat::standalone::{Flags, Standalone, StandaloneConfig, jwt_secret, start};
use gochat_edge::EdgeListeners;
use serde_json::json;
use support::{Ended, Rest, Target};

async fn standalone(data_dir: &std::path::Path) -> Result<(Target, Standalone)> {
    standalone_with_admins(data_dir, vec![]).await
}

async fn standalone_with_admins(
    data_dir: &std::path::Path,
    admin_usernames: Vec<String>,
) -> Result<(Target, Standalone)> {
    if let Ok(filter) = std::env::var("GOCHAT_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .try_init();
    }
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ws = EdgeListeners::bind("127.0.0.1:0".parse()?, 2)?;
    std::fs::create_dir_all(data_dir)?;
    let flags = Flags {
        cores: Some(2),
        admins: Some(admin_usernames),
        // Groups of 4 or more use the group rooms, smaller ones the
        // per-connection path: the scenarios cover both.
        large_group_threshold: Some(4),
        ..Flags::default()
    };
    let secret = jwt_secret(data_dir)?;
    let config = StandaloneConfig::load(data_dir, None, &[], &flags, &secret)?;
    let running = start(config, http, ws).await?;
    let target = Target {
        rest: Rest::new(format!("http://{}", running.http_addr)),
        ws: vec![format!("ws://{}/ws", running.ws_addr)],
        secret: std::fs::read_to_string(data_dir.join("jwt_secret"))?,
    };
    Ok((target, running))
}

fn data_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gochat-e2e-{}", uuid::Uuid::new_v4().simple()))
}

macro_rules! scenario {
    ($($name:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() -> Result<()> {
            let dir = data_dir();
            let (target, running) = standalone(&dir).await?;
            scenarios::$name(&target).await?;
            running.shutdown().await;
            Ok(())
        }
    )*};
}

every_scenario!(scenario);

/// SIGTERM's path: the edge drains (1013 with a reconnect hint), and every
/// message that was acked is there after a restart on the same data dir.
/// The admin account exists before anyone can register: "admin" is taken,
/// its generated password is in the data dir, and it can broadcast; a
/// restart creates nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_account_is_made_at_first_start() -> Result<()> {
    let dir = data_dir();
    let (target, running) = standalone_with_admins(&dir, vec!["admin".into()]).await?;
    let squat = target
        .post_anonymous(
            "/auth/register",
            json!({"username":"admin","password":"squatter-password"}),
        )
        .await?;
    assert_eq!(squat.0, 409, "the name is taken");
    let written = std::fs::read_to_string(dir.join("admin_password"))?;
    let password = written
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap_or_default()
        .to_owned();
    let (status, session) = target
        .post_anonymous(
            "/auth/login",
            json!({"username":"admin","password":password}),
        )
        .await?;
    assert_eq!(status, 200);
    let r = target
        .http
        .post(target.url("/admin/push"))
        .bearer_auth(session["token"].as_str().unwrap_or_default())
        .json(&json!({"all":true,"title":"t","content":"hello"}))
        .send()
        .await?;
    assert_eq!(r.status(), 202);
    running.shutdown().await;
    let (_, running) = standalone_with_admins(&dir, vec!["admin".into()]).await?;
    assert_eq!(
        std::fs::read_to_string(dir.join("admin_password"))?,
        written
    );
    running.shutdown().await;
    Ok(())
}

/// A logged-out token stays refused after a restart (the in-process
/// revocation list is refilled from the database), on REST and the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_survives_a_restart() -> Result<()> {
    let dir = data_dir();
    let (target, running) = standalone(&dir).await?;
    let alice = target.user("alice").await?;
    let laptop = target.login("alice", "laptop").await?;
    let r = target
        .http
        .post(target.url("/auth/logout"))
        .bearer_auth(&laptop.token)
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    running.shutdown().await;
    let (target, running) = standalone(&dir).await?;
    let me = |token: &str| {
        target
            .http
            .get(target.url("/users/me"))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(me(&laptop.token).await?.status(), 401, "still logged out");
    assert_eq!(
        me(&alice.token).await?.status(),
        200,
        "the other token lives"
    );
    let upgrade = format!("{}?token={}", target.ws[0], laptop.token);
    assert_eq!(support::upgrade_status(&upgrade, None).await?, Some(401));
    running.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_loses_no_acked_message() -> Result<()> {
    let dir = data_dir();
    let (target, running) = standalone(&dir).await?;
    let alice = target.user("alice").await?;
    let bob = target.user("bob").await?;
    let mut a = target.connect(&alice, 0).await?;
    let mut acked = Vec::new();
    for i in 0..30 {
        a.send(json!({"type":"send","client_msg_id":format!("d{i}"),"to_user_id":bob.id,"content":format!("n{i}")})).await?;
    }
    for _ in 0..10 {
        acked.push(a.next_of("ack").await?);
    }
    running.shutdown().await;
    // Whatever else was acked before the close frame counts too.
    loop {
        match a.next().await {
            Ok(frame) if frame["type"] == "ack" => acked.push(frame),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let (target, running) = standalone(&dir).await?;
    target.assert_acked_stored(&bob, &acked).await?;
    running.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_closes_with_a_reconnect_hint() -> Result<()> {
    let dir = data_dir();
    let (target, running) = standalone(&dir).await?;
    let alice = target.user("alice").await?;
    let mut a = target.connect(&alice, 0).await?;
    let closing = tokio::spawn(running.shutdown());
    assert_eq!(a.ended().await?, Ended::Closed(1013));
    closing.await?;
    Ok(())
}

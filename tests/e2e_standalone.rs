//! The end-to-end scenarios against standalone mode (edge cores and control
//! services in one process on the embedded engines), started in-process on port 0.

#[macro_use]
mod scenarios;
mod support;

use anyhow::Result;
use gochat::standalone::{Flags, Standalone, StandaloneConfig, jwt_secret, start};
use gochat_edge::EdgeListeners;
use gochat_edge::config::DriverChoice;
use gochat_proto::tls::ServerTls;
use gochat_testkit::pki::TestPki;
use serde_json::json;
use support::{Ended, Rest, Target};

async fn standalone(data_dir: &std::path::Path) -> Result<(Target, Standalone)> {
    standalone_with(data_dir, vec![], None).await
}

async fn standalone_with_admins(
    data_dir: &std::path::Path,
    admin_usernames: Vec<String>,
) -> Result<(Target, Standalone)> {
    standalone_with(data_dir, admin_usernames, None).await
}

/// Standalone, its gateway on `wss://` with `tls` when given (the client
/// trusting `ca_file`).
async fn standalone_with(
    data_dir: &std::path::Path,
    admin_usernames: Vec<String>,
    tls: Option<(ServerTls, &std::path::Path)>,
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
    let mut config = StandaloneConfig::load(data_dir, None, &[], &flags, &secret)?;
    let (scheme, client_tls) = match tls {
        Some((files, ca_file)) => {
            config.edge.ws.tls = Some(files);
            ("wss", Some(support::trusting(ca_file)?))
        }
        None => ("ws", None),
    };
    let running = start(config, http, ws).await?;
    // The certificate names localhost, as a real one names the host.
    let target = Target {
        rest: Rest::new(format!("http://{}", running.http_addr)),
        ws: vec![format!(
            "{scheme}://localhost:{}/ws",
            running.ws_addr.port()
        )],
        secret: std::fs::read_to_string(data_dir.join("jwt_secret"))?,
        tls: client_tls,
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

/// `wss://` on the gateway: chat works over TLS with a standard client
/// trusting the test's CA; a client in the clear, or one that does not
/// trust the CA, gets no WebSocket; SIGHUP's reload serves a new
/// certificate to new connections while open ones stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_works_over_wss_and_the_certificate_reloads() -> Result<()> {
    let dir = data_dir();
    let pki = TestPki::create(&dir.join("pki"))?;
    let files = ServerTls {
        cert_file: dir.join("wss-cert.pem"),
        key_file: dir.join("wss-key.pem"),
    };
    std::fs::copy(&pki.server_cert, &files.cert_file)?;
    std::fs::copy(&pki.server_key, &files.key_file)?;
    let (target, running) =
        standalone_with(&dir, vec![], Some((files.clone(), &pki.ca_file))).await?;
    scenarios::one_to_one_send_ack_deliver(&target).await?;
    scenarios::offline_then_pull(&target).await?;
    // The web client is told to open wss://.
    let client_config: serde_json::Value = target
        .http
        .get(format!("{}/api/v1/client/config", target.base))
        .send()
        .await?
        .json()
        .await?;
    let ws_url = client_config["ws_url"].as_str().unwrap_or_default();
    assert!(ws_url.starts_with("wss://"), "{client_config}");

    let alice = target.user(&scenarios_unique("wa")).await?;
    let url = format!("{}?token={}", target.ws[0], alice.token);
    let clear = url.replacen("wss://", "ws://", 1);
    assert!(
        support::Client::connect(&clear, None).await.is_err(),
        "ws:// on a wss:// port"
    );
    let other = TestPki::create(&dir.join("other"))?;
    let trusting_other = support::trusting(&other.ca_file)?;
    assert!(
        support::Client::connect_with(&url, None, Some(trusting_other.clone()))
            .await
            .is_err(),
        "a CA the gateway's certificate is not from"
    );

    // A renewed certificate (from the other CA) replaces the files; SIGHUP.
    let mut open = target.connect(&alice, 0).await?;
    std::fs::copy(&other.server_cert, &files.cert_file)?;
    std::fs::copy(&other.server_key, &files.key_file)?;
    running.reload_tls();
    support::Client::connect_with(&url, None, Some(trusting_other)).await?;
    // A client of its own: the target's could resume an earlier session,
    // which needs no certificate.
    let trusting_old = support::trusting(&pki.ca_file)?;
    assert!(
        support::Client::connect_with(&url, None, Some(trusting_old))
            .await
            .is_err(),
        "the old certificate is gone"
    );
    open.send(json!({"type":"ping"})).await?;
    open.next_of("pong").await?;
    running.shutdown().await;
    Ok(())
}

/// TLS records are at most 16 KiB: a message of many records each way,
/// and a burst of small frames (several per record), come back whole
/// through `gochat echo --tls-cert`, on either driver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_echo_carries_large_messages_and_bursts_on_both_drivers() -> Result<()> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = data_dir();
    let pki = TestPki::create(&dir.join("pki"))?;
    // Both drivers: TLS reads through the direct socket calls under each.
    for driver in [DriverChoice::IoUring, DriverChoice::Legacy] {
        let listeners = EdgeListeners::bind("127.0.0.1:0".parse()?, 1)?;
        let port = listeners.local_addr()?.port();
        let server = gochat::links::echo_server(
            listeners,
            Some(ServerTls {
                cert_file: pki.server_cert.clone(),
                key_file: pki.server_key.clone(),
            }),
            driver,
            true,
        )?;
        let url = format!("wss://localhost:{port}/");
        let mut client =
            support::Client::connect_with(&url, None, Some(support::trusting(&pki.ca_file)?))
                .await?;
        let large: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        client.ws.send(Message::binary(large.clone())).await?;
        for i in 0..500 {
            client.ws.feed(Message::text(format!("frame {i}"))).await?;
        }
        client.ws.flush().await?;
        let wait = support::WAIT;
        match tokio::time::timeout(wait, client.ws.next()).await? {
            Some(Ok(Message::Binary(echoed))) => assert!(echoed[..] == large[..], "large message"),
            other => anyhow::bail!("expected the large echo, got {other:?}"),
        }
        for i in 0..500 {
            match tokio::time::timeout(wait, client.ws.next()).await? {
                Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), format!("frame {i}")),
                other => anyhow::bail!("expected frame {i}, got {other:?}"),
            }
        }
        server.stop().await;
    }
    Ok(())
}

fn scenarios_unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

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

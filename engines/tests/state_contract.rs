//! Both state stores keep one contract (the session registry, the gateway
//! directory, revocation, rate limits): the in-process one, and Redis on the
//! dev stack, in the clear and over TLS (a Redis of our own started with a
//! certificate made here, as an operator would run `rediss://`).

use std::time::Duration;

use anyhow::{Context, Result};
use gochat_engines::state::StateStore;
use gochat_engines::state::memory::MemoryState;
use gochat_engines::state::redis::{RedisState, client};
use gochat_proto::settings::{ClientTls, RedisConfig};
use gochat_testkit::pki::TestPki;
use gochat_testkit::process::{Server, free_port, redis_command};
use gochat_testkit::stack::{stack_setting, unique};
use gochat_testkit::state_contract::{gateway_directory, named_budgets, routes_and_revocation};

#[tokio::test]
async fn memory_state_keeps_the_contract() {
    let store = MemoryState::new();
    routes_and_revocation(&store, 100).await;
    gateway_directory(&store).await;
    named_budgets(&store, "budget").await;
}

#[tokio::test]
async fn redis_state_keeps_the_contract() -> Result<()> {
    let config = RedisConfig {
        key_prefix: unique("st") + ":",
        ..RedisConfig::at(stack_setting("GOCHAT_TEST_REDIS_URL")?)
    };
    let store = RedisState::connect(&config).await?;
    routes_and_revocation(&store, 100).await;
    gateway_directory(&store).await;
    named_budgets(&store, "budget").await;
    Ok(())
}

/// A `redis-server` serving TLS only, on a port of its own.
fn tls_redis(pki: &TestPki, require_client_cert: bool) -> Result<Server> {
    let port = free_port()?;
    let mut command = redis_command();
    command
        .arg("--tls-port")
        .arg(port.to_string())
        .arg("--tls-cert-file")
        .arg(&pki.server_cert)
        .arg("--tls-key-file")
        .arg(&pki.server_key)
        .arg("--tls-ca-cert-file")
        .arg(&pki.ca_file)
        .args([
            "--tls-auth-clients",
            if require_client_cert { "yes" } else { "no" },
        ]);
    Server::spawn(command, port)
}

/// Connects, retrying while the server starts.
async fn connect_when_up(config: &RedisConfig) -> Result<RedisState> {
    let mut last = None;
    for _ in 0..50 {
        match RedisState::connect(config).await {
            Ok(store) => return Ok(store),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last.context("no attempt")?.into())
}

/// Does one connection attempt fail? (The state's connection manager
/// retries with back-off; the client underneath is the same.)
async fn refused(config: &RedisConfig) -> bool {
    match client(config) {
        Ok(client) => client.get_multiplexed_async_connection().await.is_err(),
        Err(_) => true,
    }
}

#[tokio::test]
async fn redis_state_keeps_the_contract_over_tls() -> Result<()> {
    let dir = std::env::temp_dir().join(unique("gochat-redis-tls-"));
    let pki = TestPki::create(&dir)?;
    let server = tls_redis(&pki, true)?;
    let mut config = RedisConfig {
        key_prefix: unique("st") + ":",
        tls: Some(ClientTls {
            ca_file: Some(pki.ca_file.clone()),
            cert_file: Some(pki.client_cert.clone()),
            key_file: Some(pki.client_key.clone()),
        }),
        ..RedisConfig::at(format!("rediss://localhost:{}", server.port))
    };
    let store = connect_when_up(&config).await?;
    store.ping().await?;
    routes_and_revocation(&store, 100).await;
    gateway_directory(&store).await;
    named_budgets(&store, "budget").await;
    // Refusals: no client certificate where the server requires one, a CA
    // that did not sign the server's certificate, TLS files on redis://.
    let no_client_cert = RedisConfig {
        tls: Some(ClientTls {
            ca_file: Some(pki.ca_file.clone()),
            ..ClientTls::default()
        }),
        ..config.clone()
    };
    assert!(refused(&no_client_cert).await);
    let other = TestPki::create(&dir.join("other"))?;
    let untrusted = RedisConfig {
        tls: Some(ClientTls {
            ca_file: Some(other.ca_file.clone()),
            cert_file: Some(pki.client_cert.clone()),
            key_file: Some(pki.client_key.clone()),
        }),
        ..config.clone()
    };
    assert!(refused(&untrusted).await);
    config.url = format!("redis://localhost:{}", server.port);
    assert!(client(&config).is_err());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

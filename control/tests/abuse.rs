//! Abuse a client could try on the REST API, and what it may cost the
//! server: a flood of logins with wrong passwords, half-sent requests, more
//! connections than the listener takes; and what the web page allows.

mod support;

use anyhow::Result;
use gochat_control::config::AuthConfig;
use serde_json::json;
use support::{Backend, start_with, test_config};

/// The process's resident memory, from `/proc/self/status`.
fn rss_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(kib * 1024)
}

/// 64 wrong-password logins at once with the production hash cost (19 MiB
/// each): hashing takes turns, so memory grows by a few hashes' worth, not
/// 64; each login is refused (401) or told to come back (429 with
/// `Retry-After`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_costs_bounded_memory() -> Result<()> {
    let mut config = test_config(Backend::Embedded).await?;
    config.auth = AuthConfig {
        argon2_memory_kib: 19 * 1024,
        argon2_iterations: 2,
        max_concurrent_hashes: 2,
        ..config.auth
    };
    let s = start_with(config).await?;
    s.user("victim").await?;
    let before = rss_bytes()?;
    let attempts = (0..64).map(|i| {
        let http = s.http.clone();
        let url = format!("{}/api/v1/auth/login", s.base);
        async move {
            let r = http
                .post(url)
                .json(&json!({"username":"victim","password":format!("wrong-{i}-password")}))
                .send()
                .await?;
            let retry_after = r.headers().get("retry-after").is_some();
            anyhow::Ok((r.status().as_u16(), retry_after))
        }
    });
    for (status, retry_after) in futures::future::try_join_all(attempts).await? {
        assert!(
            status == 401 || (status == 429 && retry_after),
            "a wrong login answered {status}"
        );
    }
    let grown = rss_bytes()?.saturating_sub(before);
    assert!(
        grown < 256 * 1024 * 1024,
        "64 concurrent logins grew memory by {} MiB",
        grown / 1024 / 1024
    );
    Ok(())
}

/// A request whose headers never finish (slowloris) is dropped after
/// `http.header_read_timeout_secs`, not kept forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_dropped() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = test_config(Backend::Embedded).await?;
    config.http.header_read_timeout_secs = 1;
    let s = start_with(config).await?;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(
        matches!(read, Ok(Ok(_))),
        "the server closed the half-sent request"
    );
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    Ok(())
}

/// Past `http.max_connections` the API answers 503 with `Retry-After` at
/// once, while the health endpoints still answer from a small reserve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_listener_refuses_fast_and_keeps_answering_health_checks() -> Result<()> {
    let mut config = test_config(Backend::Embedded).await?;
    config.http.max_connections = 3;
    let s = start_with(config).await?;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(&addr).await?);
    }
    // Let the server accept them before the next ones arrive.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let fresh = || reqwest::Client::builder().pool_max_idle_per_host(0).build();
    let api = fresh()?
        .get(format!("{}/api/v1/users/me", s.base))
        .send()
        .await?;
    assert_eq!(api.status(), 503);
    assert!(api.headers().get("retry-after").is_some());
    let health = fresh()?.get(format!("{}/healthz", s.base)).send().await?;
    assert_eq!(health.status(), 200, "health checks still answered");
    drop(idle);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let api = fresh()?
        .get(format!("{}/api/v1/users/me", s.base))
        .send()
        .await?;
    assert_eq!(api.status(), 401, "served again once connections closed");
    Ok(())
}

/// The web client's page runs only its own scripts and is never framed:
/// a message that slipped past the checks still cannot run.
#[tokio::test]
async fn the_web_client_page_has_a_content_security_policy() -> Result<()> {
    let s = start_with(test_config(Backend::Embedded).await?).await?;
    let page = s.http.get(format!("{}/", s.base)).send().await?;
    assert_eq!(page.status(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    for directive in [
        "script-src 'self';",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    Ok(())
}

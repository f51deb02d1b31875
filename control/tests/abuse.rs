//! Abuse a client could try on the REST API, and what it may cost the
//! server: a flood of logins with wrong passwords.

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

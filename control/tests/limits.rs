//! The abuse limits of PROTOCOL v1.1 against a real server on port 0:
//! registrations and logins per client address, failed logins per
//! username (which then refuse even the right password), and the per-user
//! budget of REST calls, each a 429 `rate_limited` with `Retry-After`; a
//! client's own `X-Forwarded-For` changes nothing.

mod support;

use anyhow::Result;
use gochat_control::config::LimitsConfig;
use reqwest::Response;
use serde_json::json;
use support::{Backend, start_with, test_config};

async fn refused(r: Response) -> Result<bool> {
    let status = r.status().as_u16();
    let retry_after: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if status != 429 {
        return Ok(false);
    }
    let body: serde_json::Value = r.json().await?;
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(retry_after >= 1, "Retry-After says when");
    Ok(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_answers_429_with_retry_after() -> Result<()> {
    let mut config = test_config(Backend::Embedded).await?;
    config.limits = LimitsConfig {
        login_failures_per_username: 3,
        login_failure_window_secs: 300,
        logins_per_address_per_minute: 6,
        registrations_per_address_per_minute: 3,
        rest_per_user_per_second: 1,
        rest_burst: 5,
    };
    let s = start_with(config).await?;
    let register = |name: &str, forwarded: &str| {
        s.http
            .post(s.url("/auth/register"))
            .header("x-forwarded-for", forwarded.to_owned())
            .json(&json!({"username": name, "password": "password-123"}))
            .send()
    };
    for (i, name) in ["lim_a", "lim_b", "lim_c"].iter().enumerate() {
        let r = register(name, &format!("203.0.113.{i}")).await?;
        assert_eq!(r.status().as_u16(), 201);
    }
    // A forged X-Forwarded-For is not believed from an untrusted peer.
    assert!(refused(register("lim_d", "198.51.100.7").await?).await?);

    let login = |name: &str, password: &str| {
        s.http
            .post(s.url("/auth/login"))
            .json(&json!({"username": name, "password": password}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            login("lim_a", "wrong-password").await?.status().as_u16(),
            401
        );
    }
    // Three failures lock the name: the right password waits too.
    assert!(refused(login("lim_a", "password-123").await?).await?);
    let r = login("lim_b", "password-123").await?;
    assert_eq!(r.status().as_u16(), 200, "another name is not locked");
    let token = r.json::<serde_json::Value>().await?["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Six logins from this address in a minute (the refused one above did
    // not count): the seventh waits.
    for _ in 0..2 {
        assert_eq!(login("lim_c", "password-123").await?.status().as_u16(), 200);
    }
    assert!(refused(login("lim_c", "password-123").await?).await?);

    // A burst of five calls, then one a second.
    let me = || s.http.get(s.url("/users/me")).bearer_auth(&token).send();
    for _ in 0..5 {
        assert_eq!(me().await?.status().as_u16(), 200);
    }
    assert!(refused(me().await?).await?);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(me().await?.status().as_u16(), 200, "the budget refills");
    Ok(())
}

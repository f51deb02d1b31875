//! Getting a run ready: source addresses, tokens, users and a group through
//! the public REST API, and the server's CPU time for per-core figures.

use std::net::IpAddr;

use anyhow::{Context, Result, bail};
use gochat_proto::auth::{Claims, unix_secs};
use serde_json::{Value, json};

const PASSWORD: &str = "loadgen-password";

/// `127.0.0.1-127.0.0.16` → every address of the range.
pub fn source_ips(spec: &str) -> Result<Vec<IpAddr>> {
    let (first, last) = spec.split_once('-').unwrap_or((spec, spec));
    let (first, last): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (first.parse()?, last.parse()?);
    let (a, b) = (u32::from(first), u32::from(last));
    if b < a {
        bail!("source range {spec} is empty");
    }
    Ok((a..=b).map(|n| IpAddr::V4(n.into())).collect())
}

/// A token for `user`, signed with the gateways' secret.
pub fn mint(user: i64, secret: &str) -> Result<String> {
    let now = unix_secs();
    let claims = Claims {
        sub: user.to_string(),
        exp: now + 86_400,
        iat: now,
        jti: uuid::Uuid::new_v4().simple().to_string(),
        did: "loadgen".into(),
    };
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Real users `lg_<run>_<i>`, registered through the REST API, a few at a
/// time (each costs the server a password hash); ids in order of `i`.
pub async fn register_users(
    client: &reqwest::Client,
    http: &str,
    run: &str,
    count: usize,
) -> Result<Vec<i64>> {
    use futures::{StreamExt, TryStreamExt};
    futures::stream::iter(0..count)
        .map(|i| async move {
            let name = format!("lg_{run}_{i}");
            let r: Value = client
                .post(format!("{http}/api/v1/auth/register"))
                .json(&json!({"username": name, "password": PASSWORD}))
                .send()
                .await?
                .json()
                .await?;
            let id: i64 = r["user_id"]
                .as_str()
                .context("register answered no user_id")?
                .parse()?;
            anyhow::Ok(id)
        })
        .buffered(8)
        .try_collect()
        .await
}

/// Logs in `lg_<run>_0` and makes a group of every user in `members`
/// (the creator is one of them); returns the group id.
pub async fn create_group(
    client: &reqwest::Client,
    http: &str,
    run: &str,
    members: &[i64],
) -> Result<i64> {
    let login: Value = client
        .post(format!("{http}/api/v1/auth/login"))
        .json(&json!({"username": format!("lg_{run}_0"), "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = login["token"].as_str().context("login answered no token")?;
    let ids = |chunk: &[i64]| chunk.iter().map(i64::to_string).collect::<Vec<_>>();
    // The API takes at most 500 invitations per call.
    let mut chunks = members[1..].chunks(500);
    let group: Value = client
        .post(format!("{http}/api/v1/groups"))
        .bearer_auth(token)
        .json(&json!({"name": format!("loadgen {run}"), "member_ids": ids(chunks.next().unwrap_or_default())}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let group_id = group["group_id"]
        .as_str()
        .context("no group_id")?
        .to_owned();
    for chunk in chunks {
        client
            .post(format!("{http}/api/v1/groups/{group_id}/members"))
            .bearer_auth(token)
            .json(&json!({"user_ids": ids(chunk)}))
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(group_id.parse()?)
}

/// CPU seconds (user + system) a process has used so far, from `/proc`.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which may itself hold spaces: utime, stime are 14, 15.
    let rest = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).context("utime")?.parse::<f64>()?
        + fields.get(12).context("stime")?.parse::<f64>()?;
    // USER_HZ is 100 on every Linux this runs on.
    Ok(ticks / 100.0)
}

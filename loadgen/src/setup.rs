//! Getting a run ready: source addresses, tokens, users and a group through
//! the public REST API, and the server's CPU time for per-core figures.

use std::net::IpAddr;

use anyhow::{Context, Result, bail};
use gochat_proto::auth::{Claims, unix_secs};
use serde_json::{Value, json};

const PASSWORD: &str = "loadgen-password";

/// `127.0.0.1-127.0.0.16` → every address of the range.
pub fn source_ips(spec: &str) -> Result<Vec<IpAddr>> {
    let mut all = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (first, last): (std::net::Ipv4Addr, std::net::Ipv4Addr) =
            (first.parse()?, last.parse()?);
        let (a, b) = (u32::from(first), u32::from(last));
        if b < a {
            bail!("source range {part} is empty");
        }
        all.extend((a..=b).map(|n| IpAddr::V4(n.into())));
    }
    if all.is_empty() {
        bail!("no source addresses in {spec:?}");
    }
    Ok(all)
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

/// The admin account that creates users in bulk.
pub struct Admin<'a> {
    /// Its username.
    pub username: &'a str,
    /// Its password.
    pub password: &'a str,
}

impl<'a> Admin<'a> {
    /// From the admin password file: standalone's `username: …` and
    /// `password: …` lines, or a password alone (then `username` is used).
    pub fn from_file(text: &'a str, username: &'a str) -> Self {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        Admin {
            username: field("username").unwrap_or(username),
            password: field("password").unwrap_or(text.trim()),
        }
    }
}

/// Accounts per `POST /admin/users` (the endpoint takes at most 1,000).
const BULK: usize = 1000;

/// The same users as [`register_users`], created through `POST /admin/users`
/// as `admin`: no registration limits apply, a thousand per call, two calls
/// at a time (each hashes its passwords on the server).
pub async fn create_users(
    client: &reqwest::Client,
    http: &str,
    admin: &Admin<'_>,
    run: &str,
    count: usize,
) -> Result<Vec<i64>> {
    use futures::{StreamExt, TryStreamExt};
    let token = login(client, http, admin.username, admin.password).await?;
    let chunks: Vec<Vec<usize>> = (0..count)
        .collect::<Vec<_>>()
        .chunks(BULK)
        .map(<[usize]>::to_vec)
        .collect();
    let created: Vec<Vec<i64>> = futures::stream::iter(chunks)
        .map(|chunk| {
            let token = token.clone();
            async move {
                let users: Vec<Value> = chunk
                    .iter()
                    .map(|i| json!({"username": format!("lg_{run}_{i}"), "password": PASSWORD}))
                    .collect();
                let r: Value = client
                    .post(format!("{http}/api/v1/admin/users"))
                    .bearer_auth(&token)
                    .json(&json!({ "users": users }))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                r["user_ids"]
                    .as_array()
                    .context("POST /admin/users answered no user_ids")?
                    .iter()
                    .map(|id| Ok(id.as_str().context("a user id")?.parse::<i64>()?))
                    .collect::<Result<Vec<i64>>>()
            }
        })
        .buffered(2)
        .try_collect()
        .await?;
    Ok(created.into_iter().flatten().collect())
}

/// A token for `username`.
/// `POST /admin/push` to everyone, as `admin`, with `content`.
pub async fn push_to_all(
    client: &reqwest::Client,
    http: &str,
    admin: &Admin<'_>,
    content: &str,
) -> Result<()> {
    let token = login(client, http, admin.username, admin.password).await?;
    client
        .post(format!("{http}/api/v1/admin/push"))
        .bearer_auth(&token)
        .json(&json!({"all": true, "title": "loadgen", "content": content}))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

async fn login(
    client: &reqwest::Client,
    http: &str,
    username: &str,
    password: &str,
) -> Result<String> {
    let login: Value = client
        .post(format!("{http}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("logging in as {username}"))?
        .json()
        .await?;
    Ok(login["token"]
        .as_str()
        .context("login answered no token")?
        .to_owned())
}

/// Logs in `lg_<run>_0` and makes a group of every user in `members`
/// (the creator is one of them); returns the group id.
pub async fn create_group(
    client: &reqwest::Client,
    http: &str,
    run: &str,
    members: &[i64],
) -> Result<i64> {
    let token = &login(client, http, &format!("lg_{run}_0"), PASSWORD).await?;
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

#[cfg(test)]
mod tests {
    use super::Admin;

    #[test]
    fn the_admin_file_is_standalones_or_a_bare_password() {
        let a = Admin::from_file("username: root\npassword: s3cret \n", "admin");
        assert_eq!((a.username, a.password), ("root", "s3cret"));
        let b = Admin::from_file("s3cret\n", "admin");
        assert_eq!((b.username, b.password), ("admin", "s3cret"));
    }
}

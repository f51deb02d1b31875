//! The REST calls the checker makes, as a careful client of docs/protocol.md
//! §2 would: register and log in, make a group, list conversations, and pull
//! a conversation's history page by page. Calls made while a fault may still
//! be healing are retried until a deadline, so a slow recovery shows up as
//! time, not as a false failure.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::time::Instant;

/// Every test user's password.
const PASSWORD: &str = "chaos-password";

/// One stored message as history returns it: what the checks compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its seq in the conversation.
    pub seq: i64,
    /// The server's message id.
    pub message_id: String,
    /// The sender's client_msg_id (absent on system messages).
    pub client_msg_id: Option<String>,
    /// The sender's user id.
    pub from: String,
}

impl Entry {
    /// Reads a `message` frame or a history message object.
    pub fn from_json(v: &Value) -> Option<Entry> {
        Some(Entry {
            seq: v["seq_id"].as_i64()?,
            message_id: v["message_id"].as_str()?.to_owned(),
            client_msg_id: v["client_msg_id"].as_str().map(str::to_owned),
            from: v["from_user_id"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// The REST API of the cluster's control process.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// A client for `base` (`http://127.0.0.1:PORT`); every request gives up
    /// after a few seconds, so a paused server cannot hang a caller.
    pub fn new(base: &str) -> Result<Self> {
        Ok(Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(2))
                .build()?,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// One call: (status, body or null).
    async fn call(&self, req: reqwest::RequestBuilder) -> Result<(u16, Value)> {
        let r = req.send().await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// Repeats `f` while it fails with a transport error or an answer worth
    /// retrying (429, 5xx), until `within` has passed.
    async fn retrying<F, Fut>(&self, what: &str, within: Duration, f: F) -> Result<Value>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(u16, Value)>>,
    {
        self.retrying_or(what, within, None, f).await
    }

    /// As `retrying`, answering `missing` for a 404.
    async fn retrying_or<F, Fut>(
        &self,
        what: &str,
        within: Duration,
        missing: Option<Value>,
        f: F,
    ) -> Result<Value>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(u16, Value)>>,
    {
        let deadline = Instant::now() + within;
        loop {
            let last = match f().await {
                Ok((status, body)) if (200..300).contains(&status) => return Ok(body),
                Ok((404, _)) if missing.is_some() => {
                    return Ok(missing.clone().unwrap_or_default());
                }
                Ok((status, body)) if status == 429 || status >= 500 => {
                    format!("{status} {body}")
                }
                Ok((status, body)) => bail!("{what}: {status} {body}"),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                bail!("{what}: still failing after {within:?}: {last}");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Registers `name` and logs it in on device `device`: (user id, token).
    pub async fn user(&self, name: &str, device: &str) -> Result<(i64, String)> {
        let within = Duration::from_secs(30);
        let body = json!({"username": name, "password": PASSWORD});
        let deadline = Instant::now() + within;
        loop {
            // 409: an earlier try got through before its answer was lost.
            match self
                .call(self.http.post(self.url("/auth/register")).json(&body))
                .await
            {
                Ok((201 | 409, _)) => break,
                Ok((status, b)) if status < 500 && status != 429 => {
                    bail!("register {name}: {status} {b}")
                }
                _ if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(300)).await
                }
                other => bail!("register {name}: {other:?}"),
            }
        }
        let login = json!({"username": name, "password": PASSWORD, "device_id": device});
        let r = self
            .retrying(&format!("login {name}"), within, || {
                self.call(self.http.post(self.url("/auth/login")).json(&login))
            })
            .await?;
        let id = r["user_id"]
            .as_str()
            .context("login answered no user_id")?
            .parse()?;
        let token = r["token"].as_str().context("login answered no token")?;
        Ok((id, token.to_owned()))
    }

    /// Makes a group of `members` (besides the caller): its id.
    pub async fn group(&self, token: &str, name: &str, members: &[i64]) -> Result<i64> {
        let ids: Vec<String> = members.iter().map(i64::to_string).collect();
        let body = json!({"name": name, "member_ids": ids});
        // Not retried on a lost answer: a second group would only be unused.
        let r = self
            .retrying("create group", Duration::from_secs(30), || {
                self.call(
                    self.http
                        .post(self.url("/groups"))
                        .bearer_auth(token)
                        .json(&body),
                )
            })
            .await?;
        Ok(r["group_id"].as_str().context("no group_id")?.parse()?)
    }

    /// `GET /conversations`: conversation id → last_seq_id.
    pub async fn conversations(&self, token: &str, within: Duration) -> Result<Vec<(String, i64)>> {
        let r = self
            .retrying("list conversations", within, || {
                self.call(self.http.get(self.url("/conversations")).bearer_auth(token))
            })
            .await?;
        let list = r["conversations"]
            .as_array()
            .context("no conversations array")?;
        Ok(list
            .iter()
            .filter_map(|c| {
                Some((
                    c["conversation_id"].as_str()?.to_owned(),
                    c["last_seq_id"].as_i64()?,
                ))
            })
            .collect())
    }

    /// Every message of `cid` above `after`, paging `after_seq` to the end
    /// (none for a conversation that does not exist yet).
    pub async fn pull(
        &self,
        token: &str,
        cid: &str,
        after: i64,
        within: Duration,
    ) -> Result<Vec<Entry>> {
        let mut all = Vec::new();
        let mut after = after;
        loop {
            let path = format!("/conversations/{cid}/messages?after_seq={after}&limit=200");
            // A 1:1 conversation with no message yet is 404: nothing stored.
            let none = json!({"messages": [], "has_more": false});
            let page = self
                .retrying_or(&format!("pull {cid}"), within, Some(none), || {
                    self.call(self.http.get(self.url(&path)).bearer_auth(token))
                })
                .await?;
            let batch = page["messages"].as_array().context("no messages array")?;
            for m in batch {
                all.push(Entry::from_json(m).context("a history message without seq or id")?);
            }
            let last = all.last().map_or(after, |e| e.seq);
            if !page["has_more"].as_bool().unwrap_or(false) || last == after {
                return Ok(all);
            }
            after = last;
        }
    }
}

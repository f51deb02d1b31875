//! The end-to-end harness: a target (standalone in-process, or the local
//! cluster) and a WebSocket client that is a standard one (tokio-tungstenite),
//! not the project's own code.
#![allow(dead_code, missing_docs)]

pub mod cluster;

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::{SinkExt, StreamExt};
pub use gochat_testkit::rest::{Rest, User};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// A TLS client trusting only the CA in `ca_file` (a test's own).
pub fn trusting(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>> {
    Ok(gochat_proto::tls::client_config(false, Some(ca_file))?)
}

pub const WAIT: Duration = Duration::from_secs(15);

/// Where the product under test answers: its REST API (through the shared
/// [`Rest`] client: `t.user(..)`, `t.get(..)`, `t.post(..)`, `t.base`) and
/// its gateways.
pub struct Target {
    /// The REST API.
    pub rest: Rest,
    /// WebSocket URLs of the gateways (`ws://host:port/ws`); standalone has one.
    pub ws: Vec<String>,
    /// The token secret (to forge expired tokens like a clock would).
    pub secret: String,
    /// For `wss://` gateways: the client TLS config trusting their CA.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Deref for Target {
    type Target = Rest;
    fn deref(&self) -> &Rest {
        &self.rest
    }
}

impl Target {
    /// Every message of a conversation, paging `after_seq`.
    pub async fn pull_all(&self, user: &User, cid: &str) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let (status, page) = self
                .get(
                    user,
                    &format!("/conversations/{cid}/messages?after_seq={after}&limit=200"),
                )
                .await?;
            anyhow::ensure!(status == 200, "pull {cid}: {status} {page}");
            let batch = page["messages"].as_array().cloned().unwrap_or_default();
            after = batch
                .last()
                .and_then(|m| m["seq_id"].as_i64())
                .unwrap_or(after);
            all.extend(batch);
            if !page["has_more"].as_bool().unwrap_or(false) {
                return Ok(all);
            }
        }
    }

    /// Every acked message is stored, as `user` sees it (no acked message lost).
    pub async fn assert_acked_stored(&self, user: &User, acked: &[Value]) -> Result<()> {
        let cid = acked
            .first()
            .and_then(|a| a["conversation_id"].as_str())
            .context("no ack")?;
        let stored = self.pull_all(user, cid).await?;
        for ack in acked {
            anyhow::ensure!(
                stored.iter().any(|m| m["message_id"] == ack["message_id"]),
                "acked {ack} is not stored"
            );
        }
        Ok(())
    }

    /// Connects `user` to gateway `gateway` (index into `ws`) as a device of its own.
    pub async fn connect(&self, user: &User, gateway: usize) -> Result<Client> {
        let device = format!("d{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        self.connect_device(user, gateway, &device).await
    }

    /// Connects `user` to gateway `gateway` as `device`.
    pub async fn connect_device(
        &self,
        user: &User,
        gateway: usize,
        device: &str,
    ) -> Result<Client> {
        Client::connect_with(
            &format!(
                "{}?token={}&device_id={device}",
                self.ws[gateway % self.ws.len()],
                user.token
            ),
            None,
            self.tls.clone(),
        )
        .await
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code.
    Closed(u16),
    /// The TCP connection dropped without a close frame.
    Dropped,
}

impl Client {
    pub async fn connect(url: &str, origin: Option<&str>) -> Result<Self> {
        Self::connect_with(url, origin, None).await
    }

    /// Connects with `tls` for a `wss://` URL (the system's roots without).
    pub async fn connect_with(
        url: &str,
        origin: Option<&str>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Self> {
        let mut request = url.into_client_request()?;
        if let Some(origin) = origin {
            request.headers_mut().insert("Origin", origin.parse()?);
        }
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            false,
            tls.map(Connector::Rustls),
        );
        let (ws, _) = tokio::time::timeout(WAIT, connect).await??;
        Ok(Self { ws })
    }

    pub async fn send(&mut self, value: Value) -> Result<()> {
        self.ws.send(Message::text(value.to_string())).await?;
        Ok(())
    }

    pub async fn send_raw(&mut self, message: Message) -> Result<()> {
        self.ws.send(message).await?;
        Ok(())
    }

    /// Writes raw bytes on the socket (hand-made frames the client library would refuse to send).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        self.ws.get_mut().write_all(bytes).await?;
        Ok(())
    }

    /// The next JSON frame.
    pub async fn next(&mut self) -> Result<Value> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .context("no frame in time")?
                .context("connection ended")??;
            match message {
                Message::Text(text) => return Ok(serde_json::from_str(&text)?),
                Message::Close(frame) => bail!("closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// The next frame of type `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Result<Value> {
        loop {
            let frame = self.next().await?;
            if frame["type"] == kind {
                return Ok(frame);
            }
        }
    }

    /// Every JSON frame until the connection ends, and how it ended.
    pub async fn rest(&mut self) -> Result<(Vec<Value>, Ended)> {
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .context("still open")?
            {
                Some(Ok(Message::Text(text))) => frames.push(serde_json::from_str(&text)?),
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(1005, |f| f.code.into());
                    return Ok((frames, Ended::Closed(code)));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ok((frames, Ended::Dropped)),
            }
        }
    }

    /// Reads until the connection ends.
    pub async fn ended(&mut self) -> Result<Ended> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .context("still open")?
            {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Ok(Ended::Closed(frame.code.into()));
                }
                Some(Ok(Message::Close(None))) => return Ok(Ended::Closed(1005)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ok(Ended::Dropped),
            }
        }
    }
}

/// The status a refused upgrade got (`None` if it was accepted).
pub async fn upgrade_status(url: &str, origin: Option<&str>) -> Result<Option<u16>> {
    match Client::connect(url, origin).await {
        Ok(_) => Ok(None),
        Err(e) => match e.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
            Some(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Ok(Some(response.status().as_u16()))
            }
            _ => Err(e),
        },
    }
}

/// A Prometheus text exposition, read for tests.
pub struct Scrape(String);

impl Scrape {
    /// `GET {base}/metrics`.
    pub async fn of(base: &str) -> Result<Self> {
        let response = reqwest::get(format!("{base}/metrics")).await?;
        anyhow::ensure!(response.status() == 200, "/metrics: {}", response.status());
        Ok(Self(response.text().await?))
    }

    /// Every metric name in it.
    ///
    /// A family's name comes from its `# TYPE` line too: a histogram's
    /// series are only `_bucket`, `_sum` and `_count`.
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.0
            .lines()
            .filter_map(|l| match l.strip_prefix("# TYPE ") {
                Some(family) => family.split(' ').next(),
                None if l.starts_with('#') => None,
                None => l.split([' ', '{']).next(),
            })
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The sum of the series of `name` whose labels contain each of `labels`
    /// (`outcome="ok"`); `None` when no series of that name is there.
    pub fn sum(&self, name: &str, labels: &[&str]) -> Option<f64> {
        let mut found = None;
        for line in self.0.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (metric, series_labels) = series.split_once('{').unwrap_or((series, ""));
            if metric != name || !labels.iter().all(|l| series_labels.contains(l)) {
                continue;
            }
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
        }
        found
    }
}

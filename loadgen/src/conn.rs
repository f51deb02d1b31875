//! One load-generating connection: a standard WebSocket client
//! (tokio-tungstenite) bound to a chosen source address, and the counters and
//! latency histogram every connection feeds.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
/// Counters shared by every connection.
pub struct Stats {
    /// Connections open now.
    pub connected: AtomicU64,
    /// Connections that failed to open.
    pub connect_errors: AtomicU64,
    /// Connections the server (or the network) closed.
    pub closed: AtomicU64,
    /// Frames sent from outboxes.
    pub sent: AtomicU64,
    /// `message` frames (chat) or echoes (echo) received.
    pub received: AtomicU64,
    /// `ack` frames received.
    pub acked: AtomicU64,
    /// `error` frames received.
    pub errors: AtomicU64,
}

/// Frames to send on one connection.
pub type Outbox = mpsc::UnboundedSender<String>;

/// What a connection does besides holding on.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    /// Speaks the chat protocol: heartbeats, sends from the outbox, and the
    /// latency of every `message` whose content carries a send time.
    Chat { heartbeat: Duration },
    /// Against `gochat echo`: keeps `window` frames in flight and sends the
    /// next as each echo returns (the edge's whole WebSocket path, no backend).
    Echo { window: usize },
}

/// One connection: heartbeats, outgoing sends, latency of incoming messages.
pub async fn connect(
    url: String,
    source: IpAddr,
    origin: Option<String>,
    role: Role,
    stats: Arc<Stats>,
    latency: Arc<Mutex<Histogram<u64>>>,
    epoch: Instant,
) -> Result<Outbox> {
    let target: SocketAddr = {
        let rest = url.strip_prefix("ws://").context("ws:// URLs only")?;
        let host = rest.split('/').next().context("host")?;
        tokio::net::lookup_host(host)
            .await?
            .next()
            .context("no address")?
    };
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(target).await?;
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )?;
    if let Some(origin) = origin {
        request.headers_mut().insert("Origin", origin.parse()?);
    }
    let (ws, _) = tokio_tungstenite::client_async(request, stream).await?;
    let (mut write, mut read) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let stamp = move || format!("lg:{}", epoch.elapsed().as_micros());
    tokio::spawn(async move {
        let heartbeat = match role {
            Role::Chat { heartbeat } => heartbeat,
            Role::Echo { .. } => Duration::from_secs(3600),
        };
        if let Role::Echo { window } = role {
            for _ in 0..window {
                if write.feed(Message::text(stamp())).await.is_err() {
                    break;
                }
            }
            let _ = write.flush().await;
        }
        let mut beat = tokio::time::interval(heartbeat);
        beat.tick().await;
        loop {
            tokio::select! {
                _ = beat.tick() => {
                    if write.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() { break; }
                }
                out = rx.recv() => match out {
                    Some(text) => {
                        if write.send(Message::text(text)).await.is_err() { break; }
                        stats.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    None => break,
                },
                incoming = read.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        let sent_at = match role {
                            Role::Echo { .. } => {
                                // Send the next before doing the bookkeeping of this one.
                                if write.send(Message::text(stamp())).await.is_err() { break; }
                                stats.received.fetch_add(1, Ordering::Relaxed);
                                sent_time(&text)
                            }
                            Role::Chat { .. } => {
                                let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                                match frame["type"].as_str() {
                                    Some("message") => {
                                        stats.received.fetch_add(1, Ordering::Relaxed);
                                        frame["content"].as_str().and_then(sent_time)
                                    }
                                    Some("ack") => { stats.acked.fetch_add(1, Ordering::Relaxed); None }
                                    Some("error") => { stats.errors.fetch_add(1, Ordering::Relaxed); None }
                                    _ => None,
                                }
                            }
                        };
                        if let Some(sent_at) = sent_at {
                            let now = epoch.elapsed().as_micros() as u64;
                            let _ = latency.lock().await.record(now.saturating_sub(sent_at).max(1));
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                },
            }
        }
        stats.connected.fetch_sub(1, Ordering::Relaxed);
        stats.closed.fetch_add(1, Ordering::Relaxed);
    });
    Ok(tx)
}

/// The send time (µs since the run began) a content of `lg:<µs>` carries.
fn sent_time(content: &str) -> Option<u64> {
    content.strip_prefix("lg:")?.parse().ok()
}

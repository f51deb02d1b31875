//! One load-generating connection: a standard WebSocket client
//! (tokio-tungstenite) bound to a chosen source address, and the counters and
//! latency histogram every connection feeds.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// Counters shared by every connection.
#[derive(Default)]
pub struct Stats {
    /// Connections open now.
    pub connected: AtomicU64,
    /// Connections that failed to open (after every attempt).
    pub connect_errors: AtomicU64,
    /// Attempts that failed and were tried again.
    pub connect_retries: AtomicU64,
    /// Connections that ended (closed by the server or the network, or
    /// dropped by the churn).
    pub closed: AtomicU64,
    /// Of those, dropped by the churn on purpose.
    pub churned: AtomicU64,
    /// Frames sent from outboxes.
    pub sent: AtomicU64,
    /// `message` frames (chat) or echoes (echo) received.
    pub received: AtomicU64,
    /// `ack` frames received.
    pub acked: AtomicU64,
    /// `error` frames received.
    pub errors: AtomicU64,
    /// Of those, sends the server refused as `overloaded` (admission
    /// control: not stored).
    pub overloaded: AtomicU64,
}

/// What every connection feeds: the counters, the latency histogram, and the
/// run's clock that send times are stamped with.
pub struct Meter {
    /// The counters.
    pub stats: Stats,
    /// End-to-end latency, in µs.
    pub latency: Mutex<Histogram<u64>>,
    /// `--probe` markers: a connection counts a probe once, when a
    /// `message` whose content holds the marker reaches it.
    pub probes: Vec<String>,
    /// Per probe, the connections it reached.
    pub probe_counts: Vec<AtomicU64>,
    /// Connections every probe reached.
    pub every_probe: AtomicU64,
    /// Per probe, when it last reached a connection (Unix ms): across
    /// processes and hosts, only the wall clock is shared.
    pub probe_last_ms: Vec<AtomicU64>,
    epoch: Instant,
}

impl Meter {
    /// A meter whose clock starts now, watching for `probes` (at most 64).
    pub fn new(probes: Vec<String>) -> Result<Self> {
        if probes.len() > 64 {
            anyhow::bail!("at most 64 --probe markers");
        }
        Ok(Self {
            stats: Stats::default(),
            latency: Mutex::new(crate::new_histogram()?),
            probe_counts: probes.iter().map(|_| AtomicU64::new(0)).collect(),
            probe_last_ms: probes.iter().map(|_| AtomicU64::new(0)).collect(),
            probes,
            every_probe: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// Notes the probes a message's content carries on a connection that
    /// has seen the probes in `seen` so far.
    fn probe(&self, content: &str, seen: &mut u64) {
        let before = *seen;
        for (k, marker) in self.probes.iter().enumerate() {
            if *seen & (1 << k) == 0 && content.contains(marker.as_str()) {
                *seen |= 1 << k;
                self.probe_counts[k].fetch_add(1, Ordering::Relaxed);
                self.probe_last_ms[k].fetch_max(unix_ms(), Ordering::Relaxed);
            }
        }
        let every = u64::MAX >> (64 - self.probes.len());
        if *seen != before && *seen == every {
            self.every_probe.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Seconds since the run began.
    pub fn elapsed_secs(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// A content carrying the send time (`lg:<µs since the run began>`).
    pub fn stamp(&self) -> String {
        format!("lg:{}", self.epoch.elapsed().as_micros())
    }

    /// Records the latency of a content stamped at `sent_at`.
    async fn record(&self, sent_at: u64) {
        let now = self.epoch.elapsed().as_micros() as u64;
        let _ = self
            .latency
            .lock()
            .await
            .record(now.saturating_sub(sent_at).max(1));
    }
}

/// Frames to send on one connection.
pub type Outbox = mpsc::UnboundedSender<String>;

/// Bytes a connection reads at a time (larger frames take several reads).
const READ_BUFFER: usize = 4096;

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// How every connection is opened: the Origin header, and the TLS client
/// for `wss://` gateways.
#[derive(Clone)]
pub struct Dial {
    /// Browser-style Origin header.
    pub origin: Option<String>,
    /// For `wss://`: trusts the system's roots plus `--ca-file`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Dial {
    /// The dialer for `origin`, with TLS when any gateway is `wss://`.
    pub fn new(origin: Option<String>, wss: bool, ca_file: Option<&Path>) -> Result<Self> {
        let tls = if wss {
            Some(gochat_proto::tls::client_config(true, ca_file)?)
        } else {
            None
        };
        Ok(Self { origin, tls })
    }
}

/// How a run opens its connections: the users (global index, id), the
/// source addresses, the dialer and the role each connection plays.
pub struct Dialing<'a> {
    /// This process's users: (global connection index, user id).
    pub users: &'a [(usize, i64)],
    /// Source addresses, used in turn.
    pub sources: &'a [IpAddr],
    /// Origin and TLS.
    pub dial: Arc<Dial>,
    /// What each connection does.
    pub role: Role,
}

type Writer = SplitSink<Socket, Message>;

/// What a connection does besides holding on.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    /// Speaks the chat protocol: heartbeats, sends from the outbox, and the
    /// latency of every `message` whose content carries a send time.
    Chat { heartbeat: Duration },
    /// Against `gochat echo`: keeps `window` frames in flight and sends the
    /// next as each echo returns (the edge's whole WebSocket path, no backend).
    Echo { window: usize },
    /// Against `gochat echo`: sends a frame `every` so often, whatever came
    /// back (an open loop: the load does not slow with the server).
    EchoPaced { every: Duration },
}

/// Opens one connection and runs it in its own task: heartbeats, outgoing
/// sends, latency of incoming messages.
pub async fn connect(
    url: String,
    source: IpAddr,
    dial: Arc<Dial>,
    role: Role,
    meter: Arc<Meter>,
) -> Result<Outbox> {
    let ws = open(&url, source, &dial).await?;
    let (tx, rx) = mpsc::unbounded_channel::<String>();
    meter.stats.connected.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        drive(ws, rx, role, &meter).await;
        meter.stats.connected.fetch_sub(1, Ordering::Relaxed);
        meter.stats.closed.fetch_add(1, Ordering::Relaxed);
    });
    Ok(tx)
}

/// The WebSocket upgrade (after the TLS handshake, for `wss://`) over a
/// socket bound to `source`.
async fn open(url: &str, source: IpAddr, dial: &Dial) -> Result<Socket> {
    let target: SocketAddr = {
        let rest = url
            .strip_prefix("ws://")
            .or_else(|| url.strip_prefix("wss://"))
            .context("ws:// or wss:// URLs only")?;
        let host = rest.split('/').next().context("host")?;
        // Sockets are IPv4 (bound to --source-ips): `localhost` may list ::1 first.
        tokio::net::lookup_host(host)
            .await?
            .find(SocketAddr::is_ipv4)
            .context("no IPv4 address")?
    };
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(target).await?;
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)?;
    if let Some(origin) = &dial.origin {
        request.headers_mut().insert("Origin", origin.parse()?);
    }
    let connector = dial.tls.clone().map(Connector::Rustls);
    // tungstenite's 128 KiB read buffer per connection would make the
    // client side of a 100k run weigh ~13 GB; chat frames are small.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (ws, _) =
        tokio_tungstenite::client_async_tls_with_config(request, stream, Some(config), connector)
            .await?;
    Ok(ws)
}

/// Runs an open connection until the server closes it, a write fails or its
/// outbox is dropped.
async fn drive(ws: Socket, mut outbox: mpsc::UnboundedReceiver<String>, role: Role, meter: &Meter) {
    let (mut write, mut read) = ws.split();
    let heartbeat = match role {
        Role::Chat { heartbeat } => heartbeat,
        Role::EchoPaced { every } => every,
        Role::Echo { window } => {
            for _ in 0..window {
                if write.feed(Message::text(meter.stamp())).await.is_err() {
                    break;
                }
            }
            let _ = write.flush().await;
            Duration::from_secs(3600)
        }
    };
    let mut beat = tokio::time::interval(heartbeat);
    beat.tick().await;
    let mut probes_seen = 0u64;
    loop {
        let open = tokio::select! {
            _ = beat.tick() => {
                let frame = match role {
                    Role::EchoPaced { .. } => meter.stamp(),
                    _ => r#"{"type":"ping"}"#.to_owned(),
                };
                write.send(Message::text(frame)).await.is_ok()
            }
            out = outbox.recv() => match out {
                Some(text) => {
                    let sent = write.send(Message::text(text)).await.is_ok();
                    if sent {
                        meter.stats.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    sent
                }
                None => false,
            },
            incoming = read.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    receive(role, &text, &mut write, meter, &mut probes_seen).await
                }
                Some(Ok(_)) => true,
                Some(Err(_)) | None => false,
            },
        };
        if !open {
            return;
        }
    }
}

/// Counts one text frame and records its latency; an echo also sends the
/// next frame. False when that send failed.
async fn receive(
    role: Role,
    text: &str,
    write: &mut Writer,
    meter: &Meter,
    probes_seen: &mut u64,
) -> bool {
    let sent_at = match role {
        Role::Echo { .. } | Role::EchoPaced { .. } => {
            // A closed loop sends the next before doing the bookkeeping of
            // this one; a paced one sends on its own clock.
            if matches!(role, Role::Echo { .. })
                && write.send(Message::text(meter.stamp())).await.is_err()
            {
                return false;
            }
            meter.stats.received.fetch_add(1, Ordering::Relaxed);
            sent_time(text)
        }
        Role::Chat { .. } => count_chat_frame(text, meter, probes_seen),
    };
    if let Some(sent_at) = sent_at {
        meter.record(sent_at).await;
    }
    true
}

/// Counts a chat frame by type (and the probes a `message` carries); a
/// `message`'s send time, if its content has one.
fn count_chat_frame(text: &str, meter: &Meter, probes_seen: &mut u64) -> Option<u64> {
    let stats = &meter.stats;
    let frame = serde_json::from_str::<Value>(text).ok()?;
    let counter = match frame["type"].as_str()? {
        "message" => {
            stats.received.fetch_add(1, Ordering::Relaxed);
            let content = frame["content"].as_str()?;
            if !meter.probes.is_empty() {
                meter.probe(content, probes_seen);
            }
            return sent_time(content);
        }
        "ack" => &stats.acked,
        "error" => {
            if frame["code"] == "overloaded" {
                stats.overloaded.fetch_add(1, Ordering::Relaxed);
            }
            &stats.errors
        }
        _ => return None,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    None
}

/// The wall clock, in ms since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The send time (µs since the run began) a content of `lg:<µs>` carries.
fn sent_time(content: &str) -> Option<u64> {
    content.strip_prefix("lg:")?.parse().ok()
}

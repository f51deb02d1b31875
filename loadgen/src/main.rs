//! gochat-loadgen: opens N authenticated WebSocket connections from many
//! source addresses (127.0.0.x, to pass the ~28k ephemeral ports per source
//! IP), holds them with heartbeats, optionally sends 1:1 messages between
//! random pairs at a target rate, and reports connections held, connect rate,
//! messages/s, end-to-end latency percentiles and errors — a progress line
//! each second and a JSON summary at the end. Depends on `gochat-proto` only.
//!
//! Tokens are minted with the shared secret (`--jwt-secret`), so a million
//! connections do not mean a million password hashes; `--register` creates
//! real users through the REST API first (needed for sending).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use gochat_proto::auth::{Claims, unix_secs};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug, Clone)]
#[command(name = "gochat-loadgen", about = "GoChat load generator")]
struct Args {
    /// Gateway WebSocket URL (repeat for several gateways; connections round-robin).
    #[arg(long = "ws", required = true)]
    ws: Vec<String>,
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// New connections per second.
    #[arg(long, default_value_t = 5000)]
    connect_rate: u64,
    /// Seconds to hold the connections once all are open.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds between heartbeats (`ping` frames) per connection.
    #[arg(long, default_value_t = 30)]
    heartbeat: u64,
    /// 1:1 messages per second in total (0: only hold connections).
    #[arg(long, default_value_t = 0)]
    send_rate: u64,
    /// The token secret shared with the gateways (tokens are minted, not fetched).
    #[arg(long)]
    jwt_secret: String,
    /// REST base URL: with `--register`, users are created there first.
    #[arg(long)]
    http: Option<String>,
    /// Register `connections` users (`lg_<run>_<i>`) through the REST API;
    /// needed for sending, since messages go to real users.
    #[arg(long)]
    register: bool,
    /// First user id for minted tokens when not registering.
    #[arg(long, default_value_t = 1_000_000_000)]
    first_user: i64,
    /// Source addresses to spread connections over, e.g. `127.0.0.1-127.0.0.16`.
    #[arg(long, default_value = "127.0.0.1")]
    source_ips: String,
    /// Browser-style Origin header to send (gateways with an allow-list need it).
    #[arg(long)]
    origin: Option<String>,
}

#[derive(Default)]
struct Stats {
    connected: AtomicU64,
    connect_errors: AtomicU64,
    closed: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
}

fn source_ips(spec: &str) -> Result<Vec<IpAddr>> {
    let (first, last) = spec.split_once('-').unwrap_or((spec, spec));
    let (first, last): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (first.parse()?, last.parse()?);
    let (a, b) = (u32::from(first), u32::from(last));
    if b < a {
        bail!("source range {spec} is empty");
    }
    Ok((a..=b).map(|n| IpAddr::V4(n.into())).collect())
}

fn mint(user: i64, secret: &str) -> Result<String> {
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

async fn register_users(http: &str, count: usize) -> Result<Vec<i64>> {
    let client = reqwest::Client::new();
    let run = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("lg_{run}_{i}");
        let r: Value = client
            .post(format!("{http}/api/v1/auth/register"))
            .json(&json!({"username": name, "password": "loadgen-password"}))
            .send()
            .await?
            .json()
            .await?;
        ids.push(
            r["user_id"]
                .as_str()
                .context("register answered no user_id")?
                .parse()?,
        );
    }
    Ok(ids)
}

type Outbox = mpsc::UnboundedSender<String>;

/// One connection: heartbeats, outgoing sends, latency of incoming messages.
async fn connection(
    url: String,
    source: IpAddr,
    origin: Option<String>,
    stats: Arc<Stats>,
    latency: Arc<Mutex<Histogram<u64>>>,
    heartbeat: Duration,
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
    tokio::spawn(async move {
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
                        let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                        match frame["type"].as_str() {
                            Some("message") => {
                                stats.received.fetch_add(1, Ordering::Relaxed);
                                let sent_at = frame["content"].as_str().and_then(|c| c.strip_prefix("lg:")).and_then(|n| n.parse::<u64>().ok());
                                if let Some(sent_at) = sent_at {
                                    let now = epoch.elapsed().as_micros() as u64;
                                    let _ = latency.lock().await.record(now.saturating_sub(sent_at).max(1));
                                }
                            }
                            Some("ack") => { stats.acked.fetch_add(1, Ordering::Relaxed); }
                            Some("error") => { stats.errors.fetch_add(1, Ordering::Relaxed); }
                            _ => {}
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

fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| us as f64 / 1000.0;
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.5)),
        "p90_ms": ms(h.value_at_quantile(0.9)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let sources = source_ips(&args.source_ips)?;
    let users: Vec<i64> = if args.register {
        let http = args.http.as_deref().context("--register needs --http")?;
        eprintln!("registering {} users…", args.connections);
        register_users(http, args.connections).await?
    } else {
        (0..args.connections as i64)
            .map(|i| args.first_user + i)
            .collect()
    };
    if args.send_rate > 0 && !args.register {
        bail!("sending needs real users: add --register --http URL");
    }
    let stats = Arc::new(Stats::default());
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let epoch = Instant::now();
    let heartbeat = Duration::from_secs(args.heartbeat.max(1));

    // Progress, once a second.
    let progress = {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut last = (0, 0);
            loop {
                tick.tick().await;
                let (c, r) = (
                    stats.connected.load(Ordering::Relaxed),
                    stats.received.load(Ordering::Relaxed),
                );
                eprintln!(
                    "[{:>5.0}s] connections {c} (+{}/s) | messages received {}/s | acked {} | errors {} | connect errors {}",
                    epoch.elapsed().as_secs_f64(),
                    c.saturating_sub(last.0),
                    r.saturating_sub(last.1),
                    stats.acked.load(Ordering::Relaxed),
                    stats.errors.load(Ordering::Relaxed),
                    stats.connect_errors.load(Ordering::Relaxed)
                );
                last = (c, r);
            }
        })
    };

    // Connect at the target rate.
    let connect_started = Instant::now();
    let mut outboxes: Vec<(i64, Outbox)> = Vec::with_capacity(users.len());
    let mut pending = futures::stream::FuturesUnordered::new();
    let interval = Duration::from_secs_f64(1.0 / args.connect_rate.max(1) as f64);
    for (i, user) in users.iter().enumerate() {
        let url = format!(
            "{}?token={}&device_id=lg{i}",
            args.ws[i % args.ws.len()],
            mint(*user, &args.jwt_secret)?
        );
        let source = sources[i % sources.len()];
        let (conn_stats, latency, origin, user) =
            (stats.clone(), latency.clone(), args.origin.clone(), *user);
        pending.push(async move {
            (
                user,
                connection(url, source, origin, conn_stats, latency, heartbeat, epoch).await,
            )
        });
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            connect_started + interval * (i as u32 + 1),
        ))
        .await;
        while let Some(Some((user, result))) = futures::FutureExt::now_or_never(pending.next()) {
            collect(&stats, &mut outboxes, user, result);
        }
    }
    while let Some((user, result)) = pending.next().await {
        collect(&stats, &mut outboxes, user, result);
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();

    // Hold (and send).
    let hold = Instant::now();
    let mut rng = rand::rng();
    let send_interval =
        (args.send_rate > 0).then(|| Duration::from_secs_f64(1.0 / args.send_rate as f64));
    let mut next_send = Instant::now();
    let mut n = 0u64;
    while hold.elapsed() < Duration::from_secs(args.duration) {
        match send_interval {
            Some(step) if outboxes.len() >= 2 => {
                let a = rand::Rng::random_range(&mut rng, 0..outboxes.len());
                let mut b = rand::Rng::random_range(&mut rng, 0..outboxes.len() - 1);
                if b >= a {
                    b += 1;
                }
                let sent_at = epoch.elapsed().as_micros();
                let frame = json!({"type":"send","client_msg_id":format!("lg-{n}"),"to_user_id":outboxes[b].0.to_string(),"content":format!("lg:{sent_at}")});
                let _ = outboxes[a].1.send(frame.to_string());
                n += 1;
                next_send += step;
                tokio::time::sleep_until(tokio::time::Instant::from_std(next_send)).await;
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    // Let the last messages land.
    tokio::time::sleep(Duration::from_millis(if args.send_rate > 0 {
        2000
    } else {
        0
    }))
    .await;
    progress.abort();

    let held_secs = hold.elapsed().as_secs_f64();
    let summary = json!({
        "connections_requested": args.connections,
        "connections_held": stats.connected.load(Ordering::Relaxed),
        "connect_errors": stats.connect_errors.load(Ordering::Relaxed),
        "connect_seconds": connect_secs,
        "connect_rate_per_s": outboxes.len() as f64 / connect_secs.max(1e-9),
        "held_seconds": held_secs,
        "messages_sent": stats.sent.load(Ordering::Relaxed),
        "messages_acked": stats.acked.load(Ordering::Relaxed),
        "messages_received": stats.received.load(Ordering::Relaxed),
        "messages_per_s": stats.received.load(Ordering::Relaxed) as f64 / held_secs.max(1e-9),
        "error_frames": stats.errors.load(Ordering::Relaxed),
        "closed_by_server": stats.closed.load(Ordering::Relaxed),
        "latency": percentiles(&*latency.lock().await),
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

fn collect(stats: &Stats, outboxes: &mut Vec<(i64, Outbox)>, user: i64, result: Result<Outbox>) {
    match result {
        Ok(outbox) => outboxes.push((user, outbox)),
        Err(e) => {
            if stats.connect_errors.fetch_add(1, Ordering::Relaxed) < 5 {
                eprintln!("connect failed: {e:#}");
            }
        }
    }
}

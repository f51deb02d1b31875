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
//!
//! Two more shapes of load: `--group` sends to one group of every registered
//! user (one send, N deliveries: the edge's fan-out path; `--members M` makes
//! it M members, only `--connections` of them online), and `--echo` drives
//! `gochat echo` (the edge's WebSocket path without a backend). `--server-pid`
//! turns either into frames per CPU-second of the server, a per-core figure.
//!
//! Past one process's open-files limit: `--procs N` runs N copies, each a
//! shard of the connections ([`fleet`]); `--shard i/n` and `merge` spread a
//! run over several client hosts. `--probe MARKER` counts the connections a
//! message holding MARKER reached (a broadcast check).

mod churn;
mod conn;
mod fleet;
mod hold;
mod setup;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use conn::{Meter, Outbox, Role, Stats};
use fleet::Shard;
use hold::{Hold, hold};

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
    #[arg(long, default_value = "")]
    jwt_secret: String,
    /// REST base URL: with `--register`, users are created there first.
    #[arg(long)]
    http: Option<String>,
    /// Register `connections` users (`lg_<run>_<i>`) through the REST API;
    /// needed for sending, since messages go to real users.
    #[arg(long)]
    register: bool,
    /// With `--register`: create the users through `POST /admin/users`
    /// (1,000 a call, no registration limits) as the admin account whose
    /// password this file holds (standalone writes DATA_DIR/admin_password).
    #[arg(long)]
    admin_password_file: Option<std::path::PathBuf>,
    /// The admin account `--admin-password-file` belongs to.
    #[arg(long, default_value = "admin")]
    admin_username: String,
    /// First user id for minted tokens when not registering.
    #[arg(long, default_value_t = 1_000_000_000)]
    first_user: i64,
    /// Source addresses to spread connections over, e.g. `127.0.0.1-127.0.0.16`
    /// (ranges and single addresses, comma-separated); `--procs` gives each
    /// worker every N-th one.
    #[arg(long, default_value = "127.0.0.1")]
    source_ips: String,
    /// Browser-style Origin header to send (gateways with an allow-list need it).
    #[arg(long)]
    origin: Option<String>,
    /// Extra CA certificates (PEM) trusted for `wss://` gateways, besides the system's.
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// Sends go to one group of all the registered users instead of 1:1.
    #[arg(long)]
    group: bool,
    /// With `--group`: the group has this many members (registered too),
    /// of whom only the first `--connections` are online (0: all connected).
    #[arg(long, default_value_t = 0)]
    members: usize,
    /// Drive `gochat echo`: no tokens, every connection keeps `--window`
    /// frames in flight.
    #[arg(long)]
    echo: bool,
    /// Frames in flight per connection with `--echo`.
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// With `--echo`: each connection sends a frame every this many
    /// milliseconds, whatever came back (an open loop: the offered load is
    /// connections x 1000 / ms frames per second), instead of `--window`.
    #[arg(long, value_name = "MS")]
    echo_every: Option<u64>,
    /// Server processes whose CPU time over the hold is reported (repeatable).
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Run this many loadgen processes, each a shard of the connections,
    /// source addresses and rates, with one merged report.
    #[arg(long, default_value_t = 1)]
    procs: usize,
    /// Open only shard i of n of the connections (global connection k is
    /// shard k % n's), with that share of the rates: one per client host;
    /// `gochat-loadgen merge` joins their summaries.
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    /// Count the connections a message whose content holds this marker
    /// reached (repeatable; the summary's `probes`).
    #[arg(long = "probe")]
    probes: Vec<String>,
    /// Shard 0 sends the probes this many seconds into the hold: the first
    /// `--probe` marker as an admin push to everyone (needs
    /// `--admin-password-file` and `--http`), the second, if any, as a 1:1
    /// message from its first connection to its second. The hold then ends
    /// once they have arrived (or at `--duration`).
    #[arg(long)]
    broadcast_at: Option<u64>,
    /// Close and reopen held connections at this rate per second for the
    /// hold (round-robin, same user and device, one attempt each): the
    /// reconnect churn the gateways and the registry sustain.
    #[arg(long, default_value_t = 0)]
    churn: u64,
    /// Attempts a connection gets (with backoff) before it counts as failed,
    /// as a client would reconnect.
    #[arg(long, default_value_t = 5)]
    connect_attempts: u32,
    /// Worker of `--procs`: progress and summary as JSON lines on stdout.
    #[arg(long, hide = true)]
    worker: bool,
    /// Worker of `--procs` other than the first: leave the server's CPU to it.
    #[arg(long, hide = true)]
    no_server_cpu: bool,
}

/// The latency histogram every process keeps: 1 µs to 60 s, 3 digits.
pub(crate) fn new_histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
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

/// This shard's connections (global index, user id), and the group they
/// share with `--group`.
async fn prepare_users(args: &Args) -> Result<(Vec<(usize, i64)>, Option<i64>)> {
    let mine: Vec<usize> = (0..args.connections)
        .filter(|&i| args.shard.owns(i))
        .collect();
    if args.echo {
        return Ok((mine.iter().map(|&i| (i, i as i64)).collect(), None));
    }
    if args.jwt_secret.is_empty() {
        bail!("--jwt-secret is needed to mint tokens");
    }
    if !args.register {
        if args.send_rate > 0 || args.group {
            bail!("sending needs real users: add --register --http URL");
        }
        let users = mine.iter().map(|&i| (i, args.first_user + i as i64));
        return Ok((users.collect(), None));
    }
    if args.group && args.shard.count > 1 {
        bail!("--group runs in one process (every member in one group)");
    }
    let http = args.http.as_deref().context("--register needs --http")?;
    let client = reqwest::Client::new();
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    if args.members > 0 && (!args.group || args.members < args.connections) {
        bail!("--members is for --group, and at least --connections");
    }
    let count = args.members.max(mine.len());
    eprintln!("registering {count} users…");
    let mut users = match &args.admin_password_file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let admin = setup::Admin::from_file(&text, &args.admin_username);
            setup::create_users(&client, http, &admin, &run, count).await?
        }
        None => setup::register_users(&client, http, &run, count).await?,
    };
    let group = if args.group {
        Some(setup::create_group(&client, http, &run, &users).await?)
    } else {
        None
    };
    // The first `--connections` members are the online ones.
    users.truncate(mine.len());
    Ok((mine.into_iter().zip(users).collect(), group))
}

#[tokio::main]
async fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("merge") {
        let merged = fleet::merge_files(&argv[2..])?;
        println!("{}", serde_json::to_string_pretty(&merged)?);
        return Ok(());
    }
    let mut args = Args::parse();
    if args.procs > 1 {
        let sources = setup::source_ips(&args.source_ips)?;
        let merged = fleet::run_procs(args.procs, args.shard, &sources).await?;
        println!("{}", serde_json::to_string_pretty(&merged)?);
        return Ok(());
    }
    if args.no_server_cpu {
        args.server_pids.clear();
    }
    args.connect_rate = args.shard.rate(args.connect_rate);
    if args.send_rate > 0 {
        args.send_rate = args.shard.rate(args.send_rate);
    }
    if args.churn > 0 {
        args.churn = args.shard.rate(args.churn);
    }
    let sources = setup::source_ips(&args.source_ips)?;
    let (users, group) = prepare_users(&args).await?;
    if args.worker {
        // Every worker's users exist before any worker connects: hashing
        // passwords for some while others connect would slow both.
        fleet::ready_and_wait().await?;
    }
    let meter = Arc::new(Meter::new(args.probes.clone())?);
    let progress = tokio::spawn(progress(meter.clone(), args.worker));
    let connect_started = Instant::now();
    let dialing = dialing(&args, &users, &sources)?;
    let outboxes = connect_all(&args, &dialing, &meter).await?;
    let connected = Connected {
        count: outboxes.len(),
        seconds: connect_started.elapsed().as_secs_f64(),
    };
    let (hold, churned) = if args.churn > 0 {
        let (hold, churned) = churn::churn(&args, dialing, outboxes, &meter).await?;
        (hold, Some(churned))
    } else {
        (hold(&args, &outboxes, group, &meter).await?, None)
    };
    // Let the last messages land (their latency counts, their rate does not).
    if args.send_rate > 0 {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    progress.abort();
    let mut summary = summary(&args, group, &meter, &connected, &hold).await;
    if let (Some(churned), Some(fields)) = (churned, summary.as_object_mut()) {
        fields.extend(churned.summary());
    }
    if args.worker {
        println!("{}", json!({ "summary": summary }));
    } else {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}

/// A progress line each second, until aborted (for a `--procs` worker, a
/// JSON line on stdout that the parent merges).
async fn progress(meter: Arc<Meter>, worker: bool) {
    let stats = &meter.stats;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = (0, 0);
    loop {
        tick.tick().await;
        let (c, r) = (
            stats.connected.load(Ordering::Relaxed),
            stats.received.load(Ordering::Relaxed),
        );
        if worker {
            let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
            println!(
                "{}",
                json!({"progress": {"connected": c, "received": r, "acked": load(&stats.acked),
                    "errors": load(&stats.errors), "connect_errors": load(&stats.connect_errors)}})
            );
            continue;
        }
        eprintln!(
            "[{:>5.0}s] connections {c} (+{}/s) | frames received {}/s | acked {} | errors {} | connect errors {}",
            meter.elapsed_secs(),
            c.saturating_sub(last.0),
            r.saturating_sub(last.1),
            stats.acked.load(Ordering::Relaxed),
            stats.errors.load(Ordering::Relaxed),
            stats.connect_errors.load(Ordering::Relaxed)
        );
        last = (c, r);
    }
}

/// How connections are opened: the role they play and the dialer.
fn dialing<'a>(
    args: &Args,
    users: &'a [(usize, i64)],
    sources: &'a [IpAddr],
) -> Result<conn::Dialing<'a>> {
    let role = if args.echo {
        match args.echo_every {
            Some(ms) => Role::EchoPaced {
                every: Duration::from_millis(ms.max(1)),
            },
            None => Role::Echo {
                window: args.window.max(1),
            },
        }
    } else {
        Role::Chat {
            heartbeat: Duration::from_secs(args.heartbeat.max(1)),
        }
    };
    let wss = args.ws.iter().any(|url| url.starts_with("wss://"));
    let dial = Arc::new(conn::Dial::new(
        args.origin.clone(),
        wss,
        args.ca_file.as_deref(),
    )?);
    Ok(conn::Dialing {
        users,
        sources,
        dial,
        role,
    })
}

/// Opens a connection per user at `--connect-rate`, round-robin over the
/// gateways and source addresses; returns the ones that opened, by user.
async fn connect_all(
    args: &Args,
    dialing: &conn::Dialing<'_>,
    meter: &Arc<Meter>,
) -> Result<Vec<(i64, Outbox)>> {
    let (users, sources, role) = (dialing.users, dialing.sources, dialing.role);
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.connect_rate.max(1) as f64);
    let mut outboxes = Vec::with_capacity(users.len());
    let mut pending = futures::stream::FuturesUnordered::new();
    for (n, &(i, user)) in users.iter().enumerate() {
        let url = url_for(args, i, user)?;
        let source = sources[n % sources.len()];
        let opened =
            connect_with_retries(url, source, dialing.dial.clone(), role, meter.clone(), args);
        pending.push(async move { (user, opened.await) });
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            started + interval * (n as u32 + 1),
        ))
        .await;
        while let Some(Some((user, result))) = futures::FutureExt::now_or_never(pending.next()) {
            collect(&meter.stats, &mut outboxes, user, result);
        }
    }
    while let Some((user, result)) = pending.next().await {
        collect(&meter.stats, &mut outboxes, user, result);
    }
    Ok(outboxes)
}

/// Opens a connection, trying again after a refusal (a 503 from a busy
/// gateway, a timeout) with a growing, jittered pause, as a client would.
async fn connect_with_retries(
    url: String,
    source: IpAddr,
    dial: Arc<conn::Dial>,
    role: Role,
    meter: Arc<Meter>,
    args: &Args,
) -> Result<Outbox> {
    let mut pause = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match conn::connect(url.clone(), source, dial.clone(), role, meter.clone()).await {
            Ok(outbox) => return Ok(outbox),
            Err(e) if attempt >= args.connect_attempts => return Err(e),
            Err(_) => {
                meter.stats.connect_retries.fetch_add(1, Ordering::Relaxed);
                let jitter = rand::random_range(0..=pause.as_millis() as u64);
                tokio::time::sleep(pause + Duration::from_millis(jitter)).await;
                pause = (pause * 2).min(Duration::from_secs(8));
                attempt += 1;
            }
        }
    }
}

/// Connection `i`'s URL: gateways in turn; a minted token and a device of its
/// own unless echoing.
fn url_for(args: &Args, i: usize, user: i64) -> Result<String> {
    let base = &args.ws[i % args.ws.len()];
    if args.echo {
        return Ok(base.clone());
    }
    let token = setup::mint(user, &args.jwt_secret)?;
    Ok(format!("{base}?token={token}&device_id=lg{i}"))
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

/// How the connecting went.
struct Connected {
    count: usize,
    seconds: f64,
}

/// The JSON summary printed at the end.
async fn summary(
    args: &Args,
    group: Option<i64>,
    meter: &Meter,
    connected: &Connected,
    hold: &Hold,
) -> Value {
    let stats = &meter.stats;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    // One figure per probe marker, keyed by the marker.
    let per_probe = |counters: &[AtomicU64]| -> serde_json::Map<String, Value> {
        meter
            .probes
            .iter()
            .zip(counters)
            .map(|(marker, counter)| (marker.clone(), json!(load(counter))))
            .collect()
    };
    let probes = per_probe(&meter.probe_counts);
    let probe_last = per_probe(&meter.probe_last_ms);
    let latency = meter.latency.lock().await;
    let mode = match (args.echo, group) {
        (true, _) => "echo",
        (false, Some(_)) => "group",
        (false, None) => "1:1",
    };
    json!({
        "mode": mode,
        "connections_requested": args.connections,
        "connections_held": load(&stats.connected),
        "connect_errors": load(&stats.connect_errors),
        "connect_retries": load(&stats.connect_retries),
        "connect_seconds": connected.seconds,
        "connect_rate_per_s": connected.count as f64 / connected.seconds.max(1e-9),
        "held_seconds": hold.seconds,
        "messages_sent": load(&stats.sent),
        "messages_acked": load(&stats.acked),
        "messages_acked_per_s": load(&stats.acked) as f64 / hold.seconds.max(1e-9),
        "sends_refused_overloaded": load(&stats.overloaded),
        "frames_received": load(&stats.received),
        "frames_received_in_hold": hold.received,
        "frames_received_per_s": hold.received as f64 / hold.seconds.max(1e-9),
        "server_cpu_seconds": hold.server_cpu,
        "frames_per_server_cpu_second":
            (hold.server_cpu > 0.0).then(|| hold.received as f64 / hold.server_cpu),
        "error_frames": load(&stats.errors),
        "closed_by_server": load(&stats.closed).saturating_sub(load(&stats.churned)),
        "probes": probes,
        "connections_with_every_probe": load(&meter.every_probe),
        "probes_sent_unix_ms": hold.probes_sent_ms,
        "probe_last_unix_ms": probe_last,
        "latency": percentiles(&latency),
        "latency_histogram": fleet::histogram_json(&latency),
    })
}

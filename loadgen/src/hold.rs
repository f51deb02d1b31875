//! The hold: connections stay open with heartbeats for `--duration`, 1:1
//! or group sends go out at `--send-rate`, the probes (`--broadcast-at`)
//! go out and are waited for, and the server's CPU is read around it all.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use crate::conn::{self, Meter, Outbox};
use crate::{Args, setup};

/// What the hold measured (counters restart at its start, so rates cover the
/// hold only).
pub(crate) struct Hold {
    pub(crate) seconds: f64,
    pub(crate) received: u64,
    pub(crate) server_cpu: f64,
    /// When the probes went out (Unix ms), if this process sent them.
    pub(crate) probes_sent_ms: Option<u64>,
}

/// Holds the connections for `--duration`, sending at `--send-rate`.
pub(crate) async fn hold(
    args: &Args,
    outboxes: &[(i64, Outbox)],
    group: Option<i64>,
    meter: &Meter,
) -> Result<Hold> {
    let received_before = meter.stats.received.load(Ordering::Relaxed);
    let cpu_before = cpu_of(&args.server_pids)?;
    let started = Instant::now();
    let mut rng = rand::rng();
    let send_interval =
        (args.send_rate > 0).then(|| Duration::from_secs_f64(1.0 / args.send_rate as f64));
    let mut next_send = Instant::now();
    let mut n = 0u64;
    let mut probes_sent_ms = None;
    while started.elapsed() < Duration::from_secs(args.duration) {
        if let Some(at) = args.broadcast_at
            && probes_sent_ms.is_none()
            && args.shard.index == 0
            && started.elapsed() >= Duration::from_secs(at)
        {
            probes_sent_ms = Some(conn::unix_ms());
            send_probes(args, outboxes).await?;
        }
        if args
            .broadcast_at
            .is_some_and(|at| started.elapsed() >= Duration::from_secs(at))
            && probes_arrived(args, meter)
        {
            break;
        }
        match send_interval {
            Some(step) if outboxes.len() >= 2 => {
                send_one(outboxes, group, &mut rng, n, meter);
                n += 1;
                next_send += step;
                tokio::time::sleep_until(tokio::time::Instant::from_std(next_send)).await;
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let received = meter.stats.received.load(Ordering::Relaxed) - received_before;
    let cpu_after = cpu_of(&args.server_pids)?;
    let server_cpu = cpu_after.iter().zip(&cpu_before).map(|(a, b)| a - b).sum();
    Ok(Hold {
        seconds,
        received,
        server_cpu,
        probes_sent_ms,
    })
}

/// Did the probes reach this process's connections: the broadcast every
/// open one, and (shard 0, whose second connection it goes to) the 1:1 one?
fn probes_arrived(args: &Args, meter: &Meter) -> bool {
    let count = |k: usize| {
        meter
            .probe_counts
            .get(k)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    };
    let open = meter.stats.connected.load(Ordering::Relaxed);
    let direct = args.shard.index != 0 || args.probes.len() < 2 || count(1) >= 1;
    count(0) >= open && direct
}

/// The broadcast probe (admin push to everyone) and the 1:1 probe.
async fn send_probes(args: &Args, outboxes: &[(i64, Outbox)]) -> Result<()> {
    let broadcast = args
        .probes
        .first()
        .context("--broadcast-at needs --probe")?;
    let http = args
        .http
        .as_deref()
        .context("--broadcast-at needs --http")?;
    let file = args
        .admin_password_file
        .as_ref()
        .context("--broadcast-at needs --admin-password-file")?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let admin = setup::Admin::from_file(&text, &args.admin_username);
    setup::push_to_all(&reqwest::Client::new(), http, &admin, broadcast).await?;
    if let (Some(direct), [(_, from), (to, _), ..]) = (args.probes.get(1), outboxes) {
        let frame = json!({"type":"send","client_msg_id":"lg-probe","to_user_id":to.to_string(),"content":direct});
        from.send(frame.to_string())?;
    }
    Ok(())
}

/// Message `n`: from a random connection to another one, or to the group.
fn send_one(
    outboxes: &[(i64, Outbox)],
    group: Option<i64>,
    rng: &mut impl rand::Rng,
    n: u64,
    meter: &Meter,
) {
    let a = rng.random_range(0..outboxes.len());
    let mut b = rng.random_range(0..outboxes.len() - 1);
    if b >= a {
        b += 1;
    }
    let mut frame =
        json!({"type":"send","client_msg_id":format!("lg-{n}"),"content":meter.stamp()});
    match group {
        Some(group) => frame["group_id"] = json!(group.to_string()),
        None => frame["to_user_id"] = json!(outboxes[b].0.to_string()),
    }
    let _ = outboxes[a].1.send(frame.to_string());
}

pub(crate) fn cpu_of(pids: &[u32]) -> Result<Vec<f64>> {
    pids.iter().map(|&pid| setup::cpu_seconds(pid)).collect()
}

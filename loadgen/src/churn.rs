//! Churn: for the hold's `--duration`, held connections are closed and
//! opened again at `--churn` per second — round-robin, the same user and
//! device, one attempt each, as clients that drop and reconnect — to find
//! the reconnect rate the gateways and the session registry sustain, and
//! how long an upgrade takes while they do.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::conn::{self, Dialing, Meter, Outbox};
use crate::{Args, hold::Hold};

/// What the churn measured.
pub(crate) struct Churn {
    target_per_s: u64,
    attempted: u64,
    reconnected: u64,
    failed: u64,
    /// Ticks that found too many reconnects under way, or the slot whose
    /// turn it was still reconnecting: the server (or this client) is not
    /// keeping up.
    skipped_busy: u64,
    seconds: f64,
    /// When the churn began and ended (Unix ms), to line up server-side samples.
    started_ms: u64,
    ended_ms: u64,
    /// Upgrade time of each reconnect (TCP connect to 101), in µs.
    latency: Histogram<u64>,
    /// The connections open at the end, kept open until the summary is out.
    open: Vec<Outbox>,
}

/// Reconnects under way at most, in seconds of the target rate.
const MAX_IN_FLIGHT_SECONDS: u64 = 5;

/// One held connection slot: its user, its index (its device and URL) and
/// its open connection, if it has one now.
struct Slot {
    user: i64,
    index: usize,
    outbox: Option<Outbox>,
    /// A reconnect of this slot is under way.
    reconnecting: bool,
}

/// Closes and reopens connections at `--churn` per second for `--duration`.
pub(crate) async fn churn(
    args: &Args,
    dialing: Dialing<'_>,
    outboxes: Vec<(i64, Outbox)>,
    meter: &Arc<Meter>,
) -> Result<(Hold, Churn)> {
    let index_of: HashMap<i64, usize> = dialing.users.iter().map(|&(i, u)| (u, i)).collect();
    let mut slots: Vec<Slot> = outboxes
        .into_iter()
        .filter_map(|(user, outbox)| {
            let index = *index_of.get(&user)?;
            Some(Slot {
                user,
                index,
                outbox: Some(outbox),
                reconnecting: false,
            })
        })
        .collect();
    let rate = args.churn.max(1);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let max_in_flight = rate * MAX_IN_FLIGHT_SECONDS;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(usize, Result<Outbox>, Duration)>();
    let mut result = Churn {
        target_per_s: rate,
        attempted: 0,
        reconnected: 0,
        failed: 0,
        skipped_busy: 0,
        seconds: 0.0,
        started_ms: conn::unix_ms(),
        ended_ms: 0,
        latency: crate::new_histogram()?,
        open: Vec::new(),
    };
    let received_before = meter.stats.received.load(Ordering::Relaxed);
    let cpu_before = crate::hold::cpu_of(&args.server_pids)?;
    let started = Instant::now();
    let end = started + Duration::from_secs(args.duration);
    let mut next_tick = started;
    let (mut turn, mut in_flight) = (0usize, 0u64);
    while Instant::now() < end && !slots.is_empty() {
        tokio::select! {
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(next_tick)) => {
                next_tick += interval;
                let k = turn % slots.len();
                if in_flight >= max_in_flight || slots[k].reconnecting {
                    result.skipped_busy += 1;
                    continue;
                }
                turn += 1;
                let slot = &mut slots[k];
                slot.reconnecting = true;
                // Dropping the outbox ends the connection's task: its socket
                // closes, as a client's does when its network goes.
                if slot.outbox.take().is_some() {
                    meter.stats.churned.fetch_add(1, Ordering::Relaxed);
                }
                let url = crate::url_for(args, slot.index, slot.user)?;
                let source = dialing.sources[k % dialing.sources.len()];
                let (dial, role, meter, done) =
                    (dialing.dial.clone(), dialing.role, meter.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let opened = Instant::now();
                    let outcome = conn::connect(url, source, dial, role, meter).await;
                    let _ = done.send((k, outcome, opened.elapsed()));
                });
                in_flight += 1;
                result.attempted += 1;
            }
            Some((k, outcome, took)) = done_rx.recv() => {
                in_flight -= 1;
                result.settle(&mut slots[k], outcome, took);
            }
        }
    }
    // The reconnects under way finish (or fail) before the figures are read,
    // so every slot is open again, or counted as failed.
    while in_flight > 0 {
        let next = tokio::time::timeout(Duration::from_secs(30), done_rx.recv());
        let Ok(Some((k, outcome, took))) = next.await else {
            break;
        };
        in_flight -= 1;
        result.settle(&mut slots[k], outcome, took);
    }
    result.open = slots.into_iter().filter_map(|slot| slot.outbox).collect();
    result.seconds = started.elapsed().as_secs_f64();
    result.ended_ms = conn::unix_ms();
    let cpu_after = crate::hold::cpu_of(&args.server_pids)?;
    let hold = Hold {
        seconds: result.seconds,
        received: meter.stats.received.load(Ordering::Relaxed) - received_before,
        server_cpu: cpu_after.iter().zip(&cpu_before).map(|(a, b)| a - b).sum(),
        probes_sent_ms: None,
    };
    Ok((hold, result))
}

impl Churn {
    /// Notes how a slot's reconnect ended.
    fn settle(&mut self, slot: &mut Slot, outcome: Result<Outbox>, took: Duration) {
        slot.reconnecting = false;
        match outcome {
            Ok(outbox) => {
                slot.outbox = Some(outbox);
                self.reconnected += 1;
                let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                let _ = self.latency.record(micros.max(1));
            }
            // The slot stays closed until its next turn.
            Err(_) => self.failed += 1,
        }
    }

    /// The summary's churn fields (merged across shards by `fleet::merge`).
    pub(crate) fn summary(&self) -> Map<String, Value> {
        let fields = json!({
            "churn_target_per_s": self.target_per_s,
            "reconnects_attempted": self.attempted,
            "reconnects": self.reconnected,
            "reconnect_failures": self.failed,
            "reconnects_skipped_busy": self.skipped_busy,
            "reconnects_per_s": self.reconnected as f64 / self.seconds.max(1e-9),
            "churn_started_unix_ms": self.started_ms,
            "churn_ended_unix_ms": self.ended_ms,
            "reconnect_latency": crate::percentiles(&self.latency),
            "reconnect_latency_histogram": crate::fleet::histogram_json(&self.latency),
        });
        match fields {
            Value::Object(fields) => fields,
            _ => Map::new(),
        }
    }
}

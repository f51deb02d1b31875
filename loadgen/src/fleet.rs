//! Load from more than one process: `--procs N` runs N copies of this
//! loadgen (each with one shard of the connections, every N-th source
//! address and its share of the rates, each below the per-process
//! open-files limit), prints one merged progress line a second and one
//! merged summary; `--shard i/n` runs one host's part of a fleet (split
//! again by `--procs`), and `merge` joins the hosts' JSON summaries. Latency histograms are merged
//! bucket by bucket, never averaged.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Which part of the fleet's connections this process opens: global
/// connection `i` is this shard's when `i % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// How many shards in all.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (index, count) = text.split_once('/').ok_or("i/n, e.g. 0/4")?;
        let index: usize = index.parse().map_err(|_| "i is a number")?;
        let count: usize = count.parse().map_err(|_| "n is a number")?;
        if count == 0 || index >= count {
            return Err("0 <= i < n".into());
        }
        Ok(Self { index, count })
    }
}

impl Shard {
    /// Does global connection `i` belong here?
    pub fn owns(self, i: usize) -> bool {
        i % self.count == self.index
    }

    /// This shard's part of a fleet-wide rate (at least 1).
    pub fn rate(self, total: u64) -> u64 {
        total.div_ceil(self.count as u64).max(1)
    }

    /// Part `j` of this shard split `parts` ways: the connections `k` with
    /// `k % (count * parts) == index + count * j`.
    pub fn split(self, j: usize, parts: usize) -> Self {
        Self {
            index: self.index + self.count * j,
            count: self.count * parts,
        }
    }
}

/// Worker `j` of `parts`' source addresses: every `parts`-th one, or all of
/// them when there are fewer addresses than workers.
fn worker_sources<T: Clone>(all: &[T], j: usize, parts: usize) -> Vec<T> {
    if all.len() < parts {
        return all.to_vec();
    }
    all.iter().skip(j).step_by(parts).cloned().collect()
}

/// A histogram as JSON: `[[value, count], ...]` of its recorded buckets.
pub fn histogram_json(h: &Histogram<u64>) -> Value {
    let buckets: Vec<Value> = h
        .iter_recorded()
        .map(|v| json!([v.value_iterated_to(), v.count_at_value()]))
        .collect();
    Value::Array(buckets)
}

fn histogram_from(json: &Value, into: &mut Histogram<u64>) -> Result<()> {
    for bucket in json.as_array().context("latency_histogram")? {
        let value = bucket[0].as_u64().context("bucket value")?;
        let count = bucket[1].as_u64().context("bucket count")?;
        into.record_n(value, count)?;
    }
    Ok(())
}

/// Runs `procs` copies of this program, each a part of `shard` with its
/// own source addresses, and returns their merged summary; a merged
/// progress line goes to stderr each second.
pub async fn run_procs(procs: usize, shard: Shard, sources: &[std::net::IpAddr]) -> Result<Value> {
    let exe = std::env::current_exe().context("this program's path")?;
    let args = args_for_workers(std::env::args().skip(1));
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<(usize, Value)>();
    let mut children = Vec::new();
    let mut starts = Vec::new();
    let mut ready = 0;
    for k in 0..procs {
        let mut child = tokio::process::Command::new(&exe)
            .args(&args)
            .args(["--shard", &worker_shard(shard.split(k, procs)), "--worker"])
            .args(["--source-ips", &worker_ips(sources, k, procs)])
            // Only shard 0 measures the server's CPU: one window, not N.
            .args(if k == 0 {
                Vec::new()
            } else {
                vec!["--no-server-cpu".to_owned()]
            })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting worker {k}"))?;
        let stdout = child.stdout.take().context("worker stdout")?;
        starts.push(child.stdin.take().context("worker stdin")?);
        let tx = lines_tx.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send((k, value));
                }
            }
        });
        children.push(child);
    }
    drop(lines_tx);
    let mut progress: BTreeMap<usize, Value> = BTreeMap::new();
    let mut summaries: BTreeMap<usize, Value> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = (0, 0);
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some((k, mut value)) => {
                    if let Some(summary) = value.get_mut("summary") {
                        summaries.insert(k, summary.take());
                    } else if value.get("ready").is_some() {
                        ready += 1;
                        if ready == procs {
                            for start in &mut starts {
                                start.write_all(b"go\n").await?;
                            }
                        }
                    } else if let Some(p) = value.get_mut("progress") {
                        progress.insert(k, p.take());
                    }
                }
                None => break,
            },
            _ = tick.tick() => last = print_progress(&progress, procs, last),
        }
    }
    for (k, child) in children.iter_mut().enumerate() {
        let status = child.wait().await?;
        if !status.success() {
            bail!("worker {k} failed: {status}");
        }
    }
    if summaries.len() != procs {
        bail!("{} of {procs} workers reported a summary", summaries.len());
    }
    merge(&summaries.into_values().collect::<Vec<_>>())
}

fn worker_shard(shard: Shard) -> String {
    format!("{}/{}", shard.index, shard.count)
}

fn worker_ips(sources: &[std::net::IpAddr], j: usize, parts: usize) -> String {
    let ips: Vec<String> = worker_sources(sources, j, parts)
        .iter()
        .map(ToString::to_string)
        .collect();
    ips.join(",")
}

/// A worker's users are ready: it says so and waits for the word to
/// connect (which comes once every worker is ready).
pub async fn ready_and_wait() -> Result<()> {
    println!("{}", json!({"ready": true}));
    let mut line = String::new();
    BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await
        .context("waiting for the other workers")?;
    Ok(())
}

/// The command line for the workers: this one without the options each
/// worker gets its own value of.
fn args_for_workers(args: impl Iterator<Item = String>) -> Vec<String> {
    const OWN: [&str; 3] = ["--procs", "--shard", "--source-ips"];
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
        } else if OWN.contains(&arg.as_str()) {
            skip_value = true;
        } else if !OWN.iter().any(|o| arg.starts_with(&format!("{o}="))) {
            out.push(arg);
        }
    }
    out
}

fn print_progress(progress: &BTreeMap<usize, Value>, procs: usize, last: (u64, u64)) -> (u64, u64) {
    let sum = |key: &str| -> u64 { progress.values().filter_map(|p| p[key].as_u64()).sum() };
    let (connected, received) = (sum("connected"), sum("received"));
    eprintln!(
        "[{procs} procs] connections {connected} (+{}/s) | frames received {}/s | acked {} | errors {} | connect errors {}",
        connected.saturating_sub(last.0),
        received.saturating_sub(last.1),
        sum("acked"),
        sum("errors"),
        sum("connect_errors"),
    );
    (connected, received)
}

/// The fleet's summary from its shards' summaries.
pub fn merge(shards: &[Value]) -> Result<Value> {
    let first = shards.first().context("no summaries")?;
    let sum_u = |key: &str| -> u64 { shards.iter().filter_map(|s| s[key].as_u64()).sum() };
    let sum_f = |key: &str| -> f64 { shards.iter().filter_map(|s| s[key].as_f64()).sum() };
    let max_f = |key: &str| -> f64 {
        shards
            .iter()
            .filter_map(|s| s[key].as_f64())
            .fold(0.0, f64::max)
    };
    let mut latency = crate::new_histogram()?;
    for shard in shards {
        histogram_from(&shard["latency_histogram"], &mut latency)?;
    }
    let mut probes = serde_json::Map::new();
    for shard in shards {
        for (marker, count) in shard["probes"].as_object().into_iter().flatten() {
            let total = probes.get(marker).and_then(Value::as_u64).unwrap_or(0);
            probes.insert(marker.clone(), json!(total + count.as_u64().unwrap_or(0)));
        }
    }
    let mut probe_last = serde_json::Map::new();
    for shard in shards {
        for (marker, last) in shard["probe_last_unix_ms"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let latest = probe_last.get(marker).and_then(Value::as_u64).unwrap_or(0);
            let last = last.as_u64().unwrap_or(0).max(latest);
            probe_last.insert(marker.clone(), json!(last));
        }
    }
    let probes_sent = shards
        .iter()
        .filter_map(|s| s["probes_sent_unix_ms"].as_u64())
        .max();
    let server_cpu = sum_f("server_cpu_seconds");
    let hold_received = sum_u("frames_received_in_hold");
    let mut merged = json!({
        "mode": first["mode"],
        "shards": shards.len(),
        "connections_requested": sum_u("connections_requested"),
        "connections_held": sum_u("connections_held"),
        "connect_errors": sum_u("connect_errors"),
        "connect_retries": sum_u("connect_retries"),
        "connect_seconds": max_f("connect_seconds"),
        "connect_rate_per_s": sum_f("connect_rate_per_s"),
        "held_seconds": max_f("held_seconds"),
        "messages_sent": sum_u("messages_sent"),
        "messages_acked": sum_u("messages_acked"),
        "messages_acked_per_s": sum_f("messages_acked_per_s"),
        "sends_refused_overloaded": sum_u("sends_refused_overloaded"),
        "frames_received": sum_u("frames_received"),
        "frames_received_in_hold": hold_received,
        "frames_received_per_s": sum_f("frames_received_per_s"),
        "server_cpu_seconds": server_cpu,
        "frames_per_server_cpu_second":
            (server_cpu > 0.0).then(|| hold_received as f64 / server_cpu),
        "error_frames": sum_u("error_frames"),
        "closed_by_server": sum_u("closed_by_server"),
        "probes": probes,
        "connections_with_every_probe": sum_u("connections_with_every_probe"),
        "probes_sent_unix_ms": probes_sent,
        "probe_last_unix_ms": probe_last,
        "latency": crate::percentiles(&latency),
        "latency_histogram": histogram_json(&latency),
    });
    if first.get("churn_target_per_s").is_some() {
        let mut reconnect = crate::new_histogram()?;
        for shard in shards {
            histogram_from(&shard["reconnect_latency_histogram"], &mut reconnect)?;
        }
        let churn = json!({
            "churn_target_per_s": sum_u("churn_target_per_s"),
            "reconnects_attempted": sum_u("reconnects_attempted"),
            "reconnects": sum_u("reconnects"),
            "reconnect_failures": sum_u("reconnect_failures"),
            "reconnects_skipped_busy": sum_u("reconnects_skipped_busy"),
            "reconnects_per_s": sum_f("reconnects_per_s"),
            "churn_started_unix_ms": shards.iter().filter_map(|s| s["churn_started_unix_ms"].as_u64()).min(),
            "churn_ended_unix_ms": shards.iter().filter_map(|s| s["churn_ended_unix_ms"].as_u64()).max(),
            "reconnect_latency": crate::percentiles(&reconnect),
            "reconnect_latency_histogram": histogram_json(&reconnect),
        });
        if let (Some(into), Some(from)) = (merged.as_object_mut(), churn.as_object()) {
            into.extend(from.clone());
        }
    }
    Ok(merged)
}

/// `gochat-loadgen merge FILE...`: the shards' summaries (one JSON document
/// per file, as each host's loadgen printed it) merged into one.
pub fn merge_files(paths: &[String]) -> Result<Value> {
    if paths.is_empty() {
        bail!("usage: gochat-loadgen merge SUMMARY.json...");
    }
    let shards = paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
            serde_json::from_str(&text).with_context(|| format!("{path}: not a JSON summary"))
        })
        .collect::<Result<Vec<Value>>>()?;
    merge(&shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_connections_sources_and_rates() {
        let shard: Shard = "1/3".parse().expect("valid");
        let mine: Vec<usize> = (0..10).filter(|&i| shard.owns(i)).collect();
        assert_eq!(mine, [1, 4, 7]);
        assert_eq!(shard.rate(1000), 334);
        for bad in ["3/3", "1", "a/2", "0/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        // A host's shard split among its workers: disjoint, and together
        // the host's connections.
        let parts: Vec<Shard> = (0..2).map(|j| shard.split(j, 2)).collect();
        for k in 0..60 {
            let owners = parts.iter().filter(|p| p.owns(k)).count();
            assert_eq!(owners, usize::from(shard.owns(k)), "connection {k}");
        }
        assert_eq!(worker_sources(&[10, 11, 12, 13, 14], 1, 2), [11, 13]);
        assert_eq!(
            worker_sources(&[10], 1, 2),
            [10],
            "fewer addresses than workers"
        );
    }

    #[test]
    fn workers_get_their_own_shard_and_addresses() {
        let args = [
            "--ws",
            "ws://x",
            "--procs",
            "4",
            "--shard=1/2",
            "--source-ips",
            "127.0.0.1",
            "--duration",
            "5",
        ];
        let kept = args_for_workers(args.iter().map(|s| s.to_string()));
        assert_eq!(kept, ["--ws", "ws://x", "--duration", "5"]);
        let ips: Vec<std::net::IpAddr> = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        assert_eq!(worker_ips(&ips, 0, 2), "127.0.0.1,127.0.0.3");
    }

    #[test]
    fn summaries_merge_counts_and_histograms() -> Result<()> {
        let mut a = crate::new_histogram()?;
        let mut b = crate::new_histogram()?;
        for v in 1..=900 {
            a.record(v)?;
        }
        for v in 901..=1000 {
            b.record(v * 100)?;
        }
        let shard = |h: &Histogram<u64>, held: u64, probe: u64| {
            json!({"mode": "1:1", "connections_requested": held, "connections_held": held,
                   "connect_seconds": held as f64, "frames_received_in_hold": 50,
                   "server_cpu_seconds": 0.5, "probes": {"hello": probe},
                   "connections_with_every_probe": probe,
                   "latency_histogram": histogram_json(h)})
        };
        let merged = merge(&[shard(&a, 10, 10), shard(&b, 5, 4)])?;
        assert_eq!(merged["connections_held"], 15);
        assert_eq!(merged["connect_seconds"], 10.0);
        assert_eq!(merged["probes"]["hello"], 14);
        assert_eq!(merged["frames_per_server_cpu_second"], 100.0);
        assert_eq!(merged["latency"]["count"], 1000);
        // The p99 is in the second shard's tail: an average of the shards'
        // p99s would not be.
        let p99 = merged["latency"]["p99_ms"].as_f64().context("p99")?;
        assert!((98.0..=100.0).contains(&p99), "p99 {p99} ms");
        Ok(())
    }
}

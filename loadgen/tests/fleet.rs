//! The load generator across processes, against a WebSocket server of the
//! test's own (port 0): `--procs` opens every connection from its workers
//! and reports one merged summary; `--shard` run by hand plus `merge` gives
//! the same; `--probe` counts the connections a marked message reached;
//! `--churn` closes and reopens connections at its rate.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const MARKER: &str = "probe-7f3a";

/// Echoes every text frame; greets each connection with a chat `message`
/// holding the probe marker first. Counts the upgrades it accepted.
async fn server() -> Result<(String, Arc<AtomicU64>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/ws", listener.local_addr()?);
    let upgrades = Arc::new(AtomicU64::new(0));
    let counted = upgrades.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(socket).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::Relaxed);
                let hello = format!(r#"{{"type":"message","content":"{MARKER} hello"}}"#);
                if ws.send(Message::text(hello)).await.is_err() {
                    return;
                }
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() && ws.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((url, upgrades))
}

/// Runs the loadgen with `args`; its JSON summary.
async fn loadgen(args: Vec<String>) -> Result<Value> {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_gochat-loadgen"))
            .args(&args)
            .output()
    })
    .await??;
    if !output.status.success() {
        bail!(
            "loadgen failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("summary")
}

fn chat_args(url: &str, connections: usize) -> Vec<String> {
    [
        "--ws",
        url,
        "--connections",
        &connections.to_string(),
        "--duration",
        "2",
        "--jwt-secret",
        "a-test-secret-a-test-secret-a-test-secret",
        "--probe",
        MARKER,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn procs_open_every_connection_and_merge_one_summary() -> Result<()> {
    let (url, _) = server().await?;
    let mut args = chat_args(&url, 30);
    args.extend(["--procs", "3"].map(String::from));
    let summary = loadgen(args).await?;
    assert_eq!(summary["shards"], 3);
    assert_eq!(summary["connections_held"], 30);
    assert_eq!(
        summary["probes"][MARKER], 30,
        "every connection got the probe"
    );
    assert_eq!(summary["connections_with_every_probe"], 30);

    let mut echo = vec![
        "--ws",
        &url,
        "--echo",
        "--connections",
        "12",
        "--duration",
        "2",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    echo.extend(["--procs", "2"].map(String::from));
    let summary = loadgen(echo).await?;
    assert_eq!(summary["connections_held"], 12);
    let echoed = summary["latency"]["count"].as_u64().context("count")?;
    assert!(echoed > 100, "echoes timed in both workers: {echoed}");
    assert_eq!(
        summary["latency_histogram"]
            .as_array()
            .context("histogram")?
            .iter()
            .filter_map(|b| b[1].as_u64())
            .sum::<u64>(),
        echoed
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_run_apart_merge_into_the_fleet() -> Result<()> {
    let (url, _) = server().await?;
    let dir = std::env::temp_dir().join(format!("loadgen-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut files = Vec::new();
    for shard in ["0/2", "1/2"] {
        let mut args = chat_args(&url, 9);
        args.extend(["--shard", shard].map(String::from));
        let summary = loadgen(args).await?;
        let held = summary["connections_held"].as_u64().context("held")?;
        assert!(held == 5 || held == 4, "shard {shard} held {held}");
        let file = dir.join(shard.replace('/', "-"));
        std::fs::write(&file, summary.to_string())?;
        files.push(file.display().to_string());
    }
    // A host's shard split again among its workers.
    let mut args = chat_args(&url, 9);
    args.extend(["--shard", "1/2", "--procs", "2"].map(String::from));
    let summary = loadgen(args).await?;
    assert_eq!(summary["connections_held"], 4, "connections 1, 3, 5 and 7");
    assert_eq!(summary["shards"], 2);
    let mut args = vec!["merge".to_owned()];
    args.extend(files);
    let merged = loadgen(args).await?;
    assert_eq!(merged["connections_held"], 9);
    assert_eq!(merged["probes"][MARKER], 9);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_closes_and_reopens_connections_at_its_rate() -> Result<()> {
    let (url, upgrades) = server().await?;
    let mut args = chat_args(&url, 10);
    args.extend(["--churn", "40"].map(String::from));
    let summary = loadgen(args).await?;
    let reconnects = summary["reconnects"].as_u64().context("reconnects")?;
    // 40/s for 2 s over 10 connections; a loaded test host may fall behind.
    assert!(
        (30..=81).contains(&reconnects),
        "{reconnects} reconnects at 40/s for 2 s"
    );
    assert_eq!(summary["reconnect_failures"], 0);
    assert_eq!(summary["connections_held"], 10, "every slot open again");
    assert_eq!(
        summary["closed_by_server"], 0,
        "the churn's own closes are not the server's"
    );
    assert_eq!(
        upgrades.load(Ordering::Relaxed),
        10 + reconnects,
        "the server saw each reconnect as a new upgrade"
    );
    let timed = summary["reconnect_latency"]["count"]
        .as_u64()
        .context("count")?;
    assert_eq!(timed, reconnects, "each reconnect's upgrade timed");
    Ok(())
}

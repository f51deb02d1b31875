//! gochat-chaos: the fault checker. It starts a private local cluster (its
//! own Redis, MariaDB and broker behind proxies it controls, one control
//! process and two gateways), then runs each scenario of the schedule: chat
//! traffic with ack tracking while a nemesis kills, pauses, partitions or
//! slows a part, then the checks on every history. One line per scenario, a
//! summary line `lost=0 duplicated=0 reordered=0 ...`, exit status 1 if any
//! check failed. See docs/chaos.md.

mod checker;
mod clients;
mod cluster;
mod process;
mod proxy;
mod report;
mod rest;
mod scenario;
mod sync;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use tokio::time::Instant;

use crate::checker::Counts;
use crate::cluster::{Cluster, Programs};
use crate::scenario::{Plan, Scenario};

/// Runs GoChat under faults and checks that nothing acked is lost, nothing
/// is duplicated or reordered, and every client converges.
#[derive(Parser)]
#[command(name = "gochat-chaos")]
struct Args {
    /// Scenarios to run (default: all; `--list` names them).
    scenarios: Vec<String>,
    /// Only the representative three: kill-edge1, kill-control, partition-mariadb.
    #[arg(long)]
    quick: bool,
    /// Print the scenario names and exit.
    #[arg(long)]
    list: bool,
    /// Chat clients per scenario (half start on each gateway).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Sends per second per client.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Seconds of traffic before the fault.
    #[arg(long, default_value_t = 4)]
    warmup: u64,
    /// Seconds the fault is held.
    #[arg(long, default_value_t = 6)]
    hold: u64,
    /// Seconds of traffic after healing.
    #[arg(long, default_value_t = 6)]
    after: u64,
    /// Longest wait, in seconds, for every send to be acked after the traffic stops.
    #[arg(long, default_value_t = 90)]
    drain_timeout: u64,
    /// The gochat binary (default: next to this one).
    #[arg(long)]
    gochat: Option<PathBuf>,
    /// The broker binary (default: nisshi or tansu on PATH or in ~/.cargo/bin).
    #[arg(long)]
    broker: Option<PathBuf>,
    /// Seconds to wait after the cluster is up, before the first scenario.
    /// (A freshly started control answers its first sends only after ~10 s:
    /// the baseline should measure a settled cluster.)
    #[arg(long, default_value_t = 15)]
    settle: u64,
    /// Keep the temp dir (logs, data) even when everything passed.
    #[arg(long)]
    keep: bool,
}

fn find_broker() -> Option<PathBuf> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let path = std::env::var("PATH").unwrap_or_default();
    ["nisshi", "tansu"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .chain([PathBuf::from(&home).join(".cargo/bin")])
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn programs(args: &Args) -> Result<Programs> {
    let gochat = match &args.gochat {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("gochat"),
    };
    anyhow::ensure!(
        gochat.is_file(),
        "no gochat binary at {} (cargo build --release -p gochat, or --gochat)",
        gochat.display()
    );
    let broker = match &args.broker {
        Some(p) => p.clone(),
        None => find_broker().context("no nisshi broker (deploy/dev-stack up installs it)")?,
    };
    Ok(Programs { gochat, broker })
}

fn selected(args: &Args) -> Result<Vec<Scenario>> {
    let all = scenario::all();
    let names: Vec<String> = if args.quick {
        scenario::QUICK.iter().map(|s| (*s).to_owned()).collect()
    } else if args.scenarios.is_empty() {
        all.iter().map(|s| s.name.to_owned()).collect()
    } else {
        args.scenarios.clone()
    };
    let mut out = Vec::new();
    for name in names {
        let mut known: Vec<Scenario> = scenario::all();
        let Some(pos) = known.iter().position(|s| s.name == name) else {
            bail!("unknown scenario {name} (--list names them)");
        };
        out.push(known.swap_remove(pos));
    }
    Ok(out)
}

fn plan(args: &Args) -> Plan {
    Plan {
        clients: args.clients.max(2),
        rate: args.rate,
        warmup: Duration::from_secs(args.warmup),
        hold: Duration::from_secs(args.hold),
        after: Duration::from_secs(args.after),
        drain: Duration::from_secs(args.drain_timeout),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs the selected scenarios; true when every check passed.
async fn run(args: Args) -> Result<bool> {
    let scenarios = selected(&args)?;
    let programs = programs(&args)?;
    let plan = plan(&args);
    let started = Instant::now();
    eprintln!("chaos: starting a private cluster");
    let mut cluster = Cluster::start(&programs, args.keep).await?;
    eprintln!(
        "chaos: cluster up in {:.1}s in {} (control {}, gateways {} {})",
        started.elapsed().as_secs_f64(),
        cluster.dir.display(),
        cluster.http,
        cluster.ws[0],
        cluster.ws[1]
    );
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let mut total = Counts::default();
    let mut failed = 0;
    for (n, s) in scenarios.iter().enumerate() {
        let faults = s.describe(&plan);
        let began = Instant::now();
        let failed_before = failed;
        match scenario::run(&mut cluster, s, n, run_id, &plan).await {
            Ok(o) => {
                let bad = o.counts.failed() || !o.crashed.is_empty();
                failed += usize::from(bad);
                total.add(&o.counts);
                let ms = |v: Option<u128>| v.map_or("-".to_owned(), |v| v.to_string());
                let crashed = if o.crashed.is_empty() {
                    String::new()
                } else {
                    format!(" crashed={}", o.crashed.join(","))
                };
                say(&format!(
                    "scenario={} messages={} faults=\"{faults}\" {} recovery_ms={} drain_ms={} push_ms={} ack_p50_ms={} ack_p99_ms={} live={} reconnects={} resent={}{crashed} secs={} result={}",
                    s.name,
                    o.messages,
                    o.counts,
                    ms(o.recovery_ms),
                    ms(o.drain_ms),
                    ms(o.push_ms),
                    o.ack_ms.0,
                    o.ack_ms.1,
                    o.live,
                    o.reconnects,
                    o.resent,
                    began.elapsed().as_secs(),
                    if bad { "FAIL" } else { "ok" }
                ));
                for d in &o.details {
                    say(&format!("  {d}"));
                }
            }
            Err(e) => {
                failed += 1;
                say(&format!(
                    "scenario={} faults=\"{faults}\" result=ERROR error=\"{e:#}\"",
                    s.name
                ));
            }
        }
        if failed > failed_before && n + 1 < scenarios.len() {
            // A failed scenario may leave the cluster stuck (a producer that
            // never recovers): the next one starts from fresh processes.
            match cluster.reset().await {
                Ok(()) => say(
                    "  after: restarted control, edge1, edge2 so the next scenario starts clean",
                ),
                Err(e) => say(&format!("  after: could not restart the services: {e:#}")),
            }
        }
    }
    say(&format!(
        "{total} scenarios={} failed={failed} secs={}",
        scenarios.len(),
        started.elapsed().as_secs()
    ));
    if failed > 0 {
        cluster.keep = true;
    }
    if cluster.keep {
        eprintln!("chaos: logs and data kept in {}", cluster.dir.display());
    }
    Ok(failed == 0)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.list {
        let plan = plan(&args);
        for s in scenario::all() {
            say(&format!("{:<18} {}", s.name, s.describe(&plan)));
        }
        return std::process::ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chaos: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        // Dropping the run on a signal drops the cluster, which kills every
        // process it started.
        tokio::select! {
            r = run(args) => r,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
            _ = term.recv() => bail!("terminated"),
        }
    });
    // Client tasks may still be parked on sockets: do not wait for them.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

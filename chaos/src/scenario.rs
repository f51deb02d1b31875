//! The schedule of faults and one scenario's run: fresh users and a group,
//! traffic from every client, the fault injected, held and healed, traffic on
//! for a while, then a drain until every send is acked, the final pulls, the
//! histories and the checks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use gochat_proto::ids::{Id, group_conversation_id};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::checker::{self, Counts};
use crate::clients::{self, Phase, Spec};
use crate::cluster::{Cluster, Dep, Role};
use crate::proxy::{Mode, Setting};
use crate::report::Report;
use crate::rest::{Api, Entry};

/// What a scenario does to the cluster.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Nothing: the baseline.
    None,
    /// kill -9, then start again.
    Kill(Role),
    /// kill -9 control and both gateways at once, then start them all.
    KillServices,
    /// SIGSTOP, then SIGCONT.
    Pause(Role),
    /// The proxy in front of a dependency set to this, then back to pass.
    Net(Dep, Setting),
}

/// One entry of the schedule.
pub struct Scenario {
    /// Its name on the command line and in the output.
    pub name: &'static str,
    /// Its fault.
    pub fault: Fault,
}

/// The three `--quick` runs (the test command's): a gateway crash, a control
/// crash mid-stream and a database partition.
pub const QUICK: [&str; 3] = ["kill-edge1", "kill-control", "partition-mariadb"];

const fn latency(ms: u64) -> Setting {
    Setting {
        mode: Mode::Pass,
        latency: Duration::from_millis(ms),
    }
}

const fn mode(mode: Mode) -> Setting {
    Setting {
        mode,
        latency: Duration::ZERO,
    }
}

/// Every scenario of the full run, in its order.
pub fn all() -> Vec<Scenario> {
    use Fault::*;
    let s = |name, fault| Scenario { name, fault };
    vec![
        s("baseline", None),
        s("kill-edge1", Kill(Role::Edge1)),
        s("kill-edge2", Kill(Role::Edge2)),
        s("kill-control", Kill(Role::Control)),
        s("kill-broker", Kill(Role::Broker)),
        s("kill-redis", Kill(Role::Redis)),
        s("kill-mariadb", Kill(Role::Mariadb)),
        s("pause-control", Pause(Role::Control)),
        s("pause-edge1", Pause(Role::Edge1)),
        s("pause-broker", Pause(Role::Broker)),
        s("partition-mariadb", Net(Dep::Mariadb, mode(Mode::Cut))),
        s("partition-redis", Net(Dep::Redis, mode(Mode::Cut))),
        s("partition-broker", Net(Dep::Broker, mode(Mode::Cut))),
        s(
            "blackhole-mariadb",
            Net(Dep::Mariadb, mode(Mode::Blackhole)),
        ),
        s("blackhole-redis", Net(Dep::Redis, mode(Mode::Blackhole))),
        s("latency-mariadb", Net(Dep::Mariadb, latency(200))),
        s("latency-redis", Net(Dep::Redis, latency(200))),
        s("latency-broker", Net(Dep::Broker, latency(200))),
        // Last: it restarts every service, and a failure is followed by
        // another restart, which would colour the next scenario's timings.
        s("kill-services", KillServices),
    ]
}

fn dep_name(dep: Dep) -> &'static str {
    match dep {
        Dep::Mariadb => "control<->mariadb",
        Dep::Redis => "control<->redis",
        Dep::Broker => "every client<->broker",
    }
}

impl Scenario {
    /// The fault in words, for the output line.
    pub fn describe(&self, plan: &Plan) -> String {
        let s = plan.hold.as_secs();
        match self.fault {
            Fault::None => "none".into(),
            Fault::Kill(r) => format!("kill -9 {}, restart after {s}s", r.name()),
            Fault::KillServices => format!("kill -9 control+edge1+edge2, restart after {s}s"),
            Fault::Pause(r) => format!("SIGSTOP {}, SIGCONT after {s}s", r.name()),
            Fault::Net(d, set) => match set.mode {
                Mode::Cut => format!("partition {} (refuse+cut) for {s}s", dep_name(d)),
                Mode::Blackhole => format!("blackhole {} (hold bytes) for {s}s", dep_name(d)),
                Mode::Pass => format!(
                    "+{}ms each way {} for {s}s",
                    set.latency.as_millis(),
                    dep_name(d)
                ),
            },
        }
    }
}

/// How long each phase lasts, and the traffic.
pub struct Plan {
    /// Clients per scenario.
    pub clients: usize,
    /// Sends per second per client.
    pub rate: f64,
    /// Traffic before the fault.
    pub warmup: Duration,
    /// How long the fault is held.
    pub hold: Duration,
    /// Traffic after healing.
    pub after: Duration,
    /// Longest wait for every send to be acked.
    pub drain: Duration,
}

/// What a scenario came to.
pub struct Outcome {
    /// Distinct sends acked.
    pub messages: usize,
    /// The checks' counts.
    pub counts: Counts,
    /// Heal → every client's first ack of a send made after the heal (the slowest client).
    pub recovery_ms: Option<u128>,
    /// Heal → the last ack of a send made before the heal.
    pub drain_ms: Option<u128>,
    /// Processes that died without being killed.
    pub crashed: Vec<&'static str>,
    /// Live `message` frames received.
    pub live: usize,
    /// Connections beyond each client's first.
    pub reconnects: u32,
    /// Frames written again.
    pub resent: usize,
    /// Heal → every client's first live `message` of a send made after the
    /// heal (the slowest client): when push works again.
    pub push_ms: Option<u128>,
    /// First write → first ack, ms: median and 99th percentile.
    pub ack_ms: (u128, u128),
    /// Explanations of the findings.
    pub details: Vec<String>,
}

/// The GoChat processes (not the dependencies).
const SERVICES: [Role; 3] = [Role::Control, Role::Edge1, Role::Edge2];

async fn inject(cluster: &mut Cluster, fault: Fault) -> Result<()> {
    match fault {
        Fault::None => {}
        Fault::Kill(r) => cluster.kill(r),
        Fault::KillServices => {
            for r in SERVICES {
                cluster.kill(r);
            }
        }
        Fault::Pause(r) => cluster.pause(r, true)?,
        Fault::Net(d, set) => cluster.proxy(d).context("no such proxy")?.set(set),
    }
    Ok(())
}

async fn heal(cluster: &mut Cluster, fault: Fault) -> Result<()> {
    match fault {
        Fault::None => {}
        Fault::Kill(r) => cluster.restart(r)?,
        Fault::KillServices => {
            for r in SERVICES {
                cluster.restart(r)?;
            }
        }
        Fault::Pause(r) => cluster.pause(r, false)?,
        Fault::Net(d, _) => cluster
            .proxy(d)
            .context("no such proxy")?
            .set(Setting::PASS),
    }
    Ok(())
}

/// Runs scenario number `n` of this run (`run` names the run's users).
pub async fn run(
    cluster: &mut Cluster,
    scenario: &Scenario,
    n: usize,
    run: &str,
    plan: &Plan,
) -> Result<Outcome> {
    let mut details: Vec<String> = cluster
        .heal_all(Duration::from_secs(90))
        .await?
        .into_iter()
        .map(|w| format!("before: {w}"))
        .collect();
    let api = Api::new(&cluster.http)?;
    let users: Vec<(i64, String)> = futures::stream::iter(0..plan.clients)
        .map(|i| {
            let api = api.clone();
            async move { api.user(&format!("ch{run}s{n}u{i}"), "chaos").await }
        })
        .buffered(4)
        .try_collect()
        .await?;
    let ids: Vec<i64> = users.iter().map(|(id, _)| *id).collect();
    let (owner, owner_token) = users.first().context("no clients")?;
    let members: Vec<i64> = ids.iter().copied().filter(|id| id != owner).collect();
    let group_id = api
        .group(
            owner_token,
            &format!("chaos {run} {}", scenario.name),
            &members,
        )
        .await?;

    let (phase_tx, phase_rx) = watch::channel(Phase::Send);
    let mut gauges = Vec::new();
    let mut tasks = Vec::new();
    for (i, (id, token)) in users.iter().enumerate() {
        let gauge = Arc::new(AtomicUsize::new(0));
        gauges.push(gauge.clone());
        let spec = Spec {
            user_id: *id,
            token: token.clone(),
            peers: ids.iter().copied().filter(|p| p != id).collect(),
            group_id,
            gateway: i % 2,
            tag: format!("s{n}c{i}"),
            rate: plan.rate,
        };
        tasks.push(tokio::spawn(clients::run(
            spec,
            api.clone(),
            cluster.ws.clone(),
            phase_rx.clone(),
            gauge,
        )));
    }

    tokio::time::sleep(plan.warmup).await;
    inject(cluster, scenario.fault).await?;
    tokio::time::sleep(plan.hold).await;
    heal(cluster, scenario.fault).await?;
    let healed = Instant::now();
    tokio::time::sleep(plan.after).await;
    phase_tx.send_replace(Phase::Drain);
    let deadline = Instant::now() + plan.drain;
    while Instant::now() < deadline && gauges.iter().any(|g| g.load(Ordering::Relaxed) > 0) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Deliveries still in flight get a moment to arrive before the sockets close.
    tokio::time::sleep(Duration::from_secs(1)).await;
    phase_tx.send_replace(Phase::Stop);
    let tokens: Vec<&str> = users.iter().map(|(_, t)| t.as_str()).collect();
    if !quiesce(&api, &tokens, Duration::from_secs(30)).await {
        details
            .push("info: conversations were still growing 30 s after the traffic stopped".into());
    }
    phase_tx.send_replace(Phase::Pull);
    let mut reports: Vec<Report> = Vec::new();
    for task in tasks {
        reports.push(task.await.context("a client task failed")?);
    }
    let crashed = cluster.exited();

    let mut histories: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for (cid, reader) in checker::touched(&reports, group_id) {
        let token = &reports[reader].token;
        let history = api
            .pull(token, &cid, 0, Duration::from_secs(60))
            .await
            .with_context(|| format!("pulling the history of {cid}"))?;
        histories.insert(cid, history);
    }
    // The group's history exists even if no send reached it.
    let group_cid = group_conversation_id(Id(group_id));
    if let std::collections::btree_map::Entry::Vacant(slot) = histories.entry(group_cid) {
        let history = api
            .pull(owner_token, slot.key(), 0, Duration::from_secs(60))
            .await?;
        slot.insert(history);
    }
    let findings = checker::check(&reports, &histories, group_id);
    details.extend(findings.details);
    for role in &crashed {
        details.push(format!(
            "crashed: {role} exited without being killed; see {}",
            cluster.dir.join(format!("{role}.log")).display()
        ));
    }
    let (recovery_ms, drain_ms) = recovery(&reports, healed);
    let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &reports {
        for (code, n) in &r.retry_codes {
            *codes.entry(code).or_default() += n;
        }
    }
    if !codes.is_empty() {
        let list: Vec<String> = codes.iter().map(|(c, n)| format!("{c}={n}")).collect();
        details.push(format!(
            "info: \"resend later\" answers: {}",
            list.join(" ")
        ));
    }
    let messages = reports
        .iter()
        .map(|r| {
            r.acks
                .iter()
                .map(|a| &a.client_msg_id)
                .collect::<std::collections::HashSet<_>>()
                .len()
        })
        .sum();
    Ok(Outcome {
        messages,
        counts: findings.counts,
        recovery_ms,
        drain_ms,
        crashed,
        live: reports.iter().map(|r| r.deliveries.len()).sum(),
        reconnects: reports.iter().map(|r| r.sessions.saturating_sub(1)).sum(),
        resent: reports.iter().map(|r| r.resent).sum(),
        ack_ms: ack_percentiles(&reports),
        push_ms: push_recovery(&reports, healed),
        details,
    })
}

/// Waits until every user's `GET /conversations` shows the same last seqs
/// twice, 2 s apart: the server has stored what it will (a send still in
/// the log after the drain may be stored late). False if that took longer
/// than `within`.
async fn quiesce(api: &Api, tokens: &[&str], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut last: Option<BTreeMap<String, i64>> = None;
    loop {
        let mut now: BTreeMap<String, i64> = BTreeMap::new();
        let mut complete = true;
        for token in tokens {
            match api.conversations(token, Duration::from_secs(5)).await {
                Ok(list) => now.extend(list),
                Err(_) => complete = false,
            }
        }
        if complete && last.as_ref() == Some(&now) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        last = complete.then_some(now);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Heal → the slowest client's first live delivery of a send made after the heal.
fn push_recovery(reports: &[Report], healed: Instant) -> Option<u128> {
    let first_sent: std::collections::HashMap<&str, Instant> = reports
        .iter()
        .flat_map(|r| r.sent.iter().map(|(cmid, s)| (cmid.as_str(), s.first)))
        .collect();
    let mut worst: Option<u128> = None;
    for r in reports {
        let first = r
            .deliveries
            .iter()
            .filter(|d| {
                d.entry
                    .client_msg_id
                    .as_deref()
                    .and_then(|c| first_sent.get(c))
                    .is_some_and(|sent| *sent >= healed)
            })
            .map(|d| d.at.saturating_duration_since(healed).as_millis())
            .min();
        if let Some(first) = first {
            worst = Some(worst.map_or(first, |w| w.max(first)));
        }
    }
    worst
}

/// Median and 99th percentile of first write → first ack over every acked send.
fn ack_percentiles(reports: &[Report]) -> (u128, u128) {
    let mut all: Vec<u128> = Vec::new();
    for r in reports {
        let mut seen = std::collections::HashSet::new();
        for a in &r.acks {
            if let Some(sent) = r.sent.get(&a.client_msg_id)
                && seen.insert(&a.client_msg_id)
            {
                all.push(a.at.saturating_duration_since(sent.first).as_millis());
            }
        }
    }
    all.sort_unstable();
    let at = |q: f64| {
        let i = ((all.len() as f64 - 1.0) * q).round() as usize;
        all.get(i).copied().unwrap_or(0)
    };
    (at(0.5), at(0.99))
}

/// (recovery, drain) in ms after `healed`: recovery is, for the slowest
/// client, the wait for the first ack of a send it made after the heal;
/// drain is the wait for the last ack of a send made before it.
fn recovery(reports: &[Report], healed: Instant) -> (Option<u128>, Option<u128>) {
    let mut recovery: Option<u128> = None;
    let mut drain: Option<u128> = None;
    for r in reports {
        let mut first: Option<u128> = None;
        for a in &r.acks {
            let Some(sent) = r.sent.get(&a.client_msg_id) else {
                continue;
            };
            let after = a.at.saturating_duration_since(healed).as_millis();
            if sent.first >= healed {
                first = Some(first.map_or(after, |f| f.min(after)));
            } else {
                drain = Some(drain.map_or(after, |d| d.max(after)));
            }
        }
        if let Some(first) = first {
            recovery = Some(recovery.map_or(first, |m| m.max(first)));
        }
    }
    (recovery, drain)
}

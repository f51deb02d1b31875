//! The chat clients: each one user with one WebSocket, sending 1:1 and group
//! messages at a modest rate and behaving as docs/protocol.md §3.6 asks of a
//! careful client — every send kept until its `ack`, the same frame resent
//! after 2 s without an answer and after a reconnect, reconnects with backoff
//! to either gateway, pulls after a reconnect and on a seq gap. It records
//! what the checks need: every ack, every live `message` with the connection
//! (session) it came on, and, after a final pull, its view of each
//! conversation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use gochat_proto::ids::{Id, group_conversation_id, single_conversation_id};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::report::{Ack, Delivery, Report, Sent};
use crate::rest::{Api, Entry};
use crate::sync::{Pulled, contiguous, pull};

/// Resend a frame that got no answer after this long.
const RESEND_AFTER: Duration = Duration::from_secs(2);
/// Frames per second a client writes at most (the edge allows 30).
const FRAME_BUDGET: f64 = 20.0;
/// A connection with nothing received for this long (pings included) is
/// taken for dead, as a client with a heartbeat would.
const SILENT_FOR: Duration = Duration::from_secs(12);

/// Who a client is and whom it writes to.
pub struct Spec {
    /// Its user.
    pub user_id: i64,
    /// Its token.
    pub token: String,
    /// Every other user of the scenario (1:1 targets).
    pub peers: Vec<i64>,
    /// The scenario's group.
    pub group_id: i64,
    /// The gateway it connects to first.
    pub gateway: usize,
    /// Prefix of its client_msg_ids.
    pub tag: String,
    /// Sends per second while the scenario sends.
    pub rate: f64,
}

/// What the scenario tells its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Make new sends (and resend).
    Send,
    /// Only resend until everything is acked.
    Drain,
    /// Close the connection and wait.
    Stop,
    /// Pull (the server has stopped storing), report.
    Pull,
}

impl Phase {
    /// Stop or later: no connection any more.
    fn closed(self) -> bool {
        matches!(self, Phase::Stop | Phase::Pull)
    }
}

struct Pending {
    frame: String,
    /// When last written; None: write at the next chance.
    last: Option<Instant>,
    written: bool,
}

struct Client {
    spec: Spec,
    api: Api,
    rng: StdRng,
    report: Report,
    pending: BTreeMap<String, Pending>,
    gauge: Arc<AtomicUsize>,
    next_send: Instant,
    counter: u64,
    tokens: f64,
    refilled: Instant,
    dirty: BTreeSet<String>,
    list_needed: bool,
    /// The conversations this user is in: the group and its 1:1s.
    mine: BTreeSet<String>,
}

enum End {
    Dropped,
    Stop,
}

/// Runs one client until the scenario says stop, then pulls and reports.
/// `gauge` shows how many of its sends are still unacked.
pub async fn run(
    spec: Spec,
    api: Api,
    ws: [String; 2],
    mut phase: watch::Receiver<Phase>,
    gauge: Arc<AtomicUsize>,
) -> Report {
    let mut gateway = spec.gateway;
    let mine = spec
        .peers
        .iter()
        .map(|&p| single_conversation_id(Id(spec.user_id), Id(p)))
        .chain([group_conversation_id(Id(spec.group_id))])
        .collect();
    let mut c = Client {
        rng: StdRng::seed_from_u64(spec.user_id as u64),
        report: Report {
            user_id: spec.user_id,
            token: spec.token.clone(),
            sent: HashMap::new(),
            acks: Vec::new(),
            unacked: Vec::new(),
            refused: Vec::new(),
            deliveries: Vec::new(),
            view: BTreeMap::new(),
            listed: None,
            sessions: 0,
            resent: 0,
            retry_codes: BTreeMap::new(),
            kicks: Vec::new(),
            notes: Vec::new(),
        },
        spec,
        api,
        pending: BTreeMap::new(),
        gauge,
        next_send: Instant::now(),
        counter: 0,
        tokens: FRAME_BUDGET,
        refilled: Instant::now(),
        dirty: BTreeSet::new(),
        list_needed: false,
        mine,
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        if phase.borrow().closed() {
            break;
        }
        let url = format!("{}?token={}&device_id=chaos", ws[gateway % 2], c.spec.token);
        let connect = tokio_tungstenite::connect_async(url);
        if let Ok(Ok((socket, _))) = tokio::time::timeout(Duration::from_secs(5), connect).await {
            backoff = Duration::from_millis(200);
            c.report.sessions += 1;
            if let End::Stop = c.session(socket, &mut phase).await {
                break;
            }
        }
        let jitter = c.rng.random_range(0..100);
        c.idle(backoff + Duration::from_millis(jitter), &mut phase)
            .await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
        // The other gateway next: the one just lost may be the one killed.
        gateway += 1;
    }
    // Pull only once the server has stored everything it is going to:
    // a pull racing the last stores would look like a client left behind.
    while *phase.borrow_and_update() != Phase::Pull {
        if phase.changed().await.is_err() {
            break;
        }
    }
    c.finish().await
}

impl Client {
    async fn session(
        &mut self,
        socket: tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        phase: &mut watch::Receiver<Phase>,
    ) -> End {
        let session = self.report.sessions;
        let (mut sink, mut stream) = socket.split();
        // A new connection: resend everything unanswered, and pull what the
        // time without a connection may have hidden.
        for p in self.pending.values_mut() {
            p.last = None;
        }
        self.list_needed = session > 1;
        let (pull_tx, mut pull_rx) = mpsc::channel::<Pulled>(1);
        let mut pulling = false;
        let mut last_pull = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_rx = Instant::now();
        let mut last_ping = Instant::now();
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        last_rx = Instant::now();
                        self.on_frame(session, text.as_str());
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return End::Dropped,
                    Some(Ok(_)) => last_rx = Instant::now(),
                },
                Some(pulled) = pull_rx.recv() => {
                    pulling = false;
                    self.merge(pulled);
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let ph = *phase.borrow_and_update();
                    if ph.closed() {
                        let _ = tokio::time::timeout(
                            Duration::from_secs(1),
                            sink.send(Message::Close(None)),
                        ).await;
                        return End::Stop;
                    }
                    if ph == Phase::Send {
                        self.generate();
                    }
                    let mut frames = self.due();
                    if now - last_ping > Duration::from_secs(4) {
                        last_ping = now;
                        frames.push(json!({"type": "ping"}).to_string());
                    }
                    for frame in frames {
                        let write = sink.send(Message::text(frame));
                        match tokio::time::timeout(Duration::from_secs(5), write).await {
                            Ok(Ok(())) => {}
                            _ => return End::Dropped,
                        }
                    }
                    if now - last_rx > SILENT_FOR {
                        self.report.notes.push(format!("session {session}: silent for {SILENT_FOR:?}; reconnecting"));
                        return End::Dropped;
                    }
                    if !pulling && now - last_pull > Duration::from_secs(1)
                        && (self.list_needed || !self.dirty.is_empty())
                    {
                        pulling = true;
                        last_pull = now;
                        self.start_pull(pull_tx.clone(), Duration::from_secs(3));
                    }
                }
            }
        }
    }

    /// Waits `dur` without a connection, still queueing new sends (a real
    /// client's outbox fills while it is offline).
    async fn idle(&mut self, dur: Duration, phase: &mut watch::Receiver<Phase>) {
        let until = Instant::now() + dur;
        while Instant::now() < until {
            match *phase.borrow_and_update() {
                Phase::Stop | Phase::Pull => return,
                Phase::Send => self.generate(),
                Phase::Drain => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// New sends due at the client's rate, 1:1 to a random peer or to the group.
    fn generate(&mut self) {
        let now = Instant::now();
        if now.saturating_duration_since(self.next_send) > Duration::from_secs(1) {
            self.next_send = now;
        }
        while self.next_send <= now {
            let gap = self.rng.random_range(0.5..1.5) / self.spec.rate.max(0.01);
            self.next_send += Duration::from_secs_f64(gap);
            self.counter += 1;
            let cmid = format!("{}-{:06}", self.spec.tag, self.counter);
            let content = format!("chaos {cmid}");
            let to_group = self.peers_empty() || self.rng.random_bool(0.5);
            let (frame, cid) = if to_group {
                let frame = json!({"type": "send", "client_msg_id": cmid,
                    "group_id": self.spec.group_id.to_string(), "content": content});
                (frame, group_conversation_id(Id(self.spec.group_id)))
            } else {
                let peer = self.spec.peers[self.rng.random_range(0..self.spec.peers.len())];
                let frame = json!({"type": "send", "client_msg_id": cmid,
                    "to_user_id": peer.to_string(), "content": content});
                (
                    frame,
                    single_conversation_id(Id(self.spec.user_id), Id(peer)),
                )
            };
            self.report
                .sent
                .insert(cmid.clone(), Sent { first: now, cid });
            self.pending.insert(
                cmid,
                Pending {
                    frame: frame.to_string(),
                    last: None,
                    written: false,
                },
            );
        }
        self.gauge.store(self.pending.len(), Ordering::Relaxed);
    }

    fn peers_empty(&self) -> bool {
        self.spec.peers.is_empty()
    }

    /// Frames to write now: first sends and resends, oldest first, within the
    /// client's frame budget.
    fn due(&mut self) -> Vec<String> {
        let now = Instant::now();
        let elapsed = (now - self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * FRAME_BUDGET).min(FRAME_BUDGET);
        let mut out = Vec::new();
        for p in self.pending.values_mut() {
            if self.tokens < 1.0 {
                break;
            }
            if p.last.is_none_or(|t| now - t >= RESEND_AFTER) {
                if p.written {
                    self.report.resent += 1;
                }
                p.written = true;
                p.last = Some(now);
                self.tokens -= 1.0;
                out.push(p.frame.clone());
            }
        }
        out
    }

    fn on_frame(&mut self, session: u32, text: &str) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            self.report.notes.push(format!("not JSON: {text}"));
            return;
        };
        let cmid = v["client_msg_id"].as_str().map(str::to_owned);
        match v["type"].as_str().unwrap_or_default() {
            "ack" => {
                let (Some(cmid), Some(cid), Some(seq), Some(id)) = (
                    cmid,
                    v["conversation_id"].as_str(),
                    v["seq_id"].as_i64(),
                    v["message_id"].as_str(),
                ) else {
                    self.report.notes.push(format!("odd ack: {text}"));
                    return;
                };
                self.see(cid, seq, id);
                self.report.acks.push(Ack {
                    client_msg_id: cmid.clone(),
                    cid: cid.to_owned(),
                    seq,
                    message_id: id.to_owned(),
                    at: Instant::now(),
                });
                self.pending.remove(&cmid);
                self.gauge.store(self.pending.len(), Ordering::Relaxed);
            }
            "message" => {
                let (Some(cid), Some(entry)) =
                    (v["conversation_id"].as_str(), Entry::from_json(&v))
                else {
                    self.report.notes.push(format!("odd message: {text}"));
                    return;
                };
                self.see(cid, entry.seq, &entry.message_id);
                self.report.deliveries.push(Delivery {
                    session,
                    cid: cid.to_owned(),
                    entry,
                    at: Instant::now(),
                });
            }
            "error" => {
                let code = v["code"].as_str().unwrap_or_default();
                match cmid {
                    Some(cmid) if matches!(code, "overloaded" | "rate_limited" | "internal") => {
                        *self.report.retry_codes.entry(code.to_owned()).or_default() += 1;
                        // Resend later: about a second from now.
                        if let Some(p) = self.pending.get_mut(&cmid) {
                            p.last = Some(Instant::now() - RESEND_AFTER + Duration::from_secs(1));
                        }
                    }
                    Some(cmid) => {
                        if self.pending.remove(&cmid).is_some() {
                            self.report.refused.push(format!("{cmid}: {text}"));
                        }
                        self.gauge.store(self.pending.len(), Ordering::Relaxed);
                    }
                    None => self.report.notes.push(format!("error frame: {text}")),
                }
            }
            "notify" => {
                if let Some(cid) = v["conversation_id"].as_str() {
                    self.dirty.insert(cid.to_owned());
                }
            }
            "kick" => self.report.kicks.push(format!("session {session}: {text}")),
            _ => {}
        }
    }

    /// Adds a message to the view; a seq above the contiguous prefix + 1
    /// means something was missed: pull.
    fn see(&mut self, cid: &str, seq: i64, id: &str) {
        if !self.mine.contains(cid) {
            // A frame meant for another connection (the checks count it):
            // this user cannot read that conversation, so it is not pulled.
            return;
        }
        let conv = self.report.view.entry(cid.to_owned()).or_default();
        if let Some(old) = conv.insert(seq, id.to_owned())
            && old != id
        {
            self.report
                .notes
                .push(format!("{cid} seq {seq}: seen as {old}, now as {id}"));
        }
        if seq > contiguous(conv) + 1 {
            self.dirty.insert(cid.to_owned());
        }
    }

    fn start_pull(&mut self, tx: mpsc::Sender<Pulled>, within: Duration) {
        let api = self.api.clone();
        let token = self.spec.token.clone();
        let list = std::mem::take(&mut self.list_needed);
        let held: HashMap<String, i64> = self
            .report
            .view
            .iter()
            .map(|(cid, conv)| (cid.clone(), contiguous(conv)))
            .collect();
        let dirty = std::mem::take(&mut self.dirty);
        tokio::spawn(async move {
            let _ = tx
                .send(pull(api, token, list, held, dirty, within).await)
                .await;
        });
    }

    fn merge(&mut self, pulled: Pulled) {
        if pulled.asked_list && pulled.listed.is_none() {
            // The listing failed: try again on the next pull.
            self.list_needed = true;
        }
        if let Some(listed) = pulled.listed {
            self.report.listed = Some(listed.into_iter().collect());
        }
        for (cid, page) in pulled.pages {
            match page {
                Ok(entries) => {
                    for e in entries {
                        self.see(&cid, e.seq, &e.message_id);
                    }
                }
                Err(_) => {
                    self.dirty.insert(cid);
                }
            }
        }
    }

    /// The final pull: list, then every conversation from its contiguous
    /// prefix on, until the view is whole or 30 s have passed.
    async fn finish(mut self) -> Report {
        self.report.listed = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        let (tx, mut rx) = mpsc::channel(1);
        loop {
            self.list_needed = true;
            self.dirty.extend(self.report.view.keys().cloned());
            self.start_pull(tx.clone(), Duration::from_secs(10));
            if let Some(pulled) = rx.recv().await {
                let failed =
                    pulled.listed.is_none() || pulled.pages.iter().any(|(_, p)| p.is_err());
                self.merge(pulled);
                if !failed {
                    break;
                }
            }
            if Instant::now() >= deadline {
                self.report
                    .notes
                    .push("the final pull did not succeed in 30 s".into());
                break;
            }
        }
        self.report.unacked = self.pending.keys().cloned().collect();
        self.report
    }
}

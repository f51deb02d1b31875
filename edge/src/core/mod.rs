//! A worker core: one monoio runtime on one pinned thread with its own
//! `SO_REUSEPORT` listener, epoll set (`poller.rs`), connection table,
//! heartbeat wheel, upstream producer and downstream partition. Nothing here is shared with other cores;
//! the only cross-thread traffic is the registry side thread's channel and the
//! broker client's wake-ups.

mod coalescing;
mod conn;
mod poller;
mod rooms;
mod session;
mod spans;
mod text;
pub(crate) mod transport;
mod wheel;
mod window;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::{Either, select};
use gochat_proto::kafka::DownstreamKey;
use slab::Slab;

use crate::auth::TokenVerifier;
use crate::backend::{CoreLinks, Downstream, Upstream};
use crate::config::EdgeConfig;
use crate::registry::RegistryHandle;
use crate::ws::codec::{CloseRequest, close_code};
use conn::Conn;
use rooms::Rooms;
use wheel::Wheel;
use window::SendWindow;

/// Read buffers lent to connections for one read each.
const READ_BUFFER: usize = 16 * 1024;
/// Upgrades under way on a core at most. Past this the core stops accepting
/// and a connect storm waits in the kernel's accept queue (listen backlog
/// 4096), which costs no user-space memory: each upgrade holds its request
/// buffer, token and registry round trip for as long as the registry takes.
/// Unbounded, 10,000 clients connecting faster than the registry answered
/// left the gateway 7.9 KB per connection above its start (the allocator
/// keeps what the backlog used), against 1.3 KB when they came at a pace the
/// registry kept up with; with this bound, 1.8 KB, at the same connect rate.
const UPGRADES_IN_FLIGHT: usize = 128;
/// Connection ids are unique per gateway: accept serial (32 bits) | core
/// (8 bits) | slot in the core's table (24 bits). Unique across cores matters:
/// the session registry tells connections apart by id. Unique across restarts
/// matters too: records addressed to the previous process's connections (acks
/// still in the log, kicks and pushes routed from stale registry entries) must
/// not land on a new connection that happens to get the same id — the fault
/// checker saw users receive other users' acks and kicks after a gateway
/// restart when the serial restarted at 1. So the serial is a clock: each
/// accept takes max(previous + 1, milliseconds now), and a restarted process
/// starts above every id its predecessor gave (unless that one accepted more
/// than one connection per millisecond per core over its whole life).
const SLOT_BITS: u32 = 24;
const CORE_BITS: u32 = 8;

/// What every core shares (read-only).
pub(crate) struct Shared {
    /// Validated config.
    pub(crate) config: EdgeConfig,
    /// Token checks.
    pub(crate) verifier: TokenVerifier,
    /// `wss://`: every accepted socket starts a TLS session with this.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// Spans of client frames and deliveries, when tracing is on.
    pub(crate) tracer: Option<opentelemetry::global::BoxedTracer>,
}

/// One core's state.
struct Core {
    /// Core index (= downstream partition).
    index: u32,
    /// Shared read-only state.
    shared: Arc<Shared>,
    /// Live connections.
    table: RefCell<Slab<Rc<Conn>>>,
    /// Group rooms: which of those connections are in which group.
    rooms: RefCell<Rooms>,
    /// Where client frames go.
    upstream: Box<dyn Upstream>,
    /// Sends passed upstream and not answered yet.
    window: RefCell<SendWindow>,
    /// The side thread.
    registry: RegistryHandle,
    /// The registry epoch this core's connections were last registered in.
    registry_epoch: Cell<u64>,
    /// Set once draining: new upgrades are refused, connections are closing.
    draining: Cell<bool>,
    read_pool: RefCell<Vec<Vec<u8>>>,
    /// Upgrades under way (see [`UPGRADES_IN_FLIGHT`]), and the accept
    /// loop's waker while it waits for one to finish.
    upgrading: Cell<usize>,
    accept_waiting: Cell<Option<std::task::Waker>>,
    accepted: Cell<u64>,
    wheel: RefCell<Wheel>,
    per_ip: RefCell<HashMap<IpAddr, usize>>,
    /// When the core started, in [`coarse_seconds`].
    started: u64,
    /// What `/metrics` shows of this core.
    metrics: crate::ops::CoreMetrics,
    /// The core's epoll set, told of the core's progress.
    poller: Rc<poller::Poller>,
}

impl Core {
    /// Seconds since the core started (the wheel's clock).
    fn now(&self) -> u64 {
        coarse_seconds().saturating_sub(self.started)
    }

    /// A read buffer from the pool (returned with [`Core::give_buffer`]).
    fn take_buffer(&self) -> Vec<u8> {
        self.read_pool
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(READ_BUFFER))
    }

    /// Returns a read buffer to the pool.
    fn give_buffer(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let mut pool = self.read_pool.borrow_mut();
        // Keep a few: a burst of simultaneous reads should not pin memory forever.
        if pool.len() < 64 && buffer.capacity() == READ_BUFFER {
            pool.push(buffer);
        }
    }

    /// Adds a connection; returns it, or `None` when the core is full.
    fn add(
        &self,
        user: gochat_proto::ids::Id,
        device: &str,
        generation: u64,
        token: u64,
    ) -> Option<Rc<Conn>> {
        let mut table = self.table.borrow_mut();
        let entry = table.vacant_entry();
        let slot = u64::try_from(entry.key())
            .ok()
            .filter(|s| *s < (1 << SLOT_BITS))?;
        let serial = next_serial(self.accepted.get(), gochat_proto::ids::now_millis());
        self.accepted.set(serial);
        let conn = Rc::new(Conn::new(
            (serial << (SLOT_BITS + CORE_BITS)) | (u64::from(self.index) << SLOT_BITS) | slot,
            user,
            device,
            generation,
            token,
            self.now(),
        ));
        entry.insert(conn.clone());
        self.metrics.connections.set(table.len() as f64);
        self.wheel
            .borrow_mut()
            .insert(conn.id, conn.last_seen.get());
        Some(conn)
    }

    /// The connection with this id, if still open.
    fn get(&self, id: u64) -> Option<Rc<Conn>> {
        let slot = usize::try_from(id & ((1 << SLOT_BITS) - 1)).ok()?;
        self.table
            .borrow()
            .get(slot)
            .filter(|c| c.id == id)
            .cloned()
    }

    /// Frees a slot of the send window and wakes the connection that has
    /// waited longest for one.
    fn give_back_slot(&self) {
        let mut window = self.window.borrow_mut();
        window.give_back();
        while let Some(id) = window.next_waiting() {
            if let Some(conn) = self.get(id) {
                conn.grant_room();
                return;
            }
        }
    }

    /// Parks a connection whose send was refused as overloaded until a slot
    /// frees (see [`Core::give_back_slot`]).
    fn wait_for_room(&self, conn: &Conn) {
        if !conn.queue_for_room() {
            return;
        }
        let mut window = self.window.borrow_mut();
        window.wait_for_room(conn.id);
        // Closed connections leave their ids behind until an answer reaches
        // them; while no answers come (logic down) clients that reconnect and
        // are refused again would grow the queue without end: drop the dead
        // ids once they could outnumber the live connections.
        if window.waiting() > 2 * self.connections() + 64 {
            window.keep_waiting(|id| self.get(id).is_some());
        }
    }

    /// Removes a closed connection.
    fn remove(&self, id: u64) {
        if let Ok(slot) = usize::try_from(id & ((1 << SLOT_BITS) - 1)) {
            let mut table = self.table.borrow_mut();
            if table.get(slot).is_some_and(|c| c.id == id) {
                table.remove(slot);
                self.rooms.borrow_mut().forget(id);
                self.metrics.connections.set(table.len() as f64);
            }
        }
    }

    /// Resolves once fewer than [`UPGRADES_IN_FLIGHT`] upgrades are under way.
    async fn room_to_upgrade(&self) {
        std::future::poll_fn(|cx| {
            if self.upgrading.get() < UPGRADES_IN_FLIGHT {
                std::task::Poll::Ready(())
            } else {
                self.accept_waiting.set(Some(cx.waker().clone()));
                std::task::Poll::Pending
            }
        })
        .await
    }

    /// An upgrade ended (upgraded, refused or gone).
    fn upgrade_finished(&self) {
        self.poller.progressed(1);
        self.upgrading.set(self.upgrading.get().saturating_sub(1));
        if let Some(waker) = self.accept_waiting.take() {
            waker.wake();
        }
    }

    /// Counts a connection from `ip`; false when over the per-IP limit.
    fn admit_ip(&self, ip: IpAddr) -> bool {
        let limit = self.shared.config.ws.max_connections_per_ip;
        if limit == 0 {
            return true;
        }
        let mut per_ip = self.per_ip.borrow_mut();
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }

    /// Releases what [`Core::admit_ip`] counted.
    fn release_ip(&self, ip: IpAddr) {
        if self.shared.config.ws.max_connections_per_ip == 0 {
            return;
        }
        let mut per_ip = self.per_ip.borrow_mut();
        if let Some(count) = per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    /// Number of open connections on this core.
    fn connections(&self) -> usize {
        self.table.borrow().len()
    }

    fn dispatch(&self, key: &DownstreamKey, frame: &Bytes) {
        let max = self.shared.config.ws.max_outbound_bytes;
        match key {
            DownstreamKey::Conns { conns, close_after } => {
                for id in conns {
                    let Some(conn) = self.get(*id) else { continue };
                    conn.deliver(frame.clone(), max);
                    if *close_after {
                        conn.request_close(CloseRequest {
                            code: close_code::NORMAL,
                            reason: "signed in elsewhere",
                        });
                    }
                }
            }
            DownstreamKey::Answer { conn } => {
                self.give_back_slot();
                if let Some(conn) = self.get(*conn) {
                    conn.deliver(frame.clone(), max);
                }
            }
            DownstreamKey::LoggedOut { conns } => {
                for conn in conns.iter().filter_map(|id| self.get(*id)) {
                    conn.deliver(frame.clone(), max);
                    conn.request_close(CloseRequest {
                        code: close_code::NORMAL,
                        reason: "logged out",
                    });
                }
            }
            DownstreamKey::Room { group, skip } => {
                let rooms = self.rooms.borrow();
                for id in rooms.members(*group) {
                    if Some(*id) == *skip {
                        continue;
                    }
                    if let Some(conn) = self.get(*id) {
                        conn.deliver(frame.clone(), max);
                    }
                }
            }
            DownstreamKey::Membership {
                group,
                conns,
                joined,
            } => {
                let mut rooms = self.rooms.borrow_mut();
                // A record for a connection that is gone changes nothing.
                for id in conns.iter().filter(|id| self.get(**id).is_some()) {
                    rooms.change(*id, *group, *joined);
                }
            }
            DownstreamKey::DropRoom { group } => self.rooms.borrow_mut().drop_room(*group),
        }
    }
}

/// The signal every core waits on to drain; dropping the trigger fires it too.
#[derive(Clone)]
pub struct Shutdown(Arc<ShutdownState>);

#[derive(Default)]
struct ShutdownState {
    fired: std::sync::atomic::AtomicBool,
    // One entry per waiting task (deduplicated): the cores' accept loops.
    wakers: std::sync::Mutex<Vec<std::task::Waker>>,
}

impl ShutdownState {
    fn fire(&self) {
        self.fired.store(true, std::sync::atomic::Ordering::Release);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|e| e.into_inner()));
        for waker in wakers {
            waker.wake();
        }
    }
}

/// Fires [`Shutdown`] explicitly or when dropped.
pub struct ShutdownTrigger(Arc<ShutdownState>);

impl ShutdownTrigger {
    /// Starts the drain.
    pub fn fire(&mut self) {
        self.0.fire();
    }
}

impl Drop for ShutdownTrigger {
    fn drop(&mut self) {
        self.0.fire();
    }
}

impl Shutdown {
    /// A signal and its trigger.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let state = Arc::new(ShutdownState::default());
        (ShutdownTrigger(state.clone()), Shutdown(state))
    }

    /// Has the trigger fired?
    pub fn fired(&self) -> bool {
        self.0.fired.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Resolves once the trigger fired.
    pub async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.fired() {
                return std::task::Poll::Ready(());
            }
            let mut wakers = self.0.wakers.lock().unwrap_or_else(|e| e.into_inner());
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            drop(wakers);
            // Fired between the check and the registration: do not miss it.
            if self.fired() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await
    }
}

/// Runs one core until shutdown and drain complete.
pub(crate) async fn run_core(
    index: u32,
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    links: Arc<dyn CoreLinks>,
    registry: RegistryHandle,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let poller = poller::Poller::new()?;
    let listener = transport::Listener::new(listener, poller.clone())?;
    let timeout = shared.config.ws.heartbeat_timeout_secs;
    let core = Rc::new(Core {
        index,
        upstream: links.upstream(index),
        window: RefCell::new(SendWindow::new(
            shared.config.ws.max_unanswered_sends,
            shared.config.ws.send_answer_timeout_secs,
        )),
        shared,
        table: RefCell::new(Slab::new()),
        rooms: RefCell::default(),
        registry_epoch: Cell::new(registry.epoch()),
        registry,
        draining: Cell::new(false),
        read_pool: RefCell::default(),
        upgrading: Cell::new(0),
        accept_waiting: Cell::new(None),
        accepted: Cell::new(0),
        wheel: RefCell::new(Wheel::new(timeout)),
        per_ip: RefCell::default(),
        started: coarse_seconds(),
        metrics: crate::ops::CoreMetrics::new(index),
        poller: poller.clone(),
    });
    monoio::spawn(downstream_loop(core.clone(), links.downstream(index)));
    monoio::spawn(heartbeat_loop(core.clone()));
    monoio::spawn({
        let poller = poller.clone();
        let coalesce = core.shared.config.coalesce;
        async move {
            if let Err(e) = poller.run(coalesce).await {
                tracing::error!(core = index, error = %e, "the core's epoll set failed");
            }
        }
    });
    loop {
        let accepted = {
            let accept = std::pin::pin!(async {
                core.room_to_upgrade().await;
                listener.accept().await
            });
            let stop = std::pin::pin!(shutdown.wait());
            match select(accept, stop).await {
                Either::Left((result, _)) => result,
                Either::Right(_) => break,
            }
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(core = index, error = %e, "accept failed");
                monoio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match &core.shared.tls {
            None => spawn_connection(&core, session::serve(core.clone(), socket, peer)),
            Some(tls) => match transport::TlsStream::new(socket, tls.clone()) {
                Ok(stream) => spawn_connection(&core, session::serve(core.clone(), stream, peer)),
                Err(e) => tracing::warn!(core = index, error = %e, "no TLS session"),
            },
        }
    }
    drop(listener);
    drain(&core).await;
    Ok(())
}

/// The monotonic clock in whole seconds, read from the kernel's coarse
/// clock: a connection reads it on every read of its socket and needs only
/// seconds, and the coarse clock skips the precise one's timestamp-counter
/// read (0.4 % of an echoed frame's time on the profile).
fn coarse_seconds() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    u64::try_from(now.tv_sec).unwrap_or(0)
}

/// Starts an accepted connection's task, counted as an upgrade under way
/// (before it runs, so the bound is exact; its `session::UpgradeSlot` gives
/// it back). Its size is what every idle connection costs for its whole
/// life: `/metrics` shows it, and a test holds it to its budget.
fn spawn_connection(core: &Core, task: impl Future<Output = ()> + 'static) {
    core.upgrading.set(core.upgrading.get() + 1);
    core.metrics
        .task_bytes
        .set(std::mem::size_of_val(&task) as f64);
    monoio::spawn(task);
}

/// Stops the core: every connection gets 1013 with a reconnect hint and is
/// deregistered; then queued upstream records are flushed.
async fn drain(core: &Rc<Core>) {
    core.draining.set(true);
    let conns: Vec<Rc<Conn>> = core.table.borrow().iter().map(|(_, c)| c.clone()).collect();
    for conn in &conns {
        conn.request_close(CloseRequest {
            code: close_code::TRY_AGAIN_LATER,
            reason: "server draining; reconnect",
        });
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while core.connections() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
    core.upstream.flush(Duration::from_secs(5));
    core.metrics.publish();
    tracing::info!(core = core.index, left = core.connections(), "core drained");
}

/// Writes downstream frames into connection outboxes, as they come: each wake
/// takes everything ready, so a busy connection gets several frames per write.
async fn downstream_loop(core: Rc<Core>, mut source: Box<dyn Downstream>) {
    let mut batch = Vec::new();
    loop {
        let open = std::future::poll_fn(|cx| source.poll_batch(cx, &mut batch)).await;
        for (key, frame, trace) in batch.drain(..) {
            match (&core.shared.tracer, &trace) {
                (Some(tracer), Some(trace)) => {
                    spans::deliver(tracer, &core, &key, trace, || core.dispatch(&key, &frame));
                }
                _ => core.dispatch(&key, &frame),
            }
        }
        if !open {
            return;
        }
    }
}

/// Ticks the heartbeat wheel once a second.
/// The registry lost its entries (see `registry.rs`): every connection of
/// the core registers again, so messages find them without waiting for each
/// one's next refresh.
fn reregister_if_lost(core: &Core) {
    let epoch = core.registry.epoch();
    if epoch == core.registry_epoch.get() {
        return;
    }
    core.registry_epoch.set(epoch);
    let table = core.table.borrow();
    for (_, conn) in table.iter() {
        core.registry
            .register(conn.user, &conn.device, session::route(core, conn));
    }
}

async fn heartbeat_loop(core: Rc<Core>) {
    let mut tick = monoio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        core.metrics.publish();
        reregister_if_lost(&core);
        let now = core.now();
        let expired = core.wheel.borrow_mut().expire(now);
        let timeout = core.wheel.borrow().timeout();
        for id in expired {
            let Some(conn) = core.get(id) else { continue };
            let seen = conn.last_seen.get();
            if seen + timeout <= now {
                conn.request_close(CloseRequest {
                    code: close_code::POLICY,
                    reason: "heartbeat timeout",
                });
            } else {
                core.wheel.borrow_mut().insert(id, seen);
            }
        }
    }
}

/// The accept serial after `previous` at `now_ms`: a 32-bit clock that never
/// goes back (see [`SLOT_BITS`]); wraps after about 49 days, long after any
/// record addressed to an older connection has been handled.
fn next_serial(previous: u64, now_ms: i64) -> u64 {
    let clock = u64::try_from(now_ms).unwrap_or(0) & u64::from(u32::MAX);
    let next = (previous + 1) & u64::from(u32::MAX);
    if previous < clock { clock } else { next }
}

#[cfg(test)]
mod tests {
    use super::next_serial;

    #[test]
    fn serials_follow_the_clock_and_never_repeat() {
        // A restarted process starts at the clock, above its predecessor's
        // serials (which followed the clock too).
        assert_eq!(next_serial(0, 1_000), 1_000);
        assert_eq!(next_serial(1_000, 1_000), 1_001, "a burst runs ahead");
        assert_eq!(next_serial(1_001, 1_000), 1_002);
        assert_eq!(
            next_serial(1_002, 5_000),
            5_000,
            "then follows the clock again"
        );
        // The 32-bit clock wraps after ~49 days; the serial keeps counting up
        // to the wrap, then follows the clock from there.
        let wrap = i64::from(u32::MAX) + 1;
        assert_eq!(
            next_serial(u64::from(u32::MAX) - 1, wrap + 5),
            u64::from(u32::MAX)
        );
        assert_eq!(next_serial(u64::from(u32::MAX), wrap + 5), 0);
        assert_eq!(next_serial(0, wrap + 5), 5);
    }
}

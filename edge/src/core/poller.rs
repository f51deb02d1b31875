//! A core's readiness: one edge-triggered epoll set holding the core's
//! listener and every socket it accepted, and one task that drains it.
//!
//! Why not the runtime's own readiness wait: monoio re-arms a one-shot poll
//! operation on every wait (a submission, a completion, a task wake-up per
//! connection per wait, and on the epoll driver a `poll()` call on top),
//! and each armed wait is a future of its own in the connection's task and
//! an operation in the driver, held for as long as the connection idles.
//! Here a socket is added once, when accepted, and stays armed until it is
//! closed; an idle connection's wait is a flag and a waker in a slab entry.
//! The set's own descriptor is what the runtime waits on (one poll for the
//! whole core, whichever driver), so timers and the other tasks keep
//! running on monoio as before.
//!
//! Under load the set may be looked at again without arming the wait: see
//! [`Poller::run`].
//!
//! Edge-triggered means an event says "something changed", once: a socket
//! stays marked readable (or writable) until a read (or write) shows it
//! drained — `EAGAIN`, or a read shorter than the room it had, which for a
//! stream socket means the receive queue was empty (epoll(7)). Data that
//! arrives after that raises a new event.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rustix::event::{Timespec, epoll};
use slab::Slab;

use super::coalescing::Coalescing;

/// The socket may have bytes to read (or the end, or an error).
pub(super) const READ: u8 = 1;
/// The socket may take bytes to write (or has failed).
pub(super) const WRITE: u8 = 2;

/// Events taken from the set per call.
const BATCH: usize = 256;

/// What the core knows of one registered socket.
struct Entry {
    ready: Cell<u8>,
    /// The task waiting for it (a connection's, or the accept loop's).
    waker: Cell<Option<Waker>>,
}

/// The core's epoll set and its registered sockets.
pub(crate) struct Poller {
    epoll: OwnedFd,
    entries: RefCell<Slab<Entry>>,
    events: RefCell<Vec<epoll::Event>>,
    /// Frames and upgrades the core has handled, as its sessions report:
    /// what tells coalescing whether it pays (see [`Coalescing`]).
    progress: Cell<u64>,
}

impl Poller {
    /// An empty set.
    pub(super) fn new() -> io::Result<Rc<Self>> {
        Ok(Rc::new(Self {
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
            entries: RefCell::default(),
            events: RefCell::new(Vec::with_capacity(BATCH)),
            progress: Cell::new(0),
        }))
    }

    /// Adds a non-blocking socket; it starts as readable and writable (the
    /// first read or write finds out), so nothing that arrived before it was
    /// added is missed.
    pub(super) fn register(&self, fd: impl AsFd) -> io::Result<u32> {
        let mut entries = self.entries.borrow_mut();
        let entry = entries.vacant_entry();
        let token = u32::try_from(entry.key()).map_err(io::Error::other)?;
        epoll::add(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(u64::from(token)),
            epoll::EventFlags::IN
                | epoll::EventFlags::OUT
                | epoll::EventFlags::RDHUP
                | epoll::EventFlags::ET,
        )?;
        entry.insert(Entry {
            ready: Cell::new(READ | WRITE),
            waker: Cell::new(None),
        });
        Ok(token)
    }

    /// Removes a socket, before it is closed: no later event can reach a
    /// token that a new socket may get next.
    pub(super) fn deregister(&self, fd: impl AsFd, token: u32) {
        let _ = epoll::delete(&self.epoll, fd);
        let mut entries = self.entries.borrow_mut();
        if entries.contains(token as usize) {
            entries.remove(token as usize);
        }
    }

    /// Ready when the socket is marked for any of `interest`; otherwise the
    /// task is woken when an event marks it.
    pub(super) fn poll_ready(&self, token: u32, interest: u8, cx: &mut Context<'_>) -> Poll<()> {
        let entries = self.entries.borrow();
        let Some(entry) = entries.get(token as usize) else {
            // Not registered (cannot happen while its socket lives): let the
            // I/O call itself report.
            return Poll::Ready(());
        };
        if entry.ready.get() & interest != 0 {
            return Poll::Ready(());
        }
        entry.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }

    /// Waits until the socket is marked for any of `interest`.
    pub(super) async fn ready(&self, token: u32, interest: u8) {
        std::future::poll_fn(|cx| self.poll_ready(token, interest, cx)).await;
    }

    /// The socket showed it is drained for `what` (see the module doc).
    pub(super) fn clear(&self, token: u32, what: u8) {
        if let Some(entry) = self.entries.borrow().get(token as usize) {
            entry.ready.set(entry.ready.get() & !what);
        }
    }

    /// The core handled `n` more frames (or upgrades).
    pub(super) fn progressed(&self, n: u64) {
        self.progress.set(self.progress.get() + n);
    }

    /// Marks and wakes every socket with events, until none are left;
    /// returns how many events there were.
    fn dispatch(&self) -> io::Result<usize> {
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let mut found = 0;
        loop {
            let mut events = self.events.borrow_mut();
            events.clear();
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut *events),
                Some(&zero),
            ) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            found += events.len();
            let entries = self.entries.borrow();
            for event in events.iter() {
                let flags = event.flags;
                let mut ready = 0;
                if flags.intersects(
                    epoll::EventFlags::IN
                        | epoll::EventFlags::RDHUP
                        | epoll::EventFlags::HUP
                        | epoll::EventFlags::ERR,
                ) {
                    ready |= READ;
                }
                if flags.intersects(
                    epoll::EventFlags::OUT | epoll::EventFlags::HUP | epoll::EventFlags::ERR,
                ) {
                    ready |= WRITE;
                }
                let Ok(token) = usize::try_from(event.data.u64()) else {
                    continue;
                };
                if let Some(entry) = entries.get(token) {
                    entry.ready.set(entry.ready.get() | ready);
                    if let Some(waker) = entry.waker.take() {
                        waker.wake();
                    }
                }
            }
            if events.len() < BATCH {
                return Ok(found);
            }
        }
    }

    /// Drains the set each time it has events, for the core's life.
    ///
    /// With `coalesce`, a busy core may not arm the wait after a drain: it
    /// lets the woken connections run, pauses until the runtime's next
    /// timer tick (at most a millisecond) and drains again, for as long as a
    /// drain finds events and [`Coalescing`] says it pays. Each wait armed
    /// is a ring entry, a sleep and a wake-up, paid for a handful of frames
    /// when many clients keep the core busy; a drain a tick later finds
    /// every connection that became readable meanwhile. Timers, other tasks
    /// and cross-thread wakes run at every pause (the pause is a timer: the
    /// runtime takes it only when nothing else is runnable).
    pub(super) async fn run(self: Rc<Self>, coalesce: bool) -> io::Result<()> {
        let waiter = self.runtime_handle()?;
        let mut coalescing = coalesce.then(|| Coalescing::new(Instant::now(), self.progress.get()));
        loop {
            // A clock read per wake only where it decides something.
            let armed = coalescing.is_some().then(Instant::now);
            // Not relaxed: on the epoll driver the runtime's readiness of
            // the set could be stale, and a stale "ready" would spin here.
            waiter.readable(false).await?;
            let mut found = self.dispatch()?;
            let (Some(coalescing), Some(armed)) = (coalescing.as_mut(), armed) else {
                continue;
            };
            let now = Instant::now();
            if !coalescing.woken(now - armed, now, self.progress.get()) {
                continue;
            }
            loop {
                if found == 0 {
                    coalescing.ended(Instant::now(), self.progress.get());
                    break;
                }
                // Rounded up to the next tick by the runtime's timer wheel.
                monoio::time::sleep(Duration::ZERO).await;
                found = self.dispatch()?;
                // What this drain found is dispatched either way.
                if found > 0 && !coalescing.keep(Instant::now(), self.progress.get()) {
                    break;
                }
            }
        }
    }

    /// The set's descriptor as the runtime sees it, to wait on.
    #[allow(unsafe_code)]
    fn runtime_handle(&self) -> io::Result<monoio::net::UnixStream> {
        // monoio waits for readiness only on its own socket types, whatever
        // the descriptor; the handle is used for that wait alone (never read
        // or written), on a duplicate it owns and closes.
        let duplicate = self.epoll.try_clone()?;
        // SAFETY: `duplicate` is an open descriptor this function owns; its
        // ownership moves into the std type (and from there into monoio).
        let std = unsafe { std::os::unix::net::UnixStream::from_raw_fd(duplicate.into_raw_fd()) };
        monoio::net::UnixStream::from_std(std)
    }
}

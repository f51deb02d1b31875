//! One connection's shared state: what the core's downstream dispatcher, its
//! heartbeat wheel and the connection task all touch. Single-threaded (`Rc`,
//! `Cell`): a connection never leaves its core.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::task::{Poll, Waker};

use bytes::Bytes;
use gochat_proto::ids::Id;

use crate::ws::codec::{CloseRequest, close_code};

/// The close reason of a slow reader (counted apart in `/metrics`).
pub(super) const SLOW_READER: &str = "slow reader; reconnect and pull";

/// A wake-up flag for one task on this core.
#[derive(Default)]
struct Notify {
    flag: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Notify {
    /// Wakes the waiting task (or the next wait returns at once).
    fn notify(&self) {
        self.flag.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Resolves once notified since the last wait.
    fn notified(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.flag.replace(false) {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
    }
}

/// Where a connection stands with its core's send window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoomWait {
    /// Not waiting.
    No,
    /// In the core's queue of connections waiting for room.
    Queued,
    /// Taken off the queue: a slot was freed for it.
    Granted,
}

/// A live, authenticated connection.
pub(super) struct Conn {
    /// Unique on the gateway: accept serial, core and table slot (see `Core::add`).
    pub(super) id: u64,
    /// The authenticated user.
    pub(super) user: Id,
    /// The device (from the token or `?device_id=`).
    pub(super) device: Box<str>,
    /// Login generation (ms at upgrade): the newer connection of a device wins.
    pub(super) generation: u64,
    /// Tag of the token it authenticated with (a logout closes it).
    pub(super) token: u64,
    /// Seconds (core clock) of the last frame from the client.
    pub(super) last_seen: Cell<u64>,
    outbox: RefCell<VecDeque<Bytes>>,
    outbox_bytes: Cell<usize>,
    close: Cell<Option<CloseRequest>>,
    room: Cell<RoomWait>,
    notify: Notify,
}

impl Conn {
    /// A connection seen now.
    pub(super) fn new(
        id: u64,
        user: Id,
        device: &str,
        generation: u64,
        token: u64,
        now: u64,
    ) -> Self {
        Self {
            id,
            user,
            device: device.into(),
            generation,
            token,
            last_seen: Cell::new(now),
            outbox: RefCell::default(),
            outbox_bytes: Cell::new(0),
            close: Cell::new(None),
            room: Cell::new(RoomWait::No),
            notify: Notify::default(),
        }
    }

    /// Queues a JSON text frame. A connection whose queue passes `max_bytes` is a
    /// slow reader: it is closed with 1013 and recovers by reconnecting and pulling.
    pub(super) fn deliver(&self, frame: Bytes, max_bytes: usize) {
        if self.close.get().is_some() {
            return;
        }
        let queued = self.outbox_bytes.get() + frame.len();
        if queued > max_bytes {
            self.outbox.borrow_mut().clear();
            self.outbox_bytes.set(0);
            self.request_close(CloseRequest {
                code: close_code::TRY_AGAIN_LATER,
                reason: SLOW_READER,
            });
            return;
        }
        self.outbox_bytes.set(queued);
        self.outbox.borrow_mut().push_back(frame);
        self.notify.notify();
    }

    /// Asks the connection task to close (the first request wins).
    pub(super) fn request_close(&self, request: CloseRequest) {
        if self.close.get().is_none() {
            self.close.set(Some(request));
        }
        self.notify.notify();
    }

    /// The pending close request, if any.
    pub(super) fn close_requested(&self) -> Option<CloseRequest> {
        self.close.get()
    }

    /// Bytes queued and not written yet.
    pub(super) fn queued_bytes(&self) -> usize {
        self.outbox_bytes.get()
    }

    /// Takes every queued frame, in order, for one coalesced write. The queue
    /// goes with them: an idle connection keeps no capacity from its last burst.
    pub(super) fn take_outbox(&self) -> VecDeque<Bytes> {
        self.outbox_bytes.set(0);
        std::mem::take(&mut *self.outbox.borrow_mut())
    }

    /// Anything to write?
    pub(super) fn has_output(&self) -> bool {
        self.outbox_bytes.get() > 0
    }

    /// Marks the connection as waiting for room in the send window; true
    /// when it must be added to the core's queue (it is not in it already: a
    /// connection whose pause ran out keeps its place).
    pub(super) fn queue_for_room(&self) -> bool {
        self.room.replace(RoomWait::Queued) != RoomWait::Queued
    }

    /// A slot was freed for this connection: it may read again.
    pub(super) fn grant_room(&self) {
        self.room.set(RoomWait::Granted);
        self.notify.notify();
    }

    /// Was room granted since the connection queued? (Clears the grant.)
    pub(super) fn take_room(&self) -> bool {
        if self.room.get() == RoomWait::Granted {
            self.room.set(RoomWait::No);
            return true;
        }
        false
    }

    /// Resolves when there is output, a close request or granted room.
    pub(super) fn wake_up(&self) -> impl Future<Output = ()> + '_ {
        self.notify.notified()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_go_out_in_order_and_the_queue_goes_with_them() {
        let conn = Conn::new(1, Id(7), "phone", 0, 0, 0);
        for frame in [&b"{\"a\":1}"[..], b"{\"b\":2}"] {
            conn.deliver(Bytes::copy_from_slice(frame), 1024);
        }
        assert_eq!(conn.queued_bytes(), 14);
        let frames: Vec<Bytes> = conn.take_outbox().into_iter().collect();
        assert_eq!(frames, [&b"{\"a\":1}"[..], b"{\"b\":2}"]);
        // Idle again: nothing queued, and no capacity kept from the burst.
        assert!(!conn.has_output());
        assert_eq!(conn.outbox.borrow().capacity(), 0);
    }
}

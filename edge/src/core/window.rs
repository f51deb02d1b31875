//! A core's window of unanswered sends: admission control for the send path.
//!
//! Every `send` a core passes upstream takes a slot until its answer (an
//! `ack` or an `error`, a downstream record keyed `a<conn>`) comes back. With
//! the window full the core refuses the next send at once with `overloaded`
//! instead of queueing it: the log and the logic process behind never hold
//! more than the windows' worth of work, so under any offered load what is
//! accepted is answered in about window ÷ throughput, and the refused client
//! resends later (docs/design.md, admission control).
//!
//! A connection refused as overloaded queues for room and is not read until
//! an answer frees a slot for it (see `session::frame_loop`): under overload
//! the core reads about one batch per freed slot instead of polling every
//! refused connection, and the window never sits empty while clients wait.
//!
//! Answers free slots in the order the sends took them, not matched one by
//! one: the count is what matters, and matching would mean parsing every
//! answer. A send whose answer is lost (a logic process died after taking it)
//! stops counting after the answer timeout, so the window heals by itself.

use std::collections::VecDeque;

/// The sends in flight, as the second each was passed on.
pub(super) struct SendWindow {
    taken_at: VecDeque<u64>,
    capacity: usize,
    timeout_secs: u64,
    /// Connections waiting for room, oldest first (each at most once: see
    /// `Conn::queue_for_room`); ids of closed ones are skipped when reached.
    waiting: VecDeque<u64>,
}

impl SendWindow {
    pub(super) fn new(capacity: usize, timeout_secs: u64) -> Self {
        Self {
            taken_at: VecDeque::new(),
            capacity,
            timeout_secs,
            waiting: VecDeque::new(),
        }
    }

    /// Queues a connection to be woken when a slot frees.
    pub(super) fn wait_for_room(&mut self, conn: u64) {
        self.waiting.push_back(conn);
    }

    /// Is the window full at `now` (seconds)? Forgets sends whose answers
    /// are overdue first.
    pub(super) fn is_full(&mut self, now: u64) -> bool {
        while self
            .taken_at
            .front()
            .is_some_and(|&at| at + self.timeout_secs <= now)
        {
            self.taken_at.pop_front();
        }
        self.taken_at.len() >= self.capacity
    }

    /// Takes a slot at `now` (seconds); false when the window is full.
    pub(super) fn try_take(&mut self, now: u64) -> bool {
        if self.is_full(now) {
            return false;
        }
        self.taken_at.push_back(now);
        true
    }

    /// A send was answered (or its produce failed): frees the oldest slot.
    pub(super) fn give_back(&mut self) {
        self.taken_at.pop_front();
    }

    /// How many ids are queued for room (closed connections' included).
    pub(super) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Keeps, in order, only the queued ids `live` accepts.
    pub(super) fn keep_waiting(&mut self, live: impl Fn(u64) -> bool) {
        self.waiting.retain(|id| live(*id));
    }

    /// The next connection waiting for room, taken off the queue.
    pub(super) fn next_waiting(&mut self) -> Option<u64> {
        self.waiting.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::SendWindow;

    #[test]
    fn a_full_window_refuses_until_an_answer_comes() {
        let mut window = SendWindow::new(2, 10);
        assert!(window.try_take(0));
        assert!(window.try_take(0));
        assert!(!window.try_take(1));
        window.give_back();
        assert!(window.try_take(1));
        assert!(!window.try_take(1));
    }

    #[test]
    fn unanswered_sends_stop_counting_after_the_timeout() {
        let mut window = SendWindow::new(2, 10);
        assert!(window.try_take(0));
        assert!(window.try_take(5));
        assert!(!window.try_take(9));
        // The first send's slot expires at 10; the second's at 15.
        assert!(window.try_take(10));
        assert!(!window.try_take(14));
        assert!(window.try_take(15));
    }

    #[test]
    fn waiting_connections_are_woken_oldest_first_and_dead_ones_dropped() {
        let mut window = SendWindow::new(1, 10);
        window.wait_for_room(7);
        window.wait_for_room(3);
        window.wait_for_room(5);
        window.keep_waiting(|id| id != 3);
        assert_eq!(window.waiting(), 2);
        assert_eq!(window.next_waiting(), Some(7));
        assert_eq!(window.next_waiting(), Some(5));
        assert_eq!(window.next_waiting(), None);
    }

    #[test]
    fn answers_beyond_the_sends_change_nothing() {
        let mut window = SendWindow::new(1, 10);
        window.give_back();
        assert!(window.try_take(0));
        assert!(!window.try_take(0));
    }
}

//! The at-least-once consume loop shared by logic and task.
//!
//! Records are handled concurrently, up to a bound, because each one waits on
//! storage and broker round trips: one at a time, a logic process could not get
//! past about a hundred messages per second. Two rules keep that safe:
//!
//! - Records of one *lane* (a conversation for logic, a target for task) are
//!   handled one after another in log order, so a sender's messages to a
//!   conversation keep their order and a resend waits for its original.
//! - An offset is committed only once every record before it in its partition
//!   is handled, so a crash replays whatever was unfinished and skips nothing.
//!
//! A record whose dependency is down is retried in place (its lane waits), never
//! committed until it is done.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::bus::{Delivery, Inbox, Position};

/// What handling a record came to.
#[derive(Debug)]
pub enum Handled {
    /// Done (or hopeless and logged): commit it.
    Done,
    /// A dependency failed: try the same record again after a pause.
    Retry(String),
}

/// A record that names the lane it must be ordered within.
pub trait Laned: DeserializeOwned + Clone {
    /// Records with equal lanes are handled in log order, one at a time.
    fn lane(&self) -> u64;
}

/// Consumes `inbox` until `shutdown`, handling at most `max_in_flight` records
/// at once (1 makes it strictly sequential).
pub async fn consume<I, T, F, Fut>(
    mut inbox: I,
    shutdown: CancellationToken,
    what: &'static str,
    max_in_flight: usize,
    handle: F,
) where
    I: Inbox,
    T: Laned,
    F: Fn(T) -> Fut,
    Fut: Future<Output = Handled>,
{
    let max_in_flight = max_in_flight.max(1);
    let mut book = Book::default();
    let mut running = FuturesUnordered::new();
    let start = |lane: u64, ticket: u64, record: T| {
        let handle = &handle;
        let shutdown = shutdown.clone();
        async move {
            let mut backoff = Duration::from_millis(50);
            while let Handled::Retry(why) = handle(record.clone()).await {
                tracing::warn!(%why, ticket, "{what}: will retry the record");
                tokio::select! {
                    // Not committed: the next consumer of the partition replays it.
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Some((lane, ticket))
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(finished) = running.next(), if !running.is_empty() => {
                let Some((lane, ticket)) = finished else { break };
                if let Some((next_ticket, record)) = book.finish(lane, ticket) {
                    running.push(start(lane, next_ticket, record));
                }
                commit(&mut inbox, book.committable(), what).await;
            }
            next = inbox.next(), if book.in_flight() < max_in_flight => {
                let Some(Delivery { payload, position, .. }) = next else { break };
                match decode::<T>(&payload, what) {
                    Some(record) => {
                        let lane = record.lane();
                        if let Some(ticket) = book.admit(lane, position, record.clone()) {
                            running.push(start(lane, ticket, record));
                        }
                    }
                    None => book.skip(position),
                }
                commit(&mut inbox, book.committable(), what).await;
            }
        }
    }
    // Whatever is still running or waiting stays uncommitted and is replayed.
    drop(running);
    inbox.close().await;
}

pub(crate) async fn commit(inbox: &mut impl Inbox, positions: Vec<Position>, what: &str) {
    for position in positions {
        if let Err(e) = inbox.commit(&position).await {
            tracing::warn!(error = %e, ?position, "{what}: offset not stored; the record may be replayed");
        }
    }
}

pub(crate) fn decode<T: DeserializeOwned>(payload: &Bytes, what: &str) -> Option<T> {
    match serde_json::from_slice(payload) {
        Ok(record) => Some(record),
        Err(e) => {
            // Producers validate what they write; a bad record is a bug or foreign data,
            // and replaying it forever would stall its partition.
            tracing::error!(error = %e, "{what}: undecodable record skipped");
            None
        }
    }
}

/// Which records are in flight, which wait behind their lane, and which
/// positions may be committed.
struct Book<T> {
    next_ticket: u64,
    /// Every admitted, not yet committed record by arrival: position, and done?
    arrivals: BTreeMap<u64, (Position, bool)>,
    /// Lanes with a record running; the queue holds the ones waiting behind it.
    lanes: HashMap<u64, VecDeque<(u64, T)>>,
}

impl<T> Default for Book<T> {
    fn default() -> Self {
        Self {
            next_ticket: 0,
            arrivals: BTreeMap::new(),
            lanes: HashMap::new(),
        }
    }
}

impl<T> Book<T> {
    fn in_flight(&self) -> usize {
        self.arrivals.len()
    }

    fn ticket(&mut self, position: Position, done: bool) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.arrivals.insert(ticket, (position, done));
        ticket
    }

    /// Records a new arrival; returns its ticket when it may start now.
    fn admit(&mut self, lane: u64, position: Position, record: T) -> Option<u64> {
        let ticket = self.ticket(position, false);
        match self.lanes.get_mut(&lane) {
            Some(waiting) => {
                waiting.push_back((ticket, record));
                None
            }
            None => {
                self.lanes.insert(lane, VecDeque::new());
                Some(ticket)
            }
        }
    }

    /// An arrival that needs no handling (undecodable).
    fn skip(&mut self, position: Position) {
        self.ticket(position, true);
    }

    /// Marks a ticket done; returns the next record of its lane to start.
    fn finish(&mut self, lane: u64, ticket: u64) -> Option<(u64, T)> {
        if let Some(entry) = self.arrivals.get_mut(&ticket) {
            entry.1 = true;
        }
        let waiting = self.lanes.get_mut(&lane)?;
        let next = waiting.pop_front();
        if next.is_none() {
            self.lanes.remove(&lane);
        }
        next
    }

    /// Removes the done prefix of the arrivals and returns, per partition, the
    /// last position in it: everything up to there is handled.
    fn committable(&mut self) -> Vec<Position> {
        let mut last: Vec<Position> = Vec::new();
        while let Some(entry) = self.arrivals.first_entry() {
            if !entry.get().1 {
                break;
            }
            let (position, _) = entry.remove();
            match last
                .iter_mut()
                .find(|p| p.topic == position.topic && p.partition == position.partition)
            {
                Some(slot) => *slot = position,
                None => last.push(position),
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use serde::Deserialize;
    use tokio::sync::Notify;

    use super::*;
    use crate::bus::BusResult;

    #[derive(Clone, Deserialize)]
    struct Item {
        lane: u64,
        n: u32,
    }

    impl Laned for Item {
        fn lane(&self) -> u64 {
            self.lane
        }
    }

    /// A log of fixed records; remembers what was committed.
    struct ListInbox {
        records: VecDeque<Bytes>,
        offset: i64,
        committed: Arc<Mutex<Vec<i64>>>,
    }

    #[async_trait]
    impl Inbox for ListInbox {
        async fn next(&mut self) -> Option<Delivery> {
            let Some(payload) = self.records.pop_front() else {
                return std::future::pending().await;
            };
            self.offset += 1;
            Some(Delivery {
                payload,
                position: at(0, self.offset),
                trace: None,
            })
        }
        async fn commit(&mut self, position: &Position) -> BusResult<()> {
            self.committed
                .lock()
                .expect("test lock")
                .push(position.offset);
            Ok(())
        }
        async fn close(&mut self) {}
    }

    #[tokio::test]
    async fn lanes_overlap_keep_their_order_and_commit_everything() {
        // Lane 1's first record can only finish after lane 2's has run: a
        // sequential loop would wait forever.
        let lines = [
            r#"{"lane":1,"n":1}"#,
            r#"{"lane":1,"n":2}"#,
            "not json",
            r#"{"lane":2,"n":3}"#,
        ];
        let committed = Arc::new(Mutex::new(Vec::new()));
        let inbox = ListInbox {
            records: lines
                .iter()
                .map(|l| Bytes::from_static(l.as_bytes()))
                .collect(),
            offset: 0,
            committed: committed.clone(),
        };
        let lane_two_ran = Arc::new(Notify::new());
        let order = Arc::new(Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let run = consume(inbox, shutdown.clone(), "test", 8, |item: Item| {
            let (lane_two_ran, order) = (lane_two_ran.clone(), order.clone());
            async move {
                if item.n == 1 {
                    lane_two_ran.notified().await;
                }
                if item.lane == 2 {
                    lane_two_ran.notify_one();
                }
                order.lock().expect("test lock").push(item.n);
                Handled::Done
            }
        });
        let watch = async {
            while committed.lock().expect("test lock").last() != Some(&4) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            shutdown.cancel();
        };
        tokio::time::timeout(Duration::from_secs(5), futures::future::join(run, watch))
            .await
            .expect("records of different lanes must run concurrently");
        assert_eq!(*order.lock().expect("test lock"), vec![3, 1, 2]);
        // Offset 4 was done early but is committed only after 1 and 2 are.
        assert_eq!(*committed.lock().expect("test lock"), vec![1, 4]);
    }

    fn at(partition: i32, offset: i64) -> Position {
        Position {
            topic: "t".into(),
            partition,
            offset,
        }
    }

    #[test]
    fn a_lane_runs_one_record_at_a_time_in_arrival_order() {
        let mut book = Book::default();
        let first = book.admit(7, at(0, 0), "a").expect("free lane starts");
        assert_eq!(book.admit(7, at(0, 1), "b"), None);
        assert_eq!(book.admit(7, at(1, 0), "c"), None);
        let other = book.admit(8, at(0, 2), "d").expect("other lane starts");
        assert_eq!(book.finish(7, first), Some((1, "b")));
        assert_eq!(book.finish(7, 1), Some((2, "c")));
        assert_eq!(book.finish(7, 2), None);
        assert_eq!(book.finish(8, other), None);
        assert!(book.lanes.is_empty());
    }

    #[test]
    fn commits_wait_for_every_earlier_record() {
        let mut book = Book::default();
        let slow = book.admit(1, at(0, 10), ()).expect("starts");
        let fast = book.admit(2, at(0, 11), ()).expect("starts");
        let other = book.admit(3, at(1, 5), ()).expect("starts");
        book.finish(2, fast);
        book.finish(3, other);
        assert!(book.committable().is_empty(), "offset 10 is still running");
        book.finish(1, slow);
        assert_eq!(book.committable(), vec![at(0, 11), at(1, 5)]);
        assert_eq!(book.in_flight(), 0);
    }

    #[test]
    fn skipped_records_commit_with_their_neighbours() {
        let mut book = Book::default();
        book.skip(at(0, 0));
        assert_eq!(book.committable(), vec![at(0, 0)]);
        let running = book.admit(1, at(0, 1), ()).expect("starts");
        book.skip(at(0, 2));
        assert!(book.committable().is_empty());
        book.finish(1, running);
        assert_eq!(book.committable(), vec![at(0, 2)]);
    }
}

//! The at-least-once batch loop of the logic consumer: take whatever the log
//! has ready (at least one record, at most `max_batch`), hand it to the
//! handler as one batch, commit its positions once the handler is done.
//!
//! Batches run one after another, so records keep their log order across
//! batches, and a batch's handler keeps it within one (a group commit in
//! order). There is no waiting to fill a batch: a lone record goes at once,
//! and under load the records that arrive while a batch is being handled
//! make the next one larger — the busier the log, the fewer commits per
//! record. A batch whose dependency is down is retried whole, never
//! committed until it is done; what it had stored comes back as duplicates.
//! Each record reaches the handler with the trace its producer gave it.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use futures::FutureExt;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use gochat_proto::trace::TraceParent;

use crate::bus::{Delivery, Inbox, Position};
use crate::consume::{Handled, commit, decode};

/// Consumes `inbox` until `shutdown`, in batches of at most `max_batch`.
pub async fn consume_batches<I, T, F, Fut>(
    mut inbox: I,
    shutdown: CancellationToken,
    what: &'static str,
    max_batch: usize,
    handle: F,
) where
    I: Inbox,
    T: DeserializeOwned + Clone,
    F: Fn(Vec<(T, Option<TraceParent>)>) -> Fut,
    Fut: Future<Output = Handled>,
{
    let max_batch = max_batch.max(1);
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = inbox.next() => next,
        };
        let Some(first) = first else { break };
        let mut deliveries = vec![first];
        // What is ready now, without waiting for more.
        while deliveries.len() < max_batch {
            match inbox.next().now_or_never() {
                Some(Some(delivery)) => deliveries.push(delivery),
                _ => break,
            }
        }
        let positions = last_positions(&deliveries);
        let records: Vec<(T, Option<TraceParent>)> = deliveries
            .into_iter()
            .filter_map(|d| Some((decode(&d.payload, what)?, d.trace)))
            .collect();
        metrics::histogram!("gochat_consume_batch_records", "what" => what)
            .record(records.len() as f64);
        if !records.is_empty() && !handle_until_done(&handle, records, &shutdown, what).await {
            // Not committed: the next consumer of the partitions replays it.
            break;
        }
        commit(&mut inbox, positions, what).await;
    }
    inbox.close().await;
}

/// Runs the batch until it is done; false if shutdown came first.
async fn handle_until_done<T, F, Fut>(
    handle: &F,
    records: Vec<T>,
    shutdown: &CancellationToken,
    what: &str,
) -> bool
where
    T: Clone,
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Handled>,
{
    let mut backoff = Duration::from_millis(50);
    while let Handled::Retry(why) = handle(records.clone()).await {
        tracing::warn!(%why, records = records.len(), "{what}: will retry the batch");
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    true
}

/// The last position of each partition in the batch.
fn last_positions(deliveries: &[Delivery]) -> Vec<Position> {
    let mut last: HashMap<(String, i32), Position> = HashMap::new();
    for d in deliveries {
        let key = (d.position.topic.clone(), d.position.partition);
        match last.get(&key) {
            Some(p) if p.offset >= d.position.offset => {}
            _ => {
                last.insert(key, d.position.clone());
            }
        }
    }
    last.into_values().collect()
}

//! The tier-to-tier log: Kafka in production ([`kafka`]), in-process channels in
//! standalone mode ([`memory`]). Producers go through [`Bus`]; consumers read an
//! [`Inbox`] and commit a delivery only after handling it (docs/design.md §5.1), so a
//! crash replays what was not finished and never skips it.
//!
//! A traced record carries its span's W3C `traceparent` beside the value (a
//! Kafka record header): a single produce takes it from the current context
//! (`opentelemetry::Context`, which the caller's future runs under), a
//! [`DownstreamRecord`] names its own, and a [`Delivery`] hands it to the
//! consumer.

pub mod kafka;
mod lag;
pub mod memory;
mod producer;

use async_trait::async_trait;
use bytes::Bytes;
use gochat_proto::kafka::{DownstreamKey, TaskRecord, UpstreamRecord};
use gochat_proto::trace::TraceParent;

/// Why a produce or a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker is unreachable or timed out: retry later.
    #[error("message bus unavailable: {0}")]
    Unavailable(#[source] crate::BoxError),
    /// The broker refused the record (too large, unknown topic): retrying will not help.
    #[error("message bus refused the record: {0}")]
    Rejected(#[source] crate::BoxError),
}

/// Result alias for bus calls.
pub type BusResult<T> = Result<T, BusError>;

/// One downstream record: for which gateway core, what to do, the frame.
#[derive(Debug, Clone)]
pub struct DownstreamRecord {
    /// The gateway (names the topic).
    pub gateway_id: String,
    /// Its core (the partition).
    pub core: u32,
    /// Connections or room.
    pub key: DownstreamKey,
    /// The server frame (empty for a membership record).
    pub frame: Bytes,
    /// The message's trace, when it is traced.
    pub trace: Option<TraceParent>,
}

/// Producing side of the log.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Is the broker reachable?
    async fn ping(&self) -> BusResult<()>;
    /// A client frame for logic (edge -> `im-upstream-topic`, key from_user_id).
    async fn send_upstream(&self, record: &UpstreamRecord) -> BusResult<()>;
    /// A server frame for connections on one gateway core
    /// (`im-downstream-topic-{gateway}`, partition = core, key = the connections).
    async fn send_downstream(
        &self,
        gateway_id: &str,
        core: u32,
        key: &DownstreamKey,
        frame: Bytes,
    ) -> BusResult<()>;
    /// Downstream records in this order: each partition (gateway core) gets
    /// its records in the order given. All are queued before any is waited
    /// for, so a batch's records travel together (one produce request per
    /// partition, not one round trip per record); returns once all are
    /// acknowledged.
    async fn send_downstream_many(&self, records: &[DownstreamRecord]) -> BusResult<()> {
        use opentelemetry::context::FutureExt;
        for r in records {
            // Each record under its own message's trace, not the caller's.
            let trace = r
                .trace
                .as_ref()
                .map(TraceParent::context)
                .unwrap_or_default();
            self.send_downstream(&r.gateway_id, r.core, &r.key, r.frame.clone())
                .with_context(trace)
                .await?;
        }
        Ok(())
    }
    /// A task (`im-task-topic`, key = its target).
    async fn send_task(&self, record: &TaskRecord) -> BusResult<()>;
    /// A task that failed for good (`im-task-dlq`).
    async fn send_dead_letter(&self, record: &TaskRecord) -> BusResult<()>;
}

/// One consumed record.
#[derive(Debug)]
pub struct Delivery {
    /// The record value.
    pub payload: Bytes,
    /// Where it came from, for commits and logs.
    pub position: Position,
    /// The trace it continues, when its producer traced it.
    pub trace: Option<TraceParent>,
}

/// A record's place in its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Topic name.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// Consuming side of the log, for one consumer group.
#[async_trait]
pub trait Inbox: Send {
    /// The next record; `None` once the log is closed.
    async fn next(&mut self) -> Option<Delivery>;
    /// Marks a record (and all before it in its partition) as handled.
    async fn commit(&mut self, position: &Position) -> BusResult<()>;
    /// Flushes handled positions before the consumer goes away.
    async fn close(&mut self);
}

/// A consumer chosen at start (Kafka or in-process) behind one type.
#[async_trait]
impl Inbox for Box<dyn Inbox> {
    async fn next(&mut self) -> Option<Delivery> {
        (**self).next().await
    }
    async fn commit(&mut self, position: &Position) -> BusResult<()> {
        (**self).commit(position).await
    }
    async fn close(&mut self) {
        (**self).close().await;
    }
}

//! In-process log for standalone mode: bounded channels per topic. Positions are
//! counted but not kept: a process restart loses nothing that matters, because
//! the sender only has an ack once the message is in SQL and pulls fill gaps.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use gochat_proto::kafka::{DownstreamKey, TaskRecord, UpstreamRecord};
use gochat_proto::trace::TraceParent;
use tokio::sync::mpsc;

use super::{Bus, BusError, BusResult, Delivery, Inbox, Position};

const CAPACITY: usize = 65_536;

/// A record of an in-process topic: its value and its trace (what a Kafka
/// record's `traceparent` header carries).
pub type Traced = (Bytes, Option<TraceParent>);

/// A downstream record for an embedded gateway core: key, frame, trace.
pub type DownstreamItem = (DownstreamKey, Bytes, Option<TraceParent>);

type DownstreamTx = mpsc::Sender<DownstreamItem>;

/// The in-process bus. Create it once and hand the inboxes to their consumers.
pub struct MemoryBus {
    upstream: mpsc::Sender<Traced>,
    tasks: mpsc::Sender<Traced>,
    dead_letters: Mutex<Vec<TaskRecord>>,
    downstream: Mutex<HashMap<(String, u32), DownstreamTx>>,
}

/// The consuming ends, taken once by the services that read them.
pub struct MemoryInboxes {
    /// `im-upstream-topic` for logic.
    pub upstream: MemoryInbox,
    /// `im-task-topic` for task.
    pub tasks: MemoryInbox,
}

impl MemoryBus {
    /// A bus and its inboxes.
    pub fn new() -> (Self, MemoryInboxes) {
        let (upstream, up_rx) = mpsc::channel(CAPACITY);
        let (tasks, task_rx) = mpsc::channel(CAPACITY);
        let bus = Self {
            upstream,
            tasks,
            dead_letters: Mutex::default(),
            downstream: Mutex::default(),
        };
        let inboxes = MemoryInboxes {
            upstream: MemoryInbox::new("im-upstream-topic", up_rx),
            tasks: MemoryInbox::new("im-task-topic", task_rx),
        };
        (bus, inboxes)
    }

    /// The producing end of `im-upstream-topic`, for an embedded edge: its cores
    /// queue serialised records with `try_send`, which never blocks.
    pub fn upstream_sender(&self) -> mpsc::Sender<Traced> {
        self.upstream.clone()
    }

    /// The frames for one gateway core (the edge's downstream partition).
    pub fn subscribe_downstream(
        &self,
        gateway_id: &str,
        core: u32,
    ) -> mpsc::Receiver<DownstreamItem> {
        let (tx, rx) = mpsc::channel(CAPACITY);
        self.lock_downstream()
            .insert((gateway_id.to_owned(), core), tx);
        rx
    }

    /// Tasks that went to the dead-letter topic.
    pub fn dead_letters(&self) -> Vec<TaskRecord> {
        self.dead_letters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn lock_downstream(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), DownstreamTx>> {
        self.downstream.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn encode<T: serde::Serialize>(value: &T) -> BusResult<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| BusError::Rejected(Box::new(e)))
}

/// Queues a value under the current context's trace.
async fn push(tx: &mpsc::Sender<Traced>, payload: Bytes) -> BusResult<()> {
    tx.send((payload, TraceParent::current()))
        .await
        .map_err(|_| BusError::Unavailable("in-process log closed".into()))
}

#[async_trait]
impl Bus for MemoryBus {
    async fn ping(&self) -> BusResult<()> {
        Ok(())
    }
    async fn send_upstream(&self, record: &UpstreamRecord) -> BusResult<()> {
        push(&self.upstream, encode(record)?).await
    }
    async fn send_downstream(
        &self,
        gateway_id: &str,
        core: u32,
        key: &DownstreamKey,
        frame: Bytes,
    ) -> BusResult<()> {
        let tx = self
            .lock_downstream()
            .get(&(gateway_id.to_owned(), core))
            .cloned();
        // No subscriber means the gateway is gone: the connection's client will pull.
        if let Some(tx) = tx
            && tx
                .send((key.clone(), frame, TraceParent::current()))
                .await
                .is_err()
        {
            self.lock_downstream()
                .remove(&(gateway_id.to_owned(), core));
        }
        Ok(())
    }
    async fn send_task(&self, record: &TaskRecord) -> BusResult<()> {
        push(&self.tasks, encode(record)?).await
    }
    async fn send_dead_letter(&self, record: &TaskRecord) -> BusResult<()> {
        tracing::error!(task_id = %record.task_id, error = ?record.last_error, "task dead-lettered");
        self.dead_letters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record.clone());
        Ok(())
    }
}

/// One in-process topic's consuming end.
pub struct MemoryInbox {
    topic: &'static str,
    rx: mpsc::Receiver<Traced>,
    offset: i64,
}

impl MemoryInbox {
    fn new(topic: &'static str, rx: mpsc::Receiver<Traced>) -> Self {
        Self {
            topic,
            rx,
            offset: 0,
        }
    }
}

#[async_trait]
impl Inbox for MemoryInbox {
    async fn next(&mut self) -> Option<Delivery> {
        let (payload, trace) = self.rx.recv().await?;
        self.offset += 1;
        Some(Delivery {
            payload,
            trace,
            position: Position {
                topic: self.topic.into(),
                partition: 0,
                offset: self.offset,
            },
        })
    }
    async fn commit(&mut self, _: &Position) -> BusResult<()> {
        Ok(())
    }
    async fn close(&mut self) {
        self.rx.close();
    }
}

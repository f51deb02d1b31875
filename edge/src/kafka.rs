//! Kafka core links: each core has its own producer for `im-upstream-topic` and
//! its own consumer manually assigned partition `k` of
//! `im-downstream-topic-{gateway}` (no group, no rebalance). librdkafka's
//! queue-non-empty callback wakes the core's task directly (a waker, no thread
//! hop per message); the core then drains the queue without blocking.
//!
//! A core's idempotent producer whose requests were cut mid-flight (a broker
//! partition or restart) can be left with sequence numbers the broker no
//! longer takes, failing every later delivery, or with a fatal error. Its
//! delivery callback notes such failures and the next send renews the
//! producer (new producer id, fresh sequences); the client resends whatever
//! was lost, as for any unanswered send.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::task::AtomicWaker;
use gochat_proto::kafka::DownstreamKey;
use gochat_proto::keys::Names;
use gochat_proto::settings::KafkaConfig;
use gochat_proto::trace::{self, TraceParent};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::backend::{CoreLinks, Downstream, DownstreamItem, Upstream, UpstreamError};

/// Kafka links for every core of one gateway.
pub struct KafkaLinks {
    /// Where the brokers are and how to reach them (TLS).
    connection: Vec<(&'static str, String)>,
    names: Names,
    gateway_id: String,
    /// A client for `/readyz`'s metadata requests, made at the first one.
    probe: std::sync::OnceLock<Result<BaseConsumer, String>>,
}

impl KafkaLinks {
    /// Links for `gateway_id` on the brokers of `kafka`, topics under `names`.
    pub fn new(kafka: &KafkaConfig, names: Names, gateway_id: &str) -> Self {
        Self {
            connection: kafka.client_properties(),
            names,
            gateway_id: gateway_id.to_owned(),
            probe: std::sync::OnceLock::new(),
        }
    }
}

impl CoreLinks for KafkaLinks {
    fn upstream(&self, core: u32) -> Box<dyn Upstream> {
        let mut config = client_config(&self.connection);
        config
            .set(
                "client.id",
                format!("gochat-edge-{}-{core}", self.gateway_id),
            )
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("compression.type", "lz4")
            .set("linger.ms", "1")
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", "10000");
        match config.create_with_context(UpstreamContext::default()) {
            Ok(producer) => Box::new(KafkaUpstream {
                config,
                producer: RefCell::new(producer),
                renewed_at: Cell::new(None),
                topic: self.names.upstream_topic(),
            }),
            Err(e) => Box::new(Broken(e.to_string())),
        }
    }

    fn downstream(&self, core: u32) -> Box<dyn Downstream> {
        match KafkaDownstream::assign(
            &self.connection,
            &self.names.downstream_topic(&self.gateway_id),
            core,
        ) {
            Ok(d) => Box::new(d),
            Err(e) => {
                tracing::error!(core, error = %e, "downstream consumer could not start");
                Box::new(Broken(e.to_string()))
            }
        }
    }

    fn check_broker(&self) -> Result<(), String> {
        let probe = self.probe.get_or_init(|| {
            client_config(&self.connection)
                .create::<BaseConsumer>()
                .map_err(|e| e.to_string())
        });
        let client = probe.as_ref().map_err(Clone::clone)?;
        let topic = self.names.downstream_topic(&self.gateway_id);
        client
            .fetch_metadata(Some(&topic), Duration::from_secs(2))
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// A client config starting from the brokers' connection properties.
fn client_config(connection: &[(&'static str, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (key, value) in connection {
        config.set(*key, value);
    }
    config
}

/// At most one renewal per this long: a broker that is simply down fails
/// every delivery, and renewing cannot help it.
const RENEW_AT_MOST_EVERY: Duration = Duration::from_secs(2);

type UpstreamProducer = ThreadedProducer<UpstreamContext>;

struct KafkaUpstream {
    config: ClientConfig,
    producer: RefCell<UpstreamProducer>,
    renewed_at: Cell<Option<Instant>>,
    topic: String,
}

/// Notes (on librdkafka's thread) a delivery failure that means the
/// producer's idempotence state broke.
/// Watches deliveries: counts them for `/metrics`, and notices a producer
/// whose state the broker no longer accepts.
struct UpstreamContext {
    broken: AtomicBool,
    delivered: metrics::Counter,
    failed: metrics::Counter,
}

impl Default for UpstreamContext {
    fn default() -> Self {
        Self {
            broken: AtomicBool::new(false),
            delivered: metrics::counter!("gochat_edge_upstream_records_total"),
            failed: metrics::counter!("gochat_edge_upstream_errors_total"),
        }
    }
}

impl ClientContext for UpstreamContext {}

impl ProducerContext for UpstreamContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.increment(1),
            Err((e, _)) => {
                self.failed.increment(1);
                if state_broken(e) {
                    self.broken.store(true, Ordering::Release);
                }
            }
        }
    }
}

/// Errors that mean the producer id or sequence numbers no longer match the
/// broker's.
fn state_broken(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Unknown
                | RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::OutOfOrderSequenceNumber
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::UnknownProducerId
        )
    )
}

impl KafkaUpstream {
    /// Replaces a producer whose state broke (at most every few seconds);
    /// the old one is dropped on a thread of its own, since dropping waits
    /// for its queue and its polling thread and a core must not wait.
    fn renew_if_broken(&self) {
        if !self
            .producer
            .borrow()
            .context()
            .broken
            .load(Ordering::Acquire)
            || self
                .renewed_at
                .get()
                .is_some_and(|at| at.elapsed() < RENEW_AT_MOST_EVERY)
        {
            return;
        }
        match self.config.create_with_context(UpstreamContext::default()) {
            Ok(fresh) => {
                tracing::warn!(topic = %self.topic, "upstream producer renewed: its state was broken");
                let old = self.producer.replace(fresh);
                let _ = std::thread::Builder::new()
                    .name("edge-producer-drop".into())
                    .spawn(move || drop(old));
                self.renewed_at.set(Some(Instant::now()));
            }
            Err(e) => tracing::warn!(error = %e, "upstream producer could not be renewed"),
        }
    }
}

impl Upstream for KafkaUpstream {
    fn send(
        &self,
        key: &str,
        record: Vec<u8>,
        trace: Option<&TraceParent>,
    ) -> Result<(), UpstreamError> {
        self.renew_if_broken();
        // Queues locally and returns; librdkafka's own threads deliver it. The
        // client gets its ack (or resends) end to end, so a delivery failure
        // after this point costs a resend, never a silent loss.
        let producer = self.producer.borrow();
        let mut base = BaseRecord::to(&self.topic).key(key).payload(&record);
        if let Some(trace) = trace {
            base = base.headers(OwnedHeaders::new().insert(Header {
                key: trace::HEADER,
                value: Some(trace.as_str()),
            }));
        }
        producer.send(base).map_err(|(e, _)| {
            if state_broken(&e) || producer.client().fatal_error().is_some() {
                producer.context().broken.store(true, Ordering::Release);
            }
            UpstreamError::Unavailable(e.to_string())
        })
    }

    fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.borrow().flush(Timeout::After(timeout)) {
            tracing::warn!(error = %e, "upstream flush incomplete");
        }
    }
}

struct KafkaDownstream {
    consumer: BaseConsumer,
    waker: Arc<AtomicWaker>,
    /// Records read from this core's partition.
    records: metrics::Counter,
}

impl KafkaDownstream {
    fn assign(
        connection: &[(&'static str, String)],
        topic: &str,
        core: u32,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let mut consumer: BaseConsumer = client_config(connection)
            // Required by librdkafka even without subscribing; never used to commit.
            .set("group.id", format!("{topic}-core-{core}"))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create()?;
        let partition = i32::try_from(core).unwrap_or(0);
        // A (re)started gateway has no connections yet: old frames are for
        // connections that are gone, whose clients pull on reconnect. The
        // end is read now, before the core accepts anyone, and assigned as
        // an explicit offset: `Offset::End` is resolved lazily, when the
        // fetcher first starts, and a record produced before that (the
        // first message to a connection that has just opened) was skipped.
        let start = match consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
            Ok((_, high)) => Offset::Offset(high),
            Err(e) => {
                tracing::warn!(%topic, partition, error = %e, "end offset not read; starting at the end when fetching starts");
                Offset::End
            }
        };
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, partition, start)?;
        consumer.assign(&list)?;
        let waker = Arc::new(AtomicWaker::new());
        let wake = waker.clone();
        consumer.set_nonempty_callback(move || wake.wake());
        let records = metrics::counter!("gochat_edge_downstream_records_total", "partition" => core.to_string());
        Ok(Self {
            consumer,
            waker,
            records,
        })
    }
}

impl Downstream for KafkaDownstream {
    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut Vec<DownstreamItem>) -> Poll<bool> {
        // Register first: a record arriving after the drain below wakes us.
        self.waker.register(cx.waker());
        let before = out.len();
        while let Some(result) = self.consumer.poll(Duration::ZERO) {
            match result {
                Ok(message) => match DownstreamKey::decode(message.key().unwrap_or_default()) {
                    Some(key) => out.push((
                        key,
                        Bytes::copy_from_slice(message.payload().unwrap_or_default()),
                        message.headers().and_then(|headers| {
                            TraceParent::from_headers(headers.iter().map(|h| (h.key, h.value)))
                        }),
                    )),
                    None => tracing::warn!(
                        offset = message.offset(),
                        "downstream record with a malformed key skipped"
                    ),
                },
                Err(e) => tracing::warn!(error = %e, "downstream consume error"),
            }
        }
        if out.len() > before {
            self.records.increment((out.len() - before) as u64);
            Poll::Ready(true)
        } else {
            Poll::Pending
        }
    }
}

/// A link that could not be created: every use fails loudly.
struct Broken(String);

impl Upstream for Broken {
    fn send(&self, _: &str, _: Vec<u8>, _: Option<&TraceParent>) -> Result<(), UpstreamError> {
        Err(UpstreamError::Unavailable(self.0.clone()))
    }
    fn flush(&self, _: Duration) {}
}

impl Downstream for Broken {
    fn poll_batch(&mut self, _: &mut Context<'_>, _: &mut Vec<DownstreamItem>) -> Poll<bool> {
        Poll::Ready(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_broker_is_not_ready() {
        let kafka = KafkaConfig {
            brokers: "127.0.0.1:1".into(),
            topic_prefix: String::new(),
            create_topics: false,
            idempotence: true,
            tls: None,
        };
        let links = KafkaLinks::new(&kafka, Names::new(String::new()), "gw");
        assert!(links.check_broker().is_err());
    }
}

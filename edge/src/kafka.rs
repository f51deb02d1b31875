//! Kafka core links: each core has its own producer for `im-upstream-topic` and
//! its own consumer manually assigned partition `k` of
//! `im-downstream-topic-{gateway}` (no group, no rebalance). librdkafka's
//! queue-non-empty callback wakes the core's task directly (a waker, no thread
//! hop per message); the core then drains the queue without blocking.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::task::AtomicWaker;
use gochat_proto::kafka::DownstreamKey;
use gochat_proto::keys::Names;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::backend::{CoreLinks, Downstream, Upstream, UpstreamError};

/// Kafka links for every core of one gateway.
pub struct KafkaLinks {
    brokers: String,
    names: Names,
    gateway_id: String,
}

impl KafkaLinks {
    /// Links for `gateway_id` on `brokers`, topics under `names`.
    pub fn new(brokers: &str, names: Names, gateway_id: &str) -> Self {
        Self {
            brokers: brokers.to_owned(),
            names,
            gateway_id: gateway_id.to_owned(),
        }
    }
}

impl CoreLinks for KafkaLinks {
    fn upstream(&self, core: u32) -> Box<dyn Upstream> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set(
                "client.id",
                format!("gochat-edge-{}-{core}", self.gateway_id),
            )
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("compression.type", "lz4")
            .set("linger.ms", "1")
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", "10000")
            .create::<ThreadedProducer<DefaultProducerContext>>();
        match producer {
            Ok(producer) => Box::new(KafkaUpstream {
                producer,
                topic: self.names.upstream_topic(),
            }),
            Err(e) => Box::new(Broken(e.to_string())),
        }
    }

    fn downstream(&self, core: u32) -> Box<dyn Downstream> {
        match KafkaDownstream::assign(
            &self.brokers,
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
}

struct KafkaUpstream {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
}

impl Upstream for KafkaUpstream {
    fn send(&self, key: &str, record: Vec<u8>) -> Result<(), UpstreamError> {
        // Queues locally and returns; librdkafka's own threads deliver it. The
        // client gets its ack (or resends) end to end, so a delivery failure
        // after this point costs a resend, never a silent loss.
        self.producer
            .send(BaseRecord::to(&self.topic).key(key).payload(&record))
            .map_err(|(e, _)| UpstreamError::Unavailable(e.to_string()))
    }

    fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(Timeout::After(timeout)) {
            tracing::warn!(error = %e, "upstream flush incomplete");
        }
    }
}

struct KafkaDownstream {
    consumer: BaseConsumer,
    waker: Arc<AtomicWaker>,
}

impl KafkaDownstream {
    fn assign(brokers: &str, topic: &str, core: u32) -> Result<Self, rdkafka::error::KafkaError> {
        let mut consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
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
        Ok(Self { consumer, waker })
    }
}

impl Downstream for KafkaDownstream {
    fn poll_batch(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<(DownstreamKey, Bytes)>,
    ) -> Poll<bool> {
        // Register first: a record arriving after the drain below wakes us.
        self.waker.register(cx.waker());
        let before = out.len();
        while let Some(result) = self.consumer.poll(Duration::ZERO) {
            match result {
                Ok(message) => match DownstreamKey::decode(message.key().unwrap_or_default()) {
                    Some(key) => out.push((
                        key,
                        Bytes::copy_from_slice(message.payload().unwrap_or_default()),
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
            Poll::Ready(true)
        } else {
            Poll::Pending
        }
    }
}

/// A link that could not be created: every use fails loudly.
struct Broken(String);

impl Upstream for Broken {
    fn send(&self, _: &str, _: Vec<u8>) -> Result<(), UpstreamError> {
        Err(UpstreamError::Unavailable(self.0.clone()))
    }
    fn flush(&self, _: Duration) {}
}

impl Downstream for Broken {
    fn poll_batch(
        &mut self,
        _: &mut Context<'_>,
        _: &mut Vec<(DownstreamKey, Bytes)>,
    ) -> Poll<bool> {
        Poll::Ready(false)
    }
}

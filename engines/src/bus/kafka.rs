//! Kafka through librdkafka (rdkafka). Producers use `acks=all`, idempotence,
//! lz4 and a short linger (docs/design.md §6.3). Consumers store an offset only after
//! the record was handled; librdkafka commits stored offsets in the background
//! and once more, synchronously, on close.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gochat_proto::kafka::{DownstreamKey, TaskRecord, UpstreamRecord};
use gochat_proto::keys::Names;
use gochat_proto::settings::{ClientTls, KafkaConfig, kafka_client_properties};
use gochat_proto::trace::{self, TraceParent};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::lag::{self, LagContext};
use super::producer::RenewingProducer;
use super::{Bus, BusError, BusResult, Delivery, DownstreamRecord, Inbox, Position};

const SEND_TIMEOUT: Duration = Duration::from_secs(10);

fn map_err(e: KafkaError) -> BusError {
    match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::TopicAuthorizationFailed,
        ) => BusError::Rejected(Box::new(e)),
        _ => BusError::Unavailable(Box::new(e)),
    }
}

/// Client settings shared by producers, consumers and the admin client.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `host:port,...`.
    pub brokers: String,
    /// Topic and group names.
    pub names: Names,
    /// Idempotent producer (on in production; some test brokers lack it).
    pub idempotence: bool,
    /// TLS to the brokers, when they require it.
    pub tls: Option<ClientTls>,
}

impl KafkaSettings {
    /// The settings of a binary's `[kafka]` section.
    pub fn of(config: &KafkaConfig) -> Self {
        Self {
            brokers: config.brokers.clone(),
            names: Names::new(config.topic_prefix.clone()),
            idempotence: config.idempotence,
            tls: config.tls.clone(),
        }
    }

    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in kafka_client_properties(&self.brokers, self.tls.as_ref()) {
            config.set(key, value);
        }
        config.set("client.id", "gochat-control");
        config
    }
}

/// The Kafka producer side.
pub struct KafkaBus {
    producer: RenewingProducer,
    names: Names,
}

impl KafkaBus {
    /// Creates the producer (connects lazily).
    pub fn new(settings: &KafkaSettings) -> BusResult<Self> {
        let mut config = settings.client();
        config
            .set("acks", "all")
            .set(
                "enable.idempotence",
                if settings.idempotence {
                    "true"
                } else {
                    "false"
                },
            )
            .set("compression.type", "lz4")
            .set("linger.ms", "2")
            // Same key -> same partition as the Java client, whatever produced before.
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", "10000");
        Ok(Self {
            producer: RenewingProducer::new(config).map_err(map_err)?,
            names: settings.names.clone(),
        })
    }

    /// The error of a failed produce by `producer`, after letting the
    /// renewal see it.
    fn failed(&self, producer: &FutureProducer, e: KafkaError) -> BusError {
        self.producer.failed(producer, &e);
        map_err(e)
    }

    async fn produce(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: &str,
        payload: &[u8],
    ) -> BusResult<()> {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(headers) = trace_headers(TraceParent::current().as_ref()) {
            record = record.headers(headers);
        }
        let producer = self.producer.get();
        producer
            .send(record, Timeout::After(SEND_TIMEOUT))
            .await
            .map(|_| ())
            .map_err(|(e, _)| self.failed(&producer, e))
    }

    /// Waits until everything produced so far is acknowledged (graceful shutdown).
    pub fn flush(&self) {
        if let Err(e) = self.producer.get().flush(Timeout::After(SEND_TIMEOUT)) {
            tracing::warn!(error = %e, "kafka producer flush incomplete");
        }
    }
}

/// The headers of a traced record (none for an untraced one).
pub fn trace_headers(trace: Option<&TraceParent>) -> Option<OwnedHeaders> {
    trace.map(|t| {
        OwnedHeaders::new().insert(Header {
            key: trace::HEADER,
            value: Some(t.as_str()),
        })
    })
}

/// The trace a consumed record continues, if its producer traced it.
pub fn trace_of(message: &impl Message) -> Option<TraceParent> {
    TraceParent::from_headers(message.headers()?.iter().map(|h| (h.key, h.value)))
}

fn encode<T: serde::Serialize>(value: &T) -> BusResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| BusError::Rejected(Box::new(e)))
}

#[async_trait]
impl Bus for KafkaBus {
    async fn ping(&self) -> BusResult<()> {
        let producer = self.producer.get();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Duration::from_secs(3))
                .map(|_| ())
        })
        .await
        .map_err(|e| BusError::Unavailable(Box::new(e)))?
        .map_err(map_err)
    }
    async fn send_upstream(&self, record: &UpstreamRecord) -> BusResult<()> {
        self.produce(
            &self.names.upstream_topic(),
            None,
            &record.from_user_id.to_string(),
            &encode(record)?,
        )
        .await
    }
    async fn send_downstream(
        &self,
        gateway_id: &str,
        core: u32,
        key: &DownstreamKey,
        frame: Bytes,
    ) -> BusResult<()> {
        let partition =
            i32::try_from(core).map_err(|_| BusError::Rejected(format!("core {core}").into()))?;
        self.produce(
            &self.names.downstream_topic(gateway_id),
            Some(partition),
            &key.encode(),
            &frame,
        )
        .await
    }
    async fn send_downstream_many(&self, records: &[DownstreamRecord]) -> BusResult<()> {
        let mut deliveries = Vec::with_capacity(records.len());
        let producer = self.producer.get();
        // Queued one by one, in order, each before the next: librdkafka keeps
        // a partition's queue in that order (idempotent producer: also across
        // retries). A full queue is waited out for this record, so none
        // overtakes it.
        for r in records {
            let topic = self.names.downstream_topic(&r.gateway_id);
            let key = r.key.encode();
            let partition = i32::try_from(r.core)
                .map_err(|_| BusError::Rejected(format!("core {}", r.core).into()))?;
            let started = std::time::Instant::now();
            loop {
                let mut record = FutureRecord::to(&topic)
                    .key(&key)
                    .payload(&r.frame[..])
                    .partition(partition);
                if let Some(headers) = trace_headers(r.trace.as_ref()) {
                    record = record.headers(headers);
                }
                match producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                        if started.elapsed() < SEND_TIMEOUT =>
                    {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(self.failed(&producer, e)),
                }
            }
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(self.failed(&producer, e)),
                Err(_) => return Err(BusError::Unavailable("producer closed".into())),
            }
        }
        Ok(())
    }
    async fn send_task(&self, record: &TaskRecord) -> BusResult<()> {
        self.produce(
            &self.names.task_topic(),
            None,
            &record.task.key(),
            &encode(record)?,
        )
        .await
    }
    async fn send_dead_letter(&self, record: &TaskRecord) -> BusResult<()> {
        self.produce(
            &self.names.task_dlq_topic(),
            None,
            &record.task.key(),
            &encode(record)?,
        )
        .await
    }
}

/// Creates the standard topics if missing (dev and tests; production provisions them).
pub async fn ensure_topics(settings: &KafkaSettings, extra: &[(String, i32)]) -> BusResult<()> {
    let admin: AdminClient<DefaultClientContext> = settings.client().create().map_err(map_err)?;
    let names = &settings.names;
    let mut wanted = vec![
        (names.upstream_topic(), 10),
        (names.task_topic(), 5),
        (names.task_dlq_topic(), 1),
    ];
    wanted.extend(extra.iter().cloned());
    let topics: Vec<NewTopic<'_>> = wanted
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin
        .create_topics(&topics, &options)
        .await
        .map_err(map_err)?
    {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(BusError::Unavailable(
                    format!("create topic {topic}: {code}").into(),
                ));
            }
        }
    }
    Ok(())
}

/// A consumer-group member reading one topic.
pub struct KafkaInbox {
    consumer: StreamConsumer<LagContext>,
}

impl KafkaInbox {
    /// Joins `group` on `topic`; a new group starts from the earliest record.
    pub fn subscribe(settings: &KafkaSettings, group: &str, topic: &str) -> BusResult<Self> {
        let consumer: StreamConsumer<LagContext> = settings
            .client()
            .set("group.id", group)
            .set("statistics.interval.ms", lag::STATS_INTERVAL_MS)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "500")
            // Only offsets we store (after handling) are committed.
            .set("enable.auto.offset.store", "false")
            // A chat message waits on this: do not let the broker hold fetches
            // for librdkafka's default half second when little is flowing.
            .set("fetch.wait.max.ms", "10")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "2000")
            .create_with_context(LagContext::new(group))
            .map_err(map_err)?;
        consumer.subscribe(&[topic]).map_err(map_err)?;
        Ok(Self { consumer })
    }
}

#[async_trait]
impl Inbox for KafkaInbox {
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            match self.consumer.recv().await {
                Ok(message) => {
                    let payload = Bytes::copy_from_slice(message.payload().unwrap_or_default());
                    let position = Position {
                        topic: message.topic().to_owned(),
                        partition: message.partition(),
                        offset: message.offset(),
                    };
                    return Some(Delivery {
                        payload,
                        position,
                        trace: trace_of(&message),
                    });
                }
                Err(e) => {
                    // Broker hiccups surface here; librdkafka reconnects by itself.
                    tracing::warn!(error = %e, "kafka consume error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    async fn commit(&mut self, position: &Position) -> BusResult<()> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(
            &position.topic,
            position.partition,
            Offset::Offset(position.offset + 1),
        )
        .map_err(map_err)?;
        self.consumer.store_offsets(&list).map_err(map_err)
    }

    async fn close(&mut self) {
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing stored since the last commit is also reported as an error.
            tracing::debug!(error = %e, "final offset commit");
        }
        self.consumer.unsubscribe();
    }
}

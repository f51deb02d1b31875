//! The control plane's Kafka producer, renewed when it is stuck.
//!
//! An idempotent producer whose requests were cut mid-flight (a partition
//! between it and the broker, a broker restart) can be left with sequence
//! numbers the broker no longer takes: every later produce to the partition
//! fails — the fault checker saw "Unknown broker error" on every retry for
//! over a minute after a 6 s partition, until the process was restarted — or
//! librdkafka declares a fatal error, after which the instance never
//! produces again. A new producer gets a new producer id and starts its
//! sequences afresh; what the old one had queued fails, and the caller's
//! batch is retried (the consumer only moves on after a produce succeeded).

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer};

/// At most one renewal per this long: a broker that is simply down fails
/// every produce, and renewing cannot help it.
const RENEW_AT_MOST_EVERY: Duration = Duration::from_secs(2);

/// A producer that [`RenewingProducer::failed`] replaces when it is stuck.
pub(super) struct RenewingProducer {
    config: ClientConfig,
    current: RwLock<FutureProducer>,
    renewed_at: Mutex<Option<Instant>>,
}

impl RenewingProducer {
    pub(super) fn new(config: ClientConfig) -> KafkaResult<Self> {
        let producer = config.create()?;
        Ok(Self {
            config,
            current: RwLock::new(producer),
            renewed_at: Mutex::new(None),
        })
    }

    /// The producer to use now (a cheap handle).
    pub(super) fn get(&self) -> FutureProducer {
        match self.current.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// `producer` failed with `e`: replaces it when the failure says its
    /// producer state is broken (and it is still the current one).
    pub(super) fn failed(&self, producer: &FutureProducer, e: &KafkaError) {
        let fatal = producer.client().fatal_error();
        if fatal.is_none() && !state_broken(e) {
            return;
        }
        let Ok(mut renewed_at) = self.renewed_at.lock() else {
            return;
        };
        if renewed_at.is_some_and(|at| at.elapsed() < RENEW_AT_MOST_EVERY) {
            return;
        }
        let Ok(mut current) = self.current.write() else {
            return;
        };
        if !std::ptr::eq(
            current.client().native_ptr(),
            producer.client().native_ptr(),
        ) {
            return;
        }
        match self.config.create::<FutureProducer>() {
            Ok(fresh) => {
                tracing::warn!(error = %e, ?fatal, "kafka producer renewed: its state was broken");
                *current = fresh;
                *renewed_at = Some(Instant::now());
            }
            Err(create) => tracing::warn!(error = %create, "kafka producer could not be renewed"),
        }
    }
}

/// Errors that mean the producer's idempotence state (its producer id or
/// sequence numbers) no longer matches the broker's.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_state_errors_renew() {
        let produce = |code| KafkaError::MessageProduction(code);
        assert!(state_broken(&produce(RDKafkaErrorCode::Unknown)));
        assert!(state_broken(&produce(
            RDKafkaErrorCode::OutOfOrderSequenceNumber
        )));
        assert!(!state_broken(&produce(RDKafkaErrorCode::MessageTimedOut)));
        assert!(!state_broken(&produce(RDKafkaErrorCode::QueueFull)));
    }
}

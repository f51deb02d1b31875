//! Consumer lag for `/metrics`: librdkafka's statistics, every
//! [`STATS_INTERVAL_MS`], carry each assigned partition's lag (its high
//! watermark less the group's committed offset); one gauge per group, topic
//! and partition, `gochat_consumer_lag`.

use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::statistics::Statistics;

/// How often librdkafka reports (`statistics.interval.ms`).
pub const STATS_INTERVAL_MS: &str = "5000";

/// The consumer context that turns statistics into lag gauges.
pub struct LagContext {
    group: String,
}

impl LagContext {
    /// Reports for consumer group `group`.
    pub fn new(group: &str) -> Self {
        Self {
            group: group.to_owned(),
        }
    }
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                // -1 is librdkafka's internal "unassigned" partition; a lag of
                // -1 is "not known yet" (no committed offset or watermark).
                if *partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                metrics::gauge!(
                    "gochat_consumer_lag",
                    "group" => self.group.clone(),
                    "topic" => topic.clone(),
                    "partition" => partition.to_string()
                )
                .set(p.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for LagContext {}

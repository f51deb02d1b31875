//! `gochat edge`: one gateway on Kafka and Redis. The cores use the edge's own
//! Kafka links; the registry side thread uses the control plane's Redis state
//! and Kafka producer (for kicks) through [`crate::links::StateRegistry`], and
//! reads a new connection's groups from the control plane's repo over gRPC.

use std::sync::Arc;

use anyhow::Context;
use gochat_edge::config::EdgeConfig;
use gochat_edge::kafka::KafkaLinks;
use gochat_edge::{EdgeListeners, RunningEdge, Shutdown, ShutdownTrigger};
use gochat_engines::bus::kafka::{KafkaBus, KafkaSettings, ensure_topics};
use gochat_engines::state::redis::RedisState;
use gochat_proto::keys::Names;

use crate::links::{GrpcGroups, StateRegistry};

/// A started gateway.
pub struct Gateway {
    /// Where its cores listen.
    pub ws_addr: std::net::SocketAddr,
    edge: RunningEdge,
    trigger: ShutdownTrigger,
    kafka: Arc<KafkaBus>,
}

impl Gateway {
    /// Reads the `wss://` certificate again (on SIGHUP).
    pub fn reload_tls(&self) {
        self.edge.reload_tls();
    }

    /// Drains the cores, then flushes the kick producer.
    pub async fn shutdown(mut self) {
        self.trigger.fire();
        let edge = self.edge;
        let _ = tokio::task::spawn_blocking(move || edge.join()).await;
        let kafka = self.kafka;
        let _ = tokio::task::spawn_blocking(move || kafka.flush()).await;
    }
}

/// Starts a gateway (call inside a tokio runtime: the registry adapters use it).
pub async fn start(config: EdgeConfig, listeners: EdgeListeners) -> anyhow::Result<Gateway> {
    let kafka = config
        .kafka
        .clone()
        .context("gochat edge needs [kafka] (GOCHAT_EDGE_KAFKA__BROKERS)")?;
    let redis = config
        .redis
        .clone()
        .context("gochat edge needs [redis] (GOCHAT_EDGE_REDIS__URL)")?;
    let names = Names::new(kafka.topic_prefix.clone());
    let settings = KafkaSettings::of(&kafka);
    let cores = listeners.ws.len();
    if kafka.create_topics {
        let partitions = i32::try_from(cores).context("core count")?;
        ensure_topics(
            &settings,
            &[(names.downstream_topic(&config.gateway_id), partitions)],
        )
        .await?;
    }
    let state = Arc::new(RedisState::connect(&redis).await?);
    let bus = Arc::new(KafkaBus::new(&settings)?);
    let repo_url = config.repo_url.clone().context(
        "gochat edge needs repo_url (GOCHAT_EDGE_REPO_URL): the control plane's gRPC \
         address, where a new connection's groups are read",
    )?;
    let registry = Arc::new(StateRegistry {
        state,
        bus: bus.clone(),
        groups: Arc::new(GrpcGroups::connect_lazy(&repo_url)?),
    });
    let links = Arc::new(KafkaLinks::new(&kafka, names, &config.gateway_id));
    let ws_addr = listeners.local_addr()?;
    let (trigger, shutdown) = Shutdown::new();
    let edge = gochat_edge::run(config, listeners, links, registry, shutdown)?;
    Ok(Gateway {
        ws_addr,
        edge,
        trigger,
        kafka: bus,
    })
}

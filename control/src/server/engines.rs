//! The engines a control process runs on, chosen by its config: SQL (local,
//! Redis-cached, or the repo service over gRPC), the state store (Redis or
//! in-process) and the log (Kafka or in-process), plus the consumers of the
//! log's topics.

use std::sync::Arc;

use gochat_proto::keys::Names;

use super::StartError;
use crate::bus::kafka::{KafkaBus, KafkaInbox, KafkaSettings, ensure_topics};
use crate::bus::memory::{MemoryBus, MemoryInbox, MemoryInboxes};
use crate::bus::{Bus, Inbox};
use crate::config::{ControlConfig, Service};
use crate::repo::Repo;
use crate::repo::cache::RepoCache;
use crate::repo::grpc::RepoClient;
use crate::repo::sql::SqlRepo;
use crate::state::StateStore;
use crate::state::memory::MemoryState;
use crate::state::redis::RedisState;

/// A topic a control service consumes.
#[derive(Debug, Clone, Copy)]
pub enum Topic {
    /// `im-upstream-topic`, read by logic (`im-logic-group`).
    Upstream,
    /// `im-task-topic`, read by task (`im-task-group`).
    Tasks,
}

/// Where the log lives.
enum Log {
    Kafka {
        bus: Arc<KafkaBus>,
        settings: KafkaSettings,
    },
    Memory {
        bus: Arc<MemoryBus>,
        upstream: Option<MemoryInbox>,
        tasks: Option<MemoryInbox>,
    },
}

/// The engines of one process.
pub struct Engines {
    /// Session registry, seq cache, revocation, rate limits.
    pub state: Arc<dyn StateStore>,
    /// Producing side of the log.
    pub bus: Arc<dyn Bus>,
    /// Storage: SQL here, or the repo service elsewhere.
    pub repo: Arc<dyn Repo>,
    log: Log,
}

impl Engines {
    /// Connects what the config names. A process with the repo service owns
    /// SQL (behind the Redis cache when Redis is configured); others reach it
    /// over gRPC.
    pub async fn connect(config: &ControlConfig) -> Result<Self, StartError> {
        let redis = match &config.redis {
            Some(r) => Some(RedisState::connect(r).await?),
            None => None,
        };
        let repo: Arc<dyn Repo> = if config.services.contains(&Service::Repo) {
            let cache = match (&redis, &config.redis) {
                (Some(r), Some(c)) => {
                    RepoCache::redis(r.connection(), Names::new(c.key_prefix.clone()))
                }
                _ => RepoCache::none(),
            };
            let sql =
                SqlRepo::connect(&config.database.url, config.database.max_connections).await?;
            // Messages from before the search index, if any; the task ends
            // when they are indexed (each step is its own transaction).
            tokio::spawn({
                let sql = sql.clone();
                async move { sql.backfill_search_index().await }
            });
            Arc::new(sql.with_cache(cache))
        } else {
            let endpoint = config
                .grpc
                .repo_endpoint
                .as_deref()
                .ok_or_else(|| StartError::Config("grpc.repo_endpoint".into()))?;
            Arc::new(RepoClient::connect_lazy(endpoint)?)
        };
        let state: Arc<dyn StateStore> = match redis {
            Some(r) => Arc::new(r),
            None => Arc::new(MemoryState::new()),
        };
        let log = match &config.kafka {
            Some(k) => {
                let settings = KafkaSettings::of(k);
                if k.create_topics {
                    ensure_topics(&settings, &[]).await?;
                }
                Log::Kafka {
                    bus: Arc::new(KafkaBus::new(&settings)?),
                    settings,
                }
            }
            None => {
                let (bus, MemoryInboxes { upstream, tasks }) = MemoryBus::new();
                Log::Memory {
                    bus: Arc::new(bus),
                    upstream: Some(upstream),
                    tasks: Some(tasks),
                }
            }
        };
        let bus: Arc<dyn Bus> = match &log {
            Log::Kafka { bus, .. } => bus.clone(),
            Log::Memory { bus, .. } => bus.clone(),
        };
        Ok(Self {
            state,
            bus,
            repo,
            log,
        })
    }

    /// The consumer of `topic` for its service's group. The in-process log
    /// has one consumer per topic, so asking twice is a wiring error.
    pub fn inbox(&mut self, topic: Topic) -> Result<Box<dyn Inbox>, StartError> {
        match &mut self.log {
            Log::Kafka { settings, .. } => {
                let names = &settings.names;
                let (group, topic) = match topic {
                    Topic::Upstream => (names.logic_group(), names.upstream_topic()),
                    Topic::Tasks => (names.task_group(), names.task_topic()),
                };
                Ok(Box::new(KafkaInbox::subscribe(settings, &group, &topic)?))
            }
            Log::Memory {
                upstream, tasks, ..
            } => {
                let taken = match topic {
                    Topic::Upstream => upstream.take(),
                    Topic::Tasks => tasks.take(),
                };
                let inbox =
                    taken.ok_or_else(|| StartError::Config(format!("{topic:?} consumed twice")))?;
                Ok(Box::new(inbox))
            }
        }
    }

    /// The in-process log, in single-process mode (standalone's edge links to it).
    pub fn memory_bus(&self) -> Option<Arc<MemoryBus>> {
        match &self.log {
            Log::Memory { bus, .. } => Some(bus.clone()),
            Log::Kafka { .. } => None,
        }
    }

    /// The Kafka producer, to flush at shutdown.
    pub fn kafka(&self) -> Option<Arc<KafkaBus>> {
        match &self.log {
            Log::Kafka { bus, .. } => Some(bus.clone()),
            Log::Memory { .. } => None,
        }
    }
}

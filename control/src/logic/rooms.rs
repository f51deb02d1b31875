//! Large groups through the edge's group rooms (docs/design.md, group
//! rooms): a message is one downstream record per live gateway core, keyed
//! by the group, and each core expands it to its connections in the group's
//! room — logic never reads the member list or the members' routes for it.
//! The rooms are filled when a connection opens and kept current by the
//! membership records sent here when someone joins or leaves.
//!
//! Either path — rooms, or per-connection delivery to the member list — is
//! correct for any group (every connection is in the rooms of all its
//! groups); the size only picks the cheaper one, so the size is read from a
//! short-lived cache and a stale size costs nothing but efficiency.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gochat_proto::ids::Id;
use gochat_proto::kafka::{DownstreamKey, GroupFanout, Origin, Task, TaskRecord};
use tokio::sync::OnceCell;

use super::LogicResult;
use super::delivery::per_core;
use super::routing::Routed;
use super::writer::MessageWriter;
use crate::bus::DownstreamRecord;
use crate::repo::StoredMessage;

/// How long a group's size is trusted.
const SIZE_TTL: Duration = Duration::from_secs(5);
/// Sizes kept at most; past it the cache starts over.
const MAX_SIZES: usize = 100_000;
/// Users per task when an @all is pushed to a large group's offline members.
const PUSH_BATCH: u32 = 500;

/// Group sizes, kept briefly.
#[derive(Default)]
pub(super) struct GroupSizes(Mutex<HashMap<i64, (usize, Instant)>>);

impl GroupSizes {
    fn get(&self, group: i64) -> Option<usize> {
        let sizes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sizes
            .get(&group)
            .filter(|(_, at)| at.elapsed() < SIZE_TTL)
            .map(|(size, _)| *size)
    }

    fn put(&self, group: i64, size: usize) {
        let mut sizes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if sizes.len() >= MAX_SIZES {
            sizes.clear();
        }
        sizes.insert(group, (size, Instant::now()));
    }
}

impl MessageWriter {
    /// Is the group at or above `large_group_threshold`?
    pub(super) async fn is_large_group(&self, group: i64) -> LogicResult<bool> {
        let size = match self.group_sizes.get(group) {
            Some(size) => size,
            None => {
                let count = self.repo.get_group(group).await?.member_count;
                let size = usize::try_from(count).unwrap_or(0);
                self.group_sizes.put(group, size);
                size
            }
        };
        Ok(size >= self.config.large_group_threshold)
    }

    /// A large group's message: one record per live gateway core to the
    /// group's room there (the sender's connection skipped; it gets the
    /// ack), and pushes for the mentioned members who are offline. The live
    /// gateways are read once per batch (`gateways`).
    pub(super) async fn plan_rooms(
        &self,
        m: &StoredMessage,
        origin: Option<&Origin>,
        frame: Bytes,
        gateways: &OnceCell<Vec<(String, u32)>>,
    ) -> LogicResult<Routed> {
        let gateways = gateways.get_or_try_init(|| self.state.gateways()).await?;
        let mut records = Vec::new();
        for (gateway, cores) in gateways {
            for core in 0..*cores {
                let skip = origin
                    .filter(|o| o.gateway_id == *gateway && o.core == core)
                    .map(|o| o.conn_id);
                records.push(DownstreamRecord {
                    gateway_id: gateway.clone(),
                    core,
                    key: DownstreamKey::Room {
                        group: m.group_id,
                        skip,
                    },
                    frame: frame.clone(),
                    trace: gochat_proto::trace::TraceParent::current(),
                });
            }
        }
        let tasks = self.mention_pushes(m).await?;
        Ok(Routed { records, tasks })
    }

    /// In a large group only a mention pushes: each mentioned member who is
    /// offline, and for `@all` (within its budget) every offline member,
    /// through the task service in batches.
    async fn mention_pushes(&self, m: &StoredMessage) -> LogicResult<Vec<TaskRecord>> {
        if m.mentions.iter().any(|x| x == "all") && self.allow_mention_all(m.group_id).await? {
            let task = Task::GroupFanout(GroupFanout {
                group_id: Id(m.group_id),
                message_id: Id(m.message_id),
                exclude_user_ids: vec![Id(m.from_user_id)],
                batch_size: PUSH_BATCH,
                conversation_id: m.conversation_id.clone(),
                seq_id: m.seq_id,
                title: self.push_title(m, true).await,
                content: self.push_text(m).await,
                created_at: m.timestamp,
            });
            return Ok(vec![self.task_record(task)]);
        }
        let mut mentioned = Vec::new();
        for user in m.mentions.iter().filter_map(|x| x.parse::<Id>().ok()) {
            // A mention of someone outside the group pushes nothing.
            if user.0 != m.from_user_id
                && !mentioned.contains(&user)
                && self.repo.get_member(m.group_id, user.0).await?.is_some()
            {
                mentioned.push(user);
            }
        }
        if mentioned.is_empty() {
            return Ok(Vec::new());
        }
        let online = self.state.routes(&mentioned).await?;
        let mut tasks = Vec::new();
        for user in mentioned.into_iter().filter(|u| !online.contains_key(u)) {
            tasks.push(self.offline_push(user, m).await);
        }
        Ok(tasks)
    }

    /// An `@all` push to every offline member of a large group is costly
    /// and noisy: a budget per group (`logic.mention_all_per_minute`).
    async fn allow_mention_all(&self, group: i64) -> LogicResult<bool> {
        let limit = self.config.mention_all_per_minute;
        let allowed = limit > 0
            && self
                .state
                .allow(&format!("mention_all:{group}"), limit, 60)
                .await?;
        if !allowed {
            metrics::counter!("gochat_mention_all_limited_total").increment(1);
        }
        Ok(allowed)
    }

    /// Users joined (`joined`) or left a group: every core holding one of
    /// their connections updates its room before anything sent later.
    /// Called after the change is stored, so a connection that registers
    /// after the routes were read fills its rooms from the new membership.
    pub(super) async fn announce_membership(
        &self,
        group: Id,
        users: &[Id],
        joined: bool,
    ) -> LogicResult<()> {
        let routes = self.state.routes(users).await?;
        let conns = routes.into_values().flatten().map(|(_, route)| route);
        let membership = |conns| DownstreamKey::Membership {
            group: group.0,
            conns,
            joined,
        };
        let records = per_core(conns, membership, &Bytes::new());
        self.bus.send_downstream_many(&records).await?;
        Ok(())
    }
}

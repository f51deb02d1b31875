//! Names shared across tiers: Kafka topics and consumer groups, and the Redis
//! keys both the edge and the control plane read or write.
//!
//! Every name takes an optional namespace prefix (empty in production) so that
//! tests and several deployments can share one broker or one Redis.

use serde::{Deserialize, Serialize};

use crate::ids::Id;

/// Topic and consumer-group names under a namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// Names under `prefix` (`""` for the standard names).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    fn named(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// `im-upstream-topic`: edge -> logic.
    pub fn upstream_topic(&self) -> String {
        self.named("im-upstream-topic")
    }
    /// `im-downstream-topic-{gateway}`: logic/task -> that gateway; partition = core.
    pub fn downstream_topic(&self, gateway_id: &str) -> String {
        self.named(&format!("im-downstream-topic-{gateway_id}"))
    }
    /// `im-task-topic`: logic -> task.
    pub fn task_topic(&self) -> String {
        self.named("im-task-topic")
    }
    /// `im-task-dlq`: tasks that failed three times.
    pub fn task_dlq_topic(&self) -> String {
        self.named("im-task-dlq")
    }
    /// `im-logic-group`.
    pub fn logic_group(&self) -> String {
        self.named("im-logic-group")
    }
    /// `im-task-group`.
    pub fn task_group(&self) -> String {
        self.named("im-task-group")
    }
    /// Redis `user_session:{user_id}`: hash, field = device id, value = [`SessionRoute`] JSON.
    pub fn session_key(&self, user: Id) -> String {
        self.named(&format!("user_session:{user}"))
    }
    /// Redis `revoked_jti:{jti}`: present while a logged-out token would still be valid.
    pub fn revoked_key(&self, jti: &str) -> String {
        self.named(&format!("revoked_jti:{jti}"))
    }
    /// Redis `user_info:{user_id}`: cached profile (hash).
    pub fn user_info_key(&self, user: Id) -> String {
        self.named(&format!("user_info:{user}"))
    }
    /// Redis `group_members:{group_id}`: cached member set.
    pub fn group_members_key(&self, group: Id) -> String {
        self.named(&format!("group_members:{group}"))
    }
    /// Redis `gateways`: hash, field = gateway id, value = `{cores}:{expires_ms}`
    /// (the live gateways, for group-room fan-out).
    pub fn gateways_key(&self) -> String {
        self.named("gateways")
    }
    /// Redis `limit:{name}:{window}`: uses of a named budget in one window
    /// (e.g. `mention_all:{group_id}`).
    pub fn limit_key(&self, name: &str, window: i64) -> String {
        self.named(&format!("limit:{name}:{window}"))
    }
}

/// One device's live connection, as the edge registers it in `user_session:{user_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRoute {
    /// Gateway id.
    pub gateway_id: String,
    /// Worker core on the gateway.
    pub core: u32,
    /// Connection id on the core.
    pub conn_id: u64,
    /// Grows with each login of the device: the newest connection wins.
    pub generation: u64,
    /// When the connection was last seen alive, ms since the epoch.
    pub seen_at: i64,
    /// [`crate::auth::token_tag`] of the token it authenticated with, so a
    /// logout closes that token's connections (0: unknown).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub token: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// What registering a connection did to its device's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteChange {
    /// The entry now names this connection (new, or refreshed).
    Registered,
    /// The entry named another connection of the device, which must be closed.
    Replaced(SessionRoute),
    /// A newer connection of the device holds the entry: this one must be closed.
    Superseded,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_seed_002_and_take_a_prefix() {
        let std = Names::default();
        assert_eq!(std.upstream_topic(), "im-upstream-topic");
        assert_eq!(std.downstream_topic("gw1"), "im-downstream-topic-gw1");
        assert_eq!(std.task_topic(), "im-task-topic");
        assert_eq!(std.task_dlq_topic(), "im-task-dlq");
        assert_eq!(std.session_key(Id(7)), "user_session:7");
        assert_eq!(Names::new("t1-").logic_group(), "t1-im-logic-group");
    }
}

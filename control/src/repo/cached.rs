//! [`CachedRepo`]: cache-aside through Redis in front of another repo
//! (seed 003 §2.1.2–2.1.3) for the two hottest reads: user profiles
//! (`user_info:{id}`, a hash) and group membership (`group_members:{id}`, a hash
//! user_id -> "role:joined_at", so a membership check is one HGET).
//!
//! Reads try Redis, fall back to the inner repo and fill the cache with a TTL;
//! writes go to the inner repo first and then delete the cache entry (deleting
//! after the write is what keeps a concurrent reader from caching stale rows for
//! longer than the TTL). Redis being down never fails a call: it only costs a
//! database read.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use gochat_proto::ids::Id;
use gochat_proto::keys::Names;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::{
    ConversationInfo, ConversationSummary, Group, GroupPatch, Member, Messages, Page, Repo,
    RepoResult, StoreOutcome, StoredMessage, User, UserAuth,
};

const USER_TTL_SECS: u64 = 30 * 60;
// Membership gates authorization, so a stale entry must not live long.
const MEMBERS_TTL_SECS: u64 = 60;

/// A repo with a Redis cache in front.
pub struct CachedRepo {
    inner: Arc<dyn Repo>,
    redis: ConnectionManager,
    names: Names,
}

impl CachedRepo {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Repo>, redis: ConnectionManager, names: Names) -> Self {
        Self {
            inner,
            redis,
            names,
        }
    }

    async fn cached_user(&self, user_id: i64) -> Option<User> {
        let mut conn = self.redis.clone();
        let map: HashMap<String, String> = conn
            .hgetall(self.names.user_info_key(Id(user_id)))
            .await
            .ok()?;
        Some(User {
            user_id,
            username: map.get("username")?.clone(),
            nickname: map.get("nickname")?.clone(),
            avatar_url: map.get("avatar_url")?.clone(),
            created_at: map.get("created_at")?.parse().ok()?,
        })
    }

    async fn fill_user(&self, user: &User) {
        let key = self.names.user_info_key(Id(user.user_id));
        let created = user.created_at.to_string();
        let fields = [
            ("username", user.username.as_str()),
            ("nickname", user.nickname.as_str()),
            ("avatar_url", user.avatar_url.as_str()),
            ("created_at", created.as_str()),
        ];
        let mut conn = self.redis.clone();
        let result: redis::RedisResult<()> = redis::pipe()
            .hset_multiple(&key, &fields)
            .ignore()
            .expire(&key, USER_TTL_SECS as i64)
            .ignore()
            .query_async(&mut conn)
            .await;
        log_cache_error("fill user_info", result);
    }

    async fn cached_members(&self, group_id: i64) -> Option<Vec<Member>> {
        let mut conn = self.redis.clone();
        let map: HashMap<i64, String> = conn
            .hgetall(self.names.group_members_key(Id(group_id)))
            .await
            .ok()?;
        if map.is_empty() {
            return None;
        }
        let mut members: Vec<Member> = map
            .iter()
            .filter_map(|(user, value)| parse_member(*user, value))
            .collect();
        members.sort_by_key(|m| (m.joined_at, m.user_id));
        Some(members)
    }

    async fn fill_members(&self, group_id: i64, members: &[Member]) {
        if members.is_empty() {
            return;
        }
        let key = self.names.group_members_key(Id(group_id));
        let fields: Vec<(i64, String)> = members
            .iter()
            .map(|m| (m.user_id, format!("{}:{}", m.role, m.joined_at)))
            .collect();
        let mut conn = self.redis.clone();
        let result: redis::RedisResult<()> = redis::pipe()
            .hset_multiple(&key, &fields)
            .ignore()
            .expire(&key, MEMBERS_TTL_SECS as i64)
            .ignore()
            .query_async(&mut conn)
            .await;
        log_cache_error("fill group_members", result);
    }

    async fn invalidate(&self, key: String) {
        let mut conn = self.redis.clone();
        let result: redis::RedisResult<()> = conn.del(key).await;
        log_cache_error("invalidate", result);
    }
}

fn parse_member(user_id: i64, value: &str) -> Option<Member> {
    let (role, joined) = value.split_once(':')?;
    Some(Member {
        user_id,
        role: role.parse().ok()?,
        joined_at: joined.parse().ok()?,
    })
}

fn log_cache_error(what: &str, result: redis::RedisResult<()>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "redis cache {what} failed; serving from the database");
    }
}

#[async_trait]
impl Repo for CachedRepo {
    async fn ping(&self) -> RepoResult<()> {
        self.inner.ping().await
    }
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        nickname: &str,
    ) -> RepoResult<User> {
        self.inner
            .create_user(username, password_hash, nickname)
            .await
    }
    async fn get_user_auth(&self, username: &str) -> RepoResult<UserAuth> {
        self.inner.get_user_auth(username).await
    }
    async fn get_user(&self, user_id: i64) -> RepoResult<User> {
        if let Some(user) = self.cached_user(user_id).await {
            return Ok(user);
        }
        let user = self.inner.get_user(user_id).await?;
        self.fill_user(&user).await;
        Ok(user)
    }
    async fn get_users(&self, user_ids: &[i64]) -> RepoResult<Vec<User>> {
        self.inner.get_users(user_ids).await
    }
    async fn search_users(&self, prefix: &str, limit: u32) -> RepoResult<Vec<User>> {
        self.inner.search_users(prefix, limit).await
    }
    async fn list_user_ids(&self) -> RepoResult<Vec<i64>> {
        self.inner.list_user_ids().await
    }
    async fn update_user(
        &self,
        user_id: i64,
        nickname: Option<&str>,
        avatar_url: Option<&str>,
    ) -> RepoResult<User> {
        let user = self
            .inner
            .update_user(user_id, nickname, avatar_url)
            .await?;
        self.invalidate(self.names.user_info_key(Id(user_id))).await;
        Ok(user)
    }
    async fn add_friend(&self, user_id: i64, friend_id: i64) -> RepoResult<()> {
        self.inner.add_friend(user_id, friend_id).await
    }
    async fn remove_friend(&self, user_id: i64, friend_id: i64) -> RepoResult<()> {
        self.inner.remove_friend(user_id, friend_id).await
    }
    async fn list_friends(&self, user_id: i64) -> RepoResult<Vec<User>> {
        self.inner.list_friends(user_id).await
    }
    async fn are_friends(&self, user_id: i64, other_id: i64) -> RepoResult<bool> {
        self.inner.are_friends(user_id, other_id).await
    }
    async fn add_block(&self, user_id: i64, blocked_id: i64) -> RepoResult<()> {
        self.inner.add_block(user_id, blocked_id).await
    }
    async fn remove_block(&self, user_id: i64, blocked_id: i64) -> RepoResult<()> {
        self.inner.remove_block(user_id, blocked_id).await
    }
    async fn is_blocked(&self, user_id: i64, other_id: i64) -> RepoResult<bool> {
        self.inner.is_blocked(user_id, other_id).await
    }
    async fn create_group(
        &self,
        owner_id: i64,
        name: &str,
        member_ids: &[i64],
    ) -> RepoResult<Group> {
        self.inner.create_group(owner_id, name, member_ids).await
    }
    async fn get_group(&self, group_id: i64) -> RepoResult<Group> {
        self.inner.get_group(group_id).await
    }
    async fn update_group(&self, group_id: i64, patch: &GroupPatch) -> RepoResult<Group> {
        self.inner.update_group(group_id, patch).await
    }
    async fn search_groups(&self, query: &str, limit: u32) -> RepoResult<Vec<Group>> {
        self.inner.search_groups(query, limit).await
    }
    async fn list_user_groups(&self, user_id: i64) -> RepoResult<Vec<Group>> {
        self.inner.list_user_groups(user_id).await
    }
    async fn add_members(&self, group_id: i64, user_ids: &[i64]) -> RepoResult<Vec<i64>> {
        let added = self.inner.add_members(group_id, user_ids).await?;
        self.invalidate(self.names.group_members_key(Id(group_id)))
            .await;
        Ok(added)
    }
    async fn remove_member(&self, group_id: i64, user_id: i64) -> RepoResult<bool> {
        let removed = self.inner.remove_member(group_id, user_id).await?;
        self.invalidate(self.names.group_members_key(Id(group_id)))
            .await;
        Ok(removed)
    }
    async fn list_members(&self, group_id: i64) -> RepoResult<Vec<Member>> {
        if let Some(members) = self.cached_members(group_id).await {
            return Ok(members);
        }
        let members = self.inner.list_members(group_id).await?;
        self.fill_members(group_id, &members).await;
        Ok(members)
    }
    async fn get_member(&self, group_id: i64, user_id: i64) -> RepoResult<Option<Member>> {
        if let Some(members) = self.cached_members(group_id).await {
            return Ok(members.into_iter().find(|m| m.user_id == user_id));
        }
        self.inner.get_member(group_id, user_id).await
    }
    async fn find_message(
        &self,
        from_user_id: i64,
        client_msg_id: &str,
    ) -> RepoResult<Option<StoredMessage>> {
        self.inner.find_message(from_user_id, client_msg_id).await
    }
    async fn store_message(&self, message: &StoredMessage) -> RepoResult<StoreOutcome> {
        self.inner.store_message(message).await
    }
    async fn get_conversation(
        &self,
        conversation_id: &str,
    ) -> RepoResult<Option<ConversationInfo>> {
        self.inner.get_conversation(conversation_id).await
    }
    async fn list_messages(
        &self,
        conversation_id: &str,
        page: Page,
        limit: u32,
    ) -> RepoResult<Messages> {
        self.inner.list_messages(conversation_id, page, limit).await
    }
    async fn list_conversations(&self, user_id: i64) -> RepoResult<Vec<ConversationSummary>> {
        self.inner.list_conversations(user_id).await
    }
    async fn mark_read(&self, user_id: i64, conversation_id: &str, seq_id: i64) -> RepoResult<i64> {
        self.inner.mark_read(user_id, conversation_id, seq_id).await
    }
    async fn list_mentions(&self, user_id: i64) -> RepoResult<Vec<StoredMessage>> {
        self.inner.list_mentions(user_id).await
    }
}

//! The repo service: the only code that touches SQL (seed 003 §3.1.4, "im-data").
//!
//! [`Repo`] is the service trait, in three parts by domain ([`UserRepo`],
//! [`GroupRepo`], [`MessageRepo`]) so each SQL file implements its own part
//! with no forwarding layer. Two implementations, chosen at start:
//! [`sql::SqlRepo`] (MySQL/MariaDB or SQLite, with the Redis cache of
//! [`cache`] for the reads it serves) and [`grpc::RepoClient`] (a remote repo
//! service). [`grpc::RepoServer`] exposes any of them over gRPC. The shared
//! contract suite in `tests/repo_contract/` runs against each backend.
//!
//! The domain types are the gRPC messages of `proto/repo.proto`, so the local and
//! remote paths carry the same values with no conversion layer in between.

pub mod cache;
pub mod grpc;
pub mod sql;

use async_trait::async_trait;
pub use gochat_proto::repo::{
    ConversationInfo, ConversationSettings, ConversationSummary, CreateUserRequest as NewUser,
    Device, FriendRequest, Group, JoinRequest, Member, Messages, StoredMessage,
    UpdateSettingsRequest as SettingsPatch, User, UserAuth,
};

/// The metadata key of an edit or recall entry that names the message it
/// changes (PROTOCOL.md v1.1).
pub const TARGET_MESSAGE_ID: &str = "target_message_id";
/// The metadata key of an edit or recall entry that gives its target's seq.
pub const TARGET_SEQ_ID: &str = "target_seq_id";

/// Group roles (seed 003 `group_members.role`).
pub mod role {
    /// A plain member.
    pub const MEMBER: i32 = 1;
    /// May edit the group and remove members.
    pub const ADMIN: i32 = 2;
    /// The creator.
    pub const OWNER: i32 = 3;
}

/// Why a repo call failed, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A unique rule would break (e.g. the username is taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request itself is wrong (bad argument).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The store is unreachable or overloaded: retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] crate::BoxError),
    /// Anything else: a bug or a broken invariant in the store.
    #[error("storage error: {0}")]
    Internal(#[source] crate::BoxError),
}

impl RepoError {
    /// Transient failures worth retrying (connection loss, deadlock, timeout).
    pub fn is_retryable(&self) -> bool {
        matches!(self, RepoError::Unavailable(_))
    }
}

/// Result alias for repo calls.
pub type RepoResult<T> = Result<T, RepoError>;

/// What storing a message did.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreOutcome {
    /// Stored now.
    Stored(StoredMessage),
    /// (from_user_id, client_msg_id) was stored before: here is the original.
    Duplicate(StoredMessage),
}

/// Which page of a conversation's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Messages with seq > n, ascending.
    After(i64),
    /// The messages just below n, returned ascending.
    Before(i64),
}

/// Partial update of a group.
#[derive(Debug, Clone, Default)]
pub struct GroupPatch {
    /// New name.
    pub name: Option<String>,
    /// New announcement.
    pub announcement: Option<String>,
    /// New avatar.
    pub avatar_url: Option<String>,
    /// Who may join: 0 approval, 1 open, 2 invite only.
    pub join_policy: Option<i32>,
    /// Only the owner and admins may send.
    pub mute_all: Option<bool>,
    /// Dissolves the group (there is no way back).
    pub dissolved: Option<bool>,
}

/// The repo service: users, groups and messages, each one logical store
/// operation per method. SQL ([`sql::SqlRepo`], with its optional Redis
/// cache) and the gRPC client ([`grpc::RepoClient`]) implement it; the
/// contract suite runs against both.
#[async_trait]
pub trait Repo: UserRepo + GroupRepo + MessageRepo + Send + Sync + 'static {
    /// Is the store reachable?
    async fn ping(&self) -> RepoResult<()>;

    /// The SQL pool's connections, open and idle, where this process holds
    /// one (for `/metrics`).
    fn pool_usage(&self) -> Option<(u32, u32)> {
        None
    }
}

/// Accounts, friends and blocks.
#[async_trait]
pub trait UserRepo: Send + Sync {
    /// Creates a user; `Conflict` if the username is taken.
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        nickname: &str,
    ) -> RepoResult<User>;
    /// Creates many users in one transaction, in order: all of them, or
    /// none (`Conflict` naming a taken username).
    async fn create_users(&self, users: &[NewUser]) -> RepoResult<Vec<User>>;
    /// A user with the password hash, for login.
    async fn get_user_auth(&self, username: &str) -> RepoResult<UserAuth>;
    /// A user by id.
    async fn get_user(&self, user_id: i64) -> RepoResult<User>;
    /// Users by id; unknown ids are left out.
    async fn get_users(&self, user_ids: &[i64]) -> RepoResult<Vec<User>>;
    /// Users whose username starts with `prefix`.
    async fn search_users(&self, prefix: &str, limit: u32) -> RepoResult<Vec<User>>;
    /// Every user id (admin push to all).
    async fn list_user_ids(&self) -> RepoResult<Vec<i64>>;
    /// Changes nickname and/or avatar.
    async fn update_user(
        &self,
        user_id: i64,
        nickname: Option<&str>,
        avatar_url: Option<&str>,
    ) -> RepoResult<User>;

    /// Makes two users friends (both directions).
    async fn add_friend(&self, user_id: i64, friend_id: i64) -> RepoResult<()>;
    /// Ends a friendship (both directions).
    async fn remove_friend(&self, user_id: i64, friend_id: i64) -> RepoResult<()>;
    /// A user's friends.
    async fn list_friends(&self, user_id: i64) -> RepoResult<Vec<User>>;
    /// Are the two friends?
    async fn are_friends(&self, user_id: i64, other_id: i64) -> RepoResult<bool>;
    /// `user_id` blocks `blocked_id`.
    async fn add_block(&self, user_id: i64, blocked_id: i64) -> RepoResult<()>;
    /// The users `user_id` has blocked, by username.
    async fn list_blocks(&self, user_id: i64) -> RepoResult<Vec<User>>;
    /// Lifts a block.
    async fn remove_block(&self, user_id: i64, blocked_id: i64) -> RepoResult<()>;
    /// Has `user_id` blocked `other_id`?
    async fn is_blocked(&self, user_id: i64, other_id: i64) -> RepoResult<bool>;
    /// Sets who may befriend the user (0 approve, 1 open, 2 closed); the
    /// profile after the change.
    async fn set_friend_policy(&self, user_id: i64, policy: i32) -> RepoResult<User>;
    /// Records when the user's last connection closed (ms).
    async fn set_last_seen(&self, user_id: i64, at: i64) -> RepoResult<()>;
    /// Who sees the user's presence: friends, peers of 1:1 conversations
    /// and members of the user's groups of at most `group_max` members,
    /// less anyone a block (either way) stands between; ascending ids.
    async fn presence_audience(&self, user_id: i64, group_max: i64) -> RepoResult<Vec<i64>>;
    /// Files `from`'s friend request to `to`; one already pending in that
    /// direction is kept and returned. Friendship or a block between the
    /// two clears their requests.
    async fn request_friend(&self, from: i64, to: i64, message: &str) -> RepoResult<FriendRequest>;
    /// The requests the user sent or received, oldest first.
    async fn friend_requests(&self, user_id: i64) -> RepoResult<Vec<FriendRequest>>;
    /// Forgets a request (rejected); nothing if it is gone.
    async fn delete_friend_request(&self, request_id: i64) -> RepoResult<()>;
    /// Registers a device for offline pushes, or replaces its platform and
    /// token.
    async fn save_device(&self, device: &Device) -> RepoResult<()>;
    /// Forgets a device; false if it was not registered.
    async fn remove_device(&self, user_id: i64, device_id: &str) -> RepoResult<bool>;
    /// A user's registered devices, by device id.
    async fn list_devices(&self, user_id: i64) -> RepoResult<Vec<Device>>;
    /// Keeps a logged-out token id until `expires_at` (ms): the durable side
    /// of the state store's revocation list.
    async fn revoke_token(&self, jti: &str, expires_at: i64) -> RepoResult<()>;
    /// The revoked token ids not yet expired, with their expiry (ms); the
    /// expired ones are forgotten on the way.
    async fn revoked_tokens(&self) -> RepoResult<Vec<(String, i64)>>;
}

/// Groups and membership.
#[async_trait]
pub trait GroupRepo: Send + Sync {
    /// Creates a group owned by `owner_id` with the given members, and its conversation.
    async fn create_group(
        &self,
        owner_id: i64,
        name: &str,
        member_ids: &[i64],
    ) -> RepoResult<Group>;
    /// A group by id.
    async fn get_group(&self, group_id: i64) -> RepoResult<Group>;
    /// Edits a group.
    async fn update_group(&self, group_id: i64, patch: &GroupPatch) -> RepoResult<Group>;
    /// Groups whose name contains `query`.
    async fn search_groups(&self, query: &str, limit: u32) -> RepoResult<Vec<Group>>;
    /// The groups a user is in.
    async fn list_user_groups(&self, user_id: i64) -> RepoResult<Vec<Group>>;
    /// Adds members; returns those that were not members before.
    async fn add_members(&self, group_id: i64, user_ids: &[i64]) -> RepoResult<Vec<i64>>;
    /// Removes a member; false if they were not one.
    async fn remove_member(&self, group_id: i64, user_id: i64) -> RepoResult<bool>;
    /// The members of a group.
    async fn list_members(&self, group_id: i64) -> RepoResult<Vec<Member>>;
    /// One membership, if any.
    async fn get_member(&self, group_id: i64, user_id: i64) -> RepoResult<Option<Member>>;
    /// Changes a member's role and/or mute (ms; 0 lifts it); the membership
    /// after the change, `None` if the user is not a member.
    async fn update_member(
        &self,
        group_id: i64,
        user_id: i64,
        role: Option<i32>,
        muted_until: Option<i64>,
    ) -> RepoResult<Option<Member>>;
    /// Makes member `to` the owner and the owner `from` an admin, in one
    /// transaction; `NotFound` unless both are members.
    async fn transfer_group(&self, group_id: i64, from: i64, to: i64) -> RepoResult<Group>;
    /// Files the user's request to join; one already pending is returned.
    /// Becoming a member clears it.
    async fn request_join(&self, group_id: i64, user_id: i64) -> RepoResult<JoinRequest>;
    /// A group's pending join requests, oldest first.
    async fn join_requests(&self, group_id: i64) -> RepoResult<Vec<JoinRequest>>;
    /// Forgets a join request (rejected); nothing if it is gone.
    async fn delete_join_request(&self, request_id: i64) -> RepoResult<()>;
}

/// Messages, conversations, read cursors and mentions.
#[async_trait]
pub trait MessageRepo: Send + Sync {
    /// The message a sender stored under `client_msg_id`, if any.
    async fn find_message(
        &self,
        from_user_id: i64,
        client_msg_id: &str,
    ) -> RepoResult<Option<StoredMessage>> {
        self.find_messages(&[(from_user_id, client_msg_id.to_owned())])
            .await?
            .pop()
            .ok_or_else(|| RepoError::Internal("no answer for the key".into()))
    }
    /// [`find_message`](MessageRepo::find_message) for many (sender,
    /// client_msg_id) keys at once (a batch's de-duplication): one answer per
    /// key, in order.
    async fn find_messages(&self, keys: &[(i64, String)])
    -> RepoResult<Vec<Option<StoredMessage>>>;
    /// Stores a message at the next seq of its conversation (the seq given is
    /// ignored), raising the durable high-water mark in the same transaction.
    async fn store_message(&self, message: &StoredMessage) -> RepoResult<StoreOutcome> {
        self.store_messages(std::slice::from_ref(message))
            .await?
            .pop()
            .ok_or_else(|| RepoError::Internal("no outcome for the message".into()))
    }
    /// Stores many messages in one transaction when none is a duplicate (a
    /// send path's group commit): new messages of one conversation take its
    /// next seqs in the order given, so a seq exists only once its message
    /// does (no gap, nothing filled in late). One outcome per message, in
    /// order, classified as [`store_message`](MessageRepo::store_message)
    /// does. An error means nothing of the batch may be assumed stored.
    async fn store_messages(&self, messages: &[StoredMessage]) -> RepoResult<Vec<StoreOutcome>>;
    /// A conversation's identity and durable high-water mark.
    async fn get_conversation(&self, conversation_id: &str)
    -> RepoResult<Option<ConversationInfo>>;
    /// A page of history, ascending, and whether more lies beyond it.
    async fn list_messages(
        &self,
        conversation_id: &str,
        page: Page,
        limit: u32,
    ) -> RepoResult<Messages>;
    /// A user's conversations, newest first, with unread counts.
    async fn list_conversations(&self, user_id: i64) -> RepoResult<Vec<ConversationSummary>>;
    /// Changes a user's settings of a conversation they are in (`NotFound`
    /// otherwise); the settings after the change.
    async fn update_settings(&self, patch: &SettingsPatch) -> RepoResult<ConversationSettings>;
    /// A user's settings of a conversation, if they are in it.
    async fn get_settings(
        &self,
        user_id: i64,
        conversation_id: &str,
    ) -> RepoResult<Option<ConversationSettings>>;
    /// Moves the user's delivered cursor of a conversation forward (never
    /// back, never past its end): a device holds everything up to `seq_id`.
    async fn mark_delivered(
        &self,
        user_id: i64,
        conversation_id: &str,
        seq_id: i64,
    ) -> RepoResult<()>;
    /// Moves a read cursor forward (never back); returns the cursor after the call.
    async fn mark_read(&self, user_id: i64, conversation_id: &str, seq_id: i64) -> RepoResult<i64>;
    /// Unread messages that mention the user (by id or `all`), newest first.
    async fn list_mentions(&self, user_id: i64) -> RepoResult<Vec<StoredMessage>>;
    /// Text messages holding every word of `query` (CJK by character
    /// pairs), newest first, at most `limit`, among the conversations the
    /// user is in (or only `conversation_id`), less recalled ones and those
    /// the user deleted for themself.
    async fn search_messages(
        &self,
        user_id: i64,
        query: &str,
        conversation_id: Option<&str>,
        limit: u32,
    ) -> RepoResult<Vec<StoredMessage>>;
    /// How many participants other than `sender_id` have read up to
    /// `seq_id` (their cursors), and the first `limit` of them by id.
    async fn read_receipts(
        &self,
        conversation_id: &str,
        seq_id: i64,
        sender_id: i64,
        limit: u32,
    ) -> RepoResult<(i64, Vec<i64>)>;
    /// One message by id.
    async fn get_message(&self, message_id: i64) -> RepoResult<Option<StoredMessage>>;
    /// `user_id` deletes a message for themself: their history shows it as
    /// a tombstone; everyone else's is unchanged.
    async fn hide_message(&self, user_id: i64, message_id: i64) -> RepoResult<()>;
    /// Which of `message_ids` `user_id` deleted for themself.
    async fn hidden_among(&self, user_id: i64, message_ids: &[i64]) -> RepoResult<Vec<i64>>;
}

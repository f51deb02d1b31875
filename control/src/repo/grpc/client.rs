//! [`RepoClient`]: a [`Repo`] that calls a remote repo service. Errors come
//! back as the [`RepoError`] variants the server mapped them from.

use async_trait::async_trait;
use gochat_proto::repo as pb;
use gochat_proto::repo::repo_client::RepoClient as PbClient;
use tonic::Response;
use tonic::transport::Channel;

use crate::grpc_metrics::Timed;

use super::from_status;
use crate::repo::{
    ConversationInfo, ConversationSummary, Device, FriendRequest, Group, GroupPatch, GroupRepo,
    JoinRequest, Member, MessageRepo, Messages, Page, Repo, RepoError, RepoResult, StoreOutcome,
    StoredMessage, User, UserAuth, UserRepo,
};

/// A [`Repo`] served by a remote repo service.
#[derive(Clone)]
pub struct RepoClient {
    client: PbClient<Timed<Channel>>,
}

impl RepoClient {
    /// Connects lazily to the repo service at `endpoint`: one URL or a
    /// comma-separated list (e.g. `http://127.0.0.1:9002`), each host
    /// resolved to every address it has, calls balanced over them (see
    /// [`super::discovery`]). The first call dials; a lost connection is
    /// re-dialled. Must be called inside a tokio runtime.
    pub fn connect_lazy(endpoint: &str) -> RepoResult<Self> {
        let channel = super::discovery::balanced_channel(endpoint, None)?;
        Ok(Self {
            client: PbClient::new(Timed::client(channel)),
        })
    }

    fn c(&self) -> PbClient<Timed<Channel>> {
        self.client.clone()
    }
}

fn unwrap<T>(result: Result<Response<T>, tonic::Status>) -> RepoResult<T> {
    result.map(Response::into_inner).map_err(from_status)
}

#[async_trait]
impl Repo for RepoClient {
    async fn ping(&self) -> RepoResult<()> {
        unwrap(self.c().ping(pb::Empty {}).await).map(|_| ())
    }
}

#[async_trait]
impl UserRepo for RepoClient {
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        nickname: &str,
    ) -> RepoResult<User> {
        let r = pb::CreateUserRequest {
            username: username.into(),
            password_hash: password_hash.into(),
            nickname: nickname.into(),
        };
        unwrap(self.c().create_user(r).await)
    }

    async fn create_users(&self, users: &[pb::CreateUserRequest]) -> RepoResult<Vec<User>> {
        let r = pb::CreateUsersRequest {
            users: users.to_vec(),
        };
        unwrap(self.c().create_users(r).await).map(|r| r.users)
    }

    async fn get_user_auth(&self, username: &str) -> RepoResult<UserAuth> {
        unwrap(
            self.c()
                .get_user_auth(pb::UsernameRequest {
                    username: username.into(),
                })
                .await,
        )
    }

    async fn get_user(&self, user_id: i64) -> RepoResult<User> {
        unwrap(self.c().get_user(pb::UserIdRequest { user_id }).await)
    }

    async fn get_users(&self, user_ids: &[i64]) -> RepoResult<Vec<User>> {
        unwrap(
            self.c()
                .get_users(pb::UserIdsRequest {
                    user_ids: user_ids.to_vec(),
                })
                .await,
        )
        .map(|r| r.users)
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> RepoResult<Vec<User>> {
        unwrap(
            self.c()
                .search_users(pb::SearchRequest {
                    query: prefix.into(),
                    limit,
                })
                .await,
        )
        .map(|r| r.users)
    }

    async fn list_user_ids(&self) -> RepoResult<Vec<i64>> {
        unwrap(self.c().list_user_ids(pb::Empty {}).await).map(|r| r.user_ids)
    }

    async fn update_user(
        &self,
        user_id: i64,
        nickname: Option<&str>,
        avatar_url: Option<&str>,
    ) -> RepoResult<User> {
        let r = pb::UpdateUserRequest {
            user_id,
            nickname: nickname.map(Into::into),
            avatar_url: avatar_url.map(Into::into),
        };
        unwrap(self.c().update_user(r).await)
    }

    async fn add_friend(&self, user_id: i64, other_id: i64) -> RepoResult<()> {
        unwrap(
            self.c()
                .add_friend(pb::PairRequest { user_id, other_id })
                .await,
        )
        .map(|_| ())
    }

    async fn remove_friend(&self, user_id: i64, other_id: i64) -> RepoResult<()> {
        unwrap(
            self.c()
                .remove_friend(pb::PairRequest { user_id, other_id })
                .await,
        )
        .map(|_| ())
    }

    async fn list_friends(&self, user_id: i64) -> RepoResult<Vec<User>> {
        unwrap(self.c().list_friends(pb::UserIdRequest { user_id }).await).map(|r| r.users)
    }

    async fn list_blocks(&self, user_id: i64) -> RepoResult<Vec<User>> {
        unwrap(self.c().list_blocks(pb::UserIdRequest { user_id }).await).map(|r| r.users)
    }

    async fn are_friends(&self, user_id: i64, other_id: i64) -> RepoResult<bool> {
        unwrap(
            self.c()
                .are_friends(pb::PairRequest { user_id, other_id })
                .await,
        )
        .map(|r| r.value)
    }

    async fn add_block(&self, user_id: i64, other_id: i64) -> RepoResult<()> {
        unwrap(
            self.c()
                .add_block(pb::PairRequest { user_id, other_id })
                .await,
        )
        .map(|_| ())
    }

    async fn remove_block(&self, user_id: i64, other_id: i64) -> RepoResult<()> {
        unwrap(
            self.c()
                .remove_block(pb::PairRequest { user_id, other_id })
                .await,
        )
        .map(|_| ())
    }

    async fn is_blocked(&self, user_id: i64, other_id: i64) -> RepoResult<bool> {
        unwrap(
            self.c()
                .is_blocked(pb::PairRequest { user_id, other_id })
                .await,
        )
        .map(|r| r.value)
    }

    async fn set_friend_policy(&self, user_id: i64, friend_policy: i32) -> RepoResult<User> {
        let r = pb::FriendPolicyRequest {
            user_id,
            friend_policy,
        };
        unwrap(self.c().set_friend_policy(r).await)
    }

    async fn set_last_seen(&self, user_id: i64, last_seen: i64) -> RepoResult<()> {
        let r = pb::LastSeenRequest { user_id, last_seen };
        unwrap(self.c().set_last_seen(r).await).map(|_| ())
    }

    async fn presence_audience(&self, user_id: i64, group_max: i64) -> RepoResult<Vec<i64>> {
        let r = pb::PresenceAudienceRequest { user_id, group_max };
        unwrap(self.c().presence_audience(r).await).map(|r| r.user_ids)
    }

    async fn request_friend(&self, from: i64, to: i64, message: &str) -> RepoResult<FriendRequest> {
        let r = pb::NewFriendRequest {
            from_user_id: from,
            to_user_id: to,
            message: message.to_owned(),
        };
        unwrap(self.c().request_friend(r).await)
    }

    async fn friend_requests(&self, user_id: i64) -> RepoResult<Vec<FriendRequest>> {
        unwrap(
            self.c()
                .friend_requests(pb::UserIdRequest { user_id })
                .await,
        )
        .map(|r| r.requests)
    }

    async fn delete_friend_request(&self, request_id: i64) -> RepoResult<()> {
        let r = pb::RequestIdRequest { request_id };
        unwrap(self.c().delete_friend_request(r).await).map(|_| ())
    }

    async fn save_device(&self, device: &Device) -> RepoResult<()> {
        unwrap(self.c().save_device(device.clone()).await).map(|_| ())
    }

    async fn remove_device(&self, user_id: i64, device_id: &str) -> RepoResult<bool> {
        let key = pb::DeviceKey {
            user_id,
            device_id: device_id.to_owned(),
        };
        unwrap(self.c().remove_device(key).await).map(|r| r.value)
    }

    async fn list_devices(&self, user_id: i64) -> RepoResult<Vec<Device>> {
        unwrap(self.c().list_devices(pb::UserIdRequest { user_id }).await).map(|r| r.devices)
    }

    async fn revoke_token(&self, jti: &str, expires_at: i64) -> RepoResult<()> {
        let token = pb::RevokedToken {
            jti: jti.to_owned(),
            expires_at,
        };
        unwrap(self.c().revoke_token(token).await).map(|_| ())
    }

    async fn revoked_tokens(&self) -> RepoResult<Vec<(String, i64)>> {
        unwrap(self.c().revoked_tokens(pb::Empty {}).await).map(|r| {
            r.tokens
                .into_iter()
                .map(|t| (t.jti, t.expires_at))
                .collect()
        })
    }
}

#[async_trait]
impl GroupRepo for RepoClient {
    async fn create_group(
        &self,
        owner_id: i64,
        name: &str,
        member_ids: &[i64],
    ) -> RepoResult<Group> {
        let r = pb::CreateGroupRequest {
            owner_id,
            name: name.into(),
            member_ids: member_ids.to_vec(),
        };
        unwrap(self.c().create_group(r).await)
    }

    async fn get_group(&self, group_id: i64) -> RepoResult<Group> {
        unwrap(self.c().get_group(pb::GroupIdRequest { group_id }).await)
    }

    async fn update_group(&self, group_id: i64, patch: &GroupPatch) -> RepoResult<Group> {
        let r = pb::UpdateGroupRequest {
            group_id,
            name: patch.name.clone(),
            announcement: patch.announcement.clone(),
            avatar_url: patch.avatar_url.clone(),
            join_policy: patch.join_policy,
            mute_all: patch.mute_all,
            dissolved: patch.dissolved,
        };
        unwrap(self.c().update_group(r).await)
    }

    async fn search_groups(&self, query: &str, limit: u32) -> RepoResult<Vec<Group>> {
        unwrap(
            self.c()
                .search_groups(pb::SearchRequest {
                    query: query.into(),
                    limit,
                })
                .await,
        )
        .map(|r| r.groups)
    }

    async fn list_user_groups(&self, user_id: i64) -> RepoResult<Vec<Group>> {
        unwrap(
            self.c()
                .list_user_groups(pb::UserIdRequest { user_id })
                .await,
        )
        .map(|r| r.groups)
    }

    async fn add_members(&self, group_id: i64, user_ids: &[i64]) -> RepoResult<Vec<i64>> {
        let r = pb::GroupMembersRequest {
            group_id,
            user_ids: user_ids.to_vec(),
        };
        unwrap(self.c().add_members(r).await).map(|r| r.user_ids)
    }

    async fn remove_member(&self, group_id: i64, user_id: i64) -> RepoResult<bool> {
        unwrap(
            self.c()
                .remove_member(pb::GroupMemberRequest { group_id, user_id })
                .await,
        )
        .map(|r| r.value)
    }

    async fn list_members(&self, group_id: i64) -> RepoResult<Vec<Member>> {
        unwrap(self.c().list_members(pb::GroupIdRequest { group_id }).await).map(|r| r.members)
    }

    async fn get_member(&self, group_id: i64, user_id: i64) -> RepoResult<Option<Member>> {
        unwrap(
            self.c()
                .get_member(pb::GroupMemberRequest { group_id, user_id })
                .await,
        )
        .map(|r| r.member)
    }

    async fn update_member(
        &self,
        group_id: i64,
        user_id: i64,
        role: Option<i32>,
        muted_until: Option<i64>,
    ) -> RepoResult<Option<Member>> {
        let r = pb::UpdateMemberRequest {
            group_id,
            user_id,
            role,
            muted_until,
        };
        unwrap(self.c().update_member(r).await).map(|r| r.member)
    }

    async fn transfer_group(&self, group_id: i64, from: i64, to: i64) -> RepoResult<Group> {
        let r = pb::TransferGroupRequest {
            group_id,
            from_user_id: from,
            to_user_id: to,
        };
        unwrap(self.c().transfer_group(r).await)
    }

    async fn request_join(&self, group_id: i64, user_id: i64) -> RepoResult<JoinRequest> {
        let r = pb::GroupMemberRequest { group_id, user_id };
        unwrap(self.c().request_join(r).await)
    }

    async fn join_requests(&self, group_id: i64) -> RepoResult<Vec<JoinRequest>> {
        let r = pb::GroupIdRequest { group_id };
        unwrap(self.c().join_requests(r).await).map(|r| r.requests)
    }

    async fn delete_join_request(&self, request_id: i64) -> RepoResult<()> {
        let r = pb::RequestIdRequest { request_id };
        unwrap(self.c().delete_join_request(r).await).map(|_| ())
    }
}

#[async_trait]
impl MessageRepo for RepoClient {
    async fn find_messages(
        &self,
        keys: &[(i64, String)],
    ) -> RepoResult<Vec<Option<StoredMessage>>> {
        let r = pb::FindMessagesRequest {
            keys: keys
                .iter()
                .map(|(from_user_id, client_msg_id)| pb::FindMessageRequest {
                    from_user_id: *from_user_id,
                    client_msg_id: client_msg_id.clone(),
                })
                .collect(),
        };
        let found = unwrap(self.c().find_messages(r).await)?.messages;
        if found.len() != keys.len() {
            return Err(RepoError::Internal(
                format!("{} answers for {} keys", found.len(), keys.len()).into(),
            ));
        }
        Ok(found.into_iter().map(|r| r.message).collect())
    }

    async fn store_messages(&self, messages: &[StoredMessage]) -> RepoResult<Vec<StoreOutcome>> {
        use pb::store_message_reply::Outcome;
        let r = pb::StoreMessagesRequest {
            messages: messages.to_vec(),
        };
        let reply = unwrap(self.c().store_messages(r).await)?;
        if reply.outcomes.len() != messages.len() {
            return Err(RepoError::Internal(
                format!(
                    "{} outcomes for {} messages",
                    reply.outcomes.len(),
                    messages.len()
                )
                .into(),
            ));
        }
        reply
            .outcomes
            .into_iter()
            .map(|o| match o.outcome {
                Some(Outcome::Stored(m)) => Ok(StoreOutcome::Stored(m)),
                Some(Outcome::Duplicate(m)) => Ok(StoreOutcome::Duplicate(m)),
                None => Err(RepoError::Internal("store reply without outcome".into())),
            })
            .collect()
    }

    async fn get_conversation(
        &self,
        conversation_id: &str,
    ) -> RepoResult<Option<ConversationInfo>> {
        let r = pb::ConversationRequest {
            conversation_id: conversation_id.into(),
        };
        unwrap(self.c().get_conversation(r).await).map(|r| r.conversation)
    }

    async fn list_messages(
        &self,
        conversation_id: &str,
        page: Page,
        limit: u32,
    ) -> RepoResult<Messages> {
        let (after_seq, before_seq) = match page {
            Page::After(n) => (Some(n), None),
            Page::Before(n) => (None, Some(n)),
        };
        let r = pb::ListMessagesRequest {
            conversation_id: conversation_id.into(),
            after_seq,
            before_seq,
            limit,
        };
        unwrap(self.c().list_messages(r).await)
    }

    async fn list_conversations(&self, user_id: i64) -> RepoResult<Vec<ConversationSummary>> {
        unwrap(
            self.c()
                .list_conversations(pb::UserIdRequest { user_id })
                .await,
        )
        .map(|r| r.conversations)
    }

    async fn mark_read(&self, user_id: i64, conversation_id: &str, seq_id: i64) -> RepoResult<i64> {
        let r = pb::MarkReadRequest {
            user_id,
            conversation_id: conversation_id.into(),
            seq_id,
        };
        unwrap(self.c().mark_read(r).await).map(|r| r.read_seq_id)
    }

    async fn update_settings(
        &self,
        patch: &pb::UpdateSettingsRequest,
    ) -> RepoResult<pb::ConversationSettings> {
        unwrap(self.c().update_settings(patch.clone()).await)
    }

    async fn get_settings(
        &self,
        user_id: i64,
        conversation_id: &str,
    ) -> RepoResult<Option<pb::ConversationSettings>> {
        let r = pb::SettingsRequest {
            user_id,
            conversation_id: conversation_id.into(),
        };
        unwrap(self.c().get_settings(r).await).map(|r| r.settings)
    }

    async fn search_messages(
        &self,
        user_id: i64,
        query: &str,
        conversation_id: Option<&str>,
        limit: u32,
    ) -> RepoResult<Vec<StoredMessage>> {
        let r = pb::SearchMessagesRequest {
            user_id,
            query: query.to_owned(),
            conversation_id: conversation_id.map(str::to_owned),
            limit,
        };
        unwrap(self.c().search_messages(r).await).map(|r| r.messages)
    }

    async fn mark_delivered(
        &self,
        user_id: i64,
        conversation_id: &str,
        seq_id: i64,
    ) -> RepoResult<()> {
        let r = pb::MarkReadRequest {
            user_id,
            conversation_id: conversation_id.to_owned(),
            seq_id,
        };
        unwrap(self.c().mark_delivered(r).await).map(|_| ())
    }

    async fn list_mentions(&self, user_id: i64) -> RepoResult<Vec<StoredMessage>> {
        unwrap(self.c().list_mentions(pb::UserIdRequest { user_id }).await).map(|r| r.messages)
    }

    async fn read_receipts(
        &self,
        conversation_id: &str,
        seq_id: i64,
        sender_id: i64,
        limit: u32,
    ) -> RepoResult<(i64, Vec<i64>)> {
        let r = pb::ReadReceiptsRequest {
            conversation_id: conversation_id.into(),
            seq_id,
            sender_id,
            limit,
        };
        unwrap(self.c().read_receipts(r).await).map(|r| (r.read_count, r.read_by))
    }

    async fn get_message(&self, message_id: i64) -> RepoResult<Option<StoredMessage>> {
        unwrap(
            self.c()
                .get_message(pb::MessageIdRequest { message_id })
                .await,
        )
        .map(|r| r.message)
    }

    async fn hide_message(&self, user_id: i64, message_id: i64) -> RepoResult<()> {
        let r = pb::HideMessageRequest {
            user_id,
            message_id,
        };
        unwrap(self.c().hide_message(r).await).map(|_| ())
    }

    async fn hidden_among(&self, user_id: i64, message_ids: &[i64]) -> RepoResult<Vec<i64>> {
        let r = pb::HiddenAmongRequest {
            user_id,
            message_ids: message_ids.to_vec(),
        };
        unwrap(self.c().hidden_among(r).await).map(|r| r.message_ids)
    }
}

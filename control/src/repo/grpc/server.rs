//! [`RepoServer`]: any [`Repo`] as a tonic service.

use std::sync::Arc;

use async_trait::async_trait;
use gochat_proto::repo as pb;
use gochat_proto::repo::repo_server::{Repo as PbRepo, RepoServer as PbServer};
use tonic::{Request, Response, Status};

use super::to_status;
use crate::repo::{
    Group, GroupPatch, Messages, Page, Repo, RepoResult, StoreOutcome, User, UserAuth,
};

/// Serves a repo over gRPC.
pub struct RepoServer {
    repo: Arc<dyn Repo>,
}

impl RepoServer {
    /// The tonic service for `repo`.
    pub fn service(repo: Arc<dyn Repo>) -> PbServer<Self> {
        PbServer::new(Self { repo })
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(result: RepoResult<T>) -> Reply<T> {
    result.map(Response::new).map_err(to_status)
}

#[async_trait]
impl PbRepo for RepoServer {
    async fn ping(&self, _: Request<pb::Empty>) -> Reply<pb::Empty> {
        reply(self.repo.ping().await.map(|()| pb::Empty {}))
    }
    async fn create_user(&self, r: Request<pb::CreateUserRequest>) -> Reply<User> {
        let r = r.into_inner();
        reply(
            self.repo
                .create_user(&r.username, &r.password_hash, &r.nickname)
                .await,
        )
    }
    async fn create_users(&self, r: Request<pb::CreateUsersRequest>) -> Reply<pb::Users> {
        reply(
            self.repo
                .create_users(&r.into_inner().users)
                .await
                .map(|users| pb::Users { users }),
        )
    }
    async fn get_user_auth(&self, r: Request<pb::UsernameRequest>) -> Reply<UserAuth> {
        reply(self.repo.get_user_auth(&r.into_inner().username).await)
    }
    async fn get_user(&self, r: Request<pb::UserIdRequest>) -> Reply<User> {
        reply(self.repo.get_user(r.into_inner().user_id).await)
    }
    async fn get_users(&self, r: Request<pb::UserIdsRequest>) -> Reply<pb::Users> {
        reply(
            self.repo
                .get_users(&r.into_inner().user_ids)
                .await
                .map(|users| pb::Users { users }),
        )
    }
    async fn search_users(&self, r: Request<pb::SearchRequest>) -> Reply<pb::Users> {
        let r = r.into_inner();
        reply(
            self.repo
                .search_users(&r.query, r.limit)
                .await
                .map(|users| pb::Users { users }),
        )
    }
    async fn list_user_ids(&self, _: Request<pb::Empty>) -> Reply<pb::UserIdsReply> {
        reply(
            self.repo
                .list_user_ids()
                .await
                .map(|user_ids| pb::UserIdsReply { user_ids }),
        )
    }
    async fn update_user(&self, r: Request<pb::UpdateUserRequest>) -> Reply<User> {
        let r = r.into_inner();
        reply(
            self.repo
                .update_user(r.user_id, r.nickname.as_deref(), r.avatar_url.as_deref())
                .await,
        )
    }
    async fn add_friend(&self, r: Request<pb::PairRequest>) -> Reply<pb::Empty> {
        let r = r.into_inner();
        reply(
            self.repo
                .add_friend(r.user_id, r.other_id)
                .await
                .map(|()| pb::Empty {}),
        )
    }
    async fn remove_friend(&self, r: Request<pb::PairRequest>) -> Reply<pb::Empty> {
        let r = r.into_inner();
        reply(
            self.repo
                .remove_friend(r.user_id, r.other_id)
                .await
                .map(|()| pb::Empty {}),
        )
    }
    async fn list_friends(&self, r: Request<pb::UserIdRequest>) -> Reply<pb::Users> {
        reply(
            self.repo
                .list_friends(r.into_inner().user_id)
                .await
                .map(|users| pb::Users { users }),
        )
    }
    async fn set_friend_policy(&self, r: Request<pb::FriendPolicyRequest>) -> Reply<User> {
        let r = r.into_inner();
        reply(
            self.repo
                .set_friend_policy(r.user_id, r.friend_policy)
                .await,
        )
    }
    async fn set_last_seen(&self, r: Request<pb::LastSeenRequest>) -> Reply<pb::Empty> {
        let r = r.into_inner();
        reply(
            self.repo
                .set_last_seen(r.user_id, r.last_seen)
                .await
                .map(|()| pb::Empty {}),
        )
    }
    async fn presence_audience(
        &self,
        r: Request<pb::PresenceAudienceRequest>,
    ) -> Reply<pb::UserIdsReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .presence_audience(r.user_id, r.group_max)
                .await
                .map(|user_ids| pb::UserIdsReply { user_ids }),
        )
    }
    async fn request_friend(&self, r: Request<pb::NewFriendRequest>) -> Reply<pb::FriendRequest> {
        let r = r.into_inner();
        reply(
            self.repo
                .request_friend(r.from_user_id, r.to_user_id, &r.message)
                .await,
        )
    }
    async fn friend_requests(&self, r: Request<pb::UserIdRequest>) -> Reply<pb::FriendRequestList> {
        reply(
            self.repo
                .friend_requests(r.into_inner().user_id)
                .await
                .map(|requests| pb::FriendRequestList { requests }),
        )
    }
    async fn delete_friend_request(&self, r: Request<pb::RequestIdRequest>) -> Reply<pb::Empty> {
        reply(
            self.repo
                .delete_friend_request(r.into_inner().request_id)
                .await
                .map(|()| pb::Empty {}),
        )
    }
    async fn save_device(&self, r: Request<pb::Device>) -> Reply<pb::Empty> {
        reply(
            self.repo
                .save_device(&r.into_inner())
                .await
                .map(|()| pb::Empty {}),
        )
    }
    async fn remove_device(&self, r: Request<pb::DeviceKey>) -> Reply<pb::BoolReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .remove_device(r.user_id, &r.device_id)
                .await
                .map(|value| pb::BoolReply { value }),
        )
    }
    async fn list_devices(&self, r: Request<pb::UserIdRequest>) -> Reply<pb::DeviceList> {
        reply(
            self.repo
                .list_devices(r.into_inner().user_id)
                .await
                .map(|devices| pb::DeviceList { devices }),
        )
    }
    async fn list_blocks(&self, r: Request<pb::UserIdRequest>) -> Reply<pb::Users> {
        reply(
            self.repo
                .list_blocks(r.into_inner().user_id)
                .await
                .map(|users| pb::Users { users }),
        )
    }
    async fn are_friends(&self, r: Request<pb::PairRequest>) -> Reply<pb::BoolReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .are_friends(r.user_id, r.other_id)
                .await
                .map(|value| pb::BoolReply { value }),
        )
    }
    async fn revoke_token(&self, r: Request<pb::RevokedToken>) -> Reply<pb::Empty> {
        let r = r.into_inner();
        reply(
            self.repo
                .revoke_token(&r.jti, r.expires_at)
                .await
                .map(|()| pb::Empty {}),
        )
    }
    async fn revoked_tokens(&self, _: Request<pb::Empty>) -> Reply<pb::RevokedTokenList> {
        reply(self.repo.revoked_tokens().await.map(|tokens| {
            pb::RevokedTokenList {
                tokens: tokens
                    .into_iter()
                    .map(|(jti, expires_at)| pb::RevokedToken { jti, expires_at })
                    .collect(),
            }
        }))
    }
    async fn add_block(&self, r: Request<pb::PairRequest>) -> Reply<pb::Empty> {
        let r = r.into_inner();
        reply(
            self.repo
                .add_block(r.user_id, r.other_id)
                .await
                .map(|()| pb::Empty {}),
        )
    }
    async fn remove_block(&self, r: Request<pb::PairRequest>) -> Reply<pb::Empty> {
        let r = r.into_inner();
        reply(
            self.repo
                .remove_block(r.user_id, r.other_id)
                .await
                .map(|()| pb::Empty {}),
        )
    }
    async fn is_blocked(&self, r: Request<pb::PairRequest>) -> Reply<pb::BoolReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .is_blocked(r.user_id, r.other_id)
                .await
                .map(|value| pb::BoolReply { value }),
        )
    }
    async fn create_group(&self, r: Request<pb::CreateGroupRequest>) -> Reply<Group> {
        let r = r.into_inner();
        reply(
            self.repo
                .create_group(r.owner_id, &r.name, &r.member_ids)
                .await,
        )
    }
    async fn get_group(&self, r: Request<pb::GroupIdRequest>) -> Reply<Group> {
        reply(self.repo.get_group(r.into_inner().group_id).await)
    }
    async fn update_group(&self, r: Request<pb::UpdateGroupRequest>) -> Reply<Group> {
        let r = r.into_inner();
        let patch = GroupPatch {
            name: r.name,
            announcement: r.announcement,
            avatar_url: r.avatar_url,
            join_policy: r.join_policy,
            mute_all: r.mute_all,
            dissolved: r.dissolved,
        };
        reply(self.repo.update_group(r.group_id, &patch).await)
    }
    async fn search_groups(&self, r: Request<pb::SearchRequest>) -> Reply<pb::Groups> {
        let r = r.into_inner();
        reply(
            self.repo
                .search_groups(&r.query, r.limit)
                .await
                .map(|groups| pb::Groups { groups }),
        )
    }
    async fn list_user_groups(&self, r: Request<pb::UserIdRequest>) -> Reply<pb::Groups> {
        reply(
            self.repo
                .list_user_groups(r.into_inner().user_id)
                .await
                .map(|groups| pb::Groups { groups }),
        )
    }
    async fn add_members(&self, r: Request<pb::GroupMembersRequest>) -> Reply<pb::UserIdsReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .add_members(r.group_id, &r.user_ids)
                .await
                .map(|user_ids| pb::UserIdsReply { user_ids }),
        )
    }
    async fn remove_member(&self, r: Request<pb::GroupMemberRequest>) -> Reply<pb::BoolReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .remove_member(r.group_id, r.user_id)
                .await
                .map(|value| pb::BoolReply { value }),
        )
    }
    async fn list_members(&self, r: Request<pb::GroupIdRequest>) -> Reply<pb::Members> {
        reply(
            self.repo
                .list_members(r.into_inner().group_id)
                .await
                .map(|members| pb::Members { members }),
        )
    }
    async fn get_member(&self, r: Request<pb::GroupMemberRequest>) -> Reply<pb::MemberReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .get_member(r.group_id, r.user_id)
                .await
                .map(|member| pb::MemberReply { member }),
        )
    }
    async fn update_member(&self, r: Request<pb::UpdateMemberRequest>) -> Reply<pb::MemberReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .update_member(r.group_id, r.user_id, r.role, r.muted_until)
                .await
                .map(|member| pb::MemberReply { member }),
        )
    }
    async fn transfer_group(&self, r: Request<pb::TransferGroupRequest>) -> Reply<Group> {
        let r = r.into_inner();
        reply(
            self.repo
                .transfer_group(r.group_id, r.from_user_id, r.to_user_id)
                .await,
        )
    }
    async fn request_join(&self, r: Request<pb::GroupMemberRequest>) -> Reply<pb::JoinRequest> {
        let r = r.into_inner();
        reply(self.repo.request_join(r.group_id, r.user_id).await)
    }
    async fn join_requests(&self, r: Request<pb::GroupIdRequest>) -> Reply<pb::JoinRequestList> {
        reply(
            self.repo
                .join_requests(r.into_inner().group_id)
                .await
                .map(|requests| pb::JoinRequestList { requests }),
        )
    }
    async fn delete_join_request(&self, r: Request<pb::RequestIdRequest>) -> Reply<pb::Empty> {
        reply(
            self.repo
                .delete_join_request(r.into_inner().request_id)
                .await
                .map(|()| pb::Empty {}),
        )
    }
    async fn find_messages(
        &self,
        r: Request<pb::FindMessagesRequest>,
    ) -> Reply<pb::FindMessagesReply> {
        let keys: Vec<(i64, String)> = r
            .into_inner()
            .keys
            .into_iter()
            .map(|k| (k.from_user_id, k.client_msg_id))
            .collect();
        reply(self.repo.find_messages(&keys).await.map(|found| {
            pb::FindMessagesReply {
                messages: found
                    .into_iter()
                    .map(|message| pb::MessageReply { message })
                    .collect(),
            }
        }))
    }
    async fn store_messages(
        &self,
        r: Request<pb::StoreMessagesRequest>,
    ) -> Reply<pb::StoreMessagesReply> {
        use pb::store_message_reply::Outcome;
        let messages = r.into_inner().messages;
        let outcomes = self.repo.store_messages(&messages).await.map(|outcomes| {
            outcomes
                .into_iter()
                .map(|outcome| pb::StoreMessageReply {
                    outcome: Some(match outcome {
                        StoreOutcome::Stored(m) => Outcome::Stored(m),
                        StoreOutcome::Duplicate(m) => Outcome::Duplicate(m),
                    }),
                })
                .collect()
        });
        reply(outcomes.map(|outcomes| pb::StoreMessagesReply { outcomes }))
    }
    async fn get_conversation(
        &self,
        r: Request<pb::ConversationRequest>,
    ) -> Reply<pb::ConversationReply> {
        reply(
            self.repo
                .get_conversation(&r.into_inner().conversation_id)
                .await
                .map(|conversation| pb::ConversationReply { conversation }),
        )
    }
    async fn list_messages(&self, r: Request<pb::ListMessagesRequest>) -> Reply<Messages> {
        let r = r.into_inner();
        let page = match (r.after_seq, r.before_seq) {
            (Some(n), None) => Page::After(n),
            (None, Some(n)) => Page::Before(n),
            _ => {
                return Err(Status::invalid_argument(
                    "exactly one of after_seq and before_seq",
                ));
            }
        };
        reply(
            self.repo
                .list_messages(&r.conversation_id, page, r.limit)
                .await,
        )
    }
    async fn list_conversations(&self, r: Request<pb::UserIdRequest>) -> Reply<pb::Conversations> {
        reply(
            self.repo
                .list_conversations(r.into_inner().user_id)
                .await
                .map(|conversations| pb::Conversations { conversations }),
        )
    }
    async fn mark_read(&self, r: Request<pb::MarkReadRequest>) -> Reply<pb::ReadCursorReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .mark_read(r.user_id, &r.conversation_id, r.seq_id)
                .await
                .map(|read_seq_id| pb::ReadCursorReply { read_seq_id }),
        )
    }
    async fn update_settings(
        &self,
        r: Request<pb::UpdateSettingsRequest>,
    ) -> Reply<pb::ConversationSettings> {
        reply(self.repo.update_settings(&r.into_inner()).await)
    }
    async fn get_settings(&self, r: Request<pb::SettingsRequest>) -> Reply<pb::SettingsReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .get_settings(r.user_id, &r.conversation_id)
                .await
                .map(|settings| pb::SettingsReply { settings }),
        )
    }
    async fn search_messages(&self, r: Request<pb::SearchMessagesRequest>) -> Reply<Messages> {
        let r = r.into_inner();
        reply(
            self.repo
                .search_messages(r.user_id, &r.query, r.conversation_id.as_deref(), r.limit)
                .await
                .map(|messages| Messages {
                    messages,
                    has_more: false,
                }),
        )
    }
    async fn mark_delivered(&self, r: Request<pb::MarkReadRequest>) -> Reply<pb::Empty> {
        let r = r.into_inner();
        reply(
            self.repo
                .mark_delivered(r.user_id, &r.conversation_id, r.seq_id)
                .await
                .map(|()| pb::Empty {}),
        )
    }
    async fn list_mentions(&self, r: Request<pb::UserIdRequest>) -> Reply<Messages> {
        reply(
            self.repo
                .list_mentions(r.into_inner().user_id)
                .await
                .map(|messages| Messages {
                    messages,
                    has_more: false,
                }),
        )
    }
    async fn read_receipts(
        &self,
        r: Request<pb::ReadReceiptsRequest>,
    ) -> Reply<pb::ReadReceiptsReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .read_receipts(&r.conversation_id, r.seq_id, r.sender_id, r.limit)
                .await
                .map(|(read_count, read_by)| pb::ReadReceiptsReply {
                    read_count,
                    read_by,
                }),
        )
    }
    async fn get_message(&self, r: Request<pb::MessageIdRequest>) -> Reply<pb::MessageReply> {
        reply(
            self.repo
                .get_message(r.into_inner().message_id)
                .await
                .map(|message| pb::MessageReply { message }),
        )
    }
    async fn hide_message(&self, r: Request<pb::HideMessageRequest>) -> Reply<pb::Empty> {
        let r = r.into_inner();
        reply(
            self.repo
                .hide_message(r.user_id, r.message_id)
                .await
                .map(|()| pb::Empty {}),
        )
    }
    async fn hidden_among(&self, r: Request<pb::HiddenAmongRequest>) -> Reply<pb::MessageIdsReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .hidden_among(r.user_id, &r.message_ids)
                .await
                .map(|message_ids| pb::MessageIdsReply { message_ids }),
        )
    }
}

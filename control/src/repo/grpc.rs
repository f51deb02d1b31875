//! The repo over gRPC: [`RepoServer`] exposes any [`Repo`] (tonic service), and
//! [`RepoClient`] is a [`Repo`] that calls a remote repo service. Errors cross the
//! wire as gRPC status codes and come back as the same [`RepoError`] variants,
//! so callers cannot tell a local repo from a remote one.

use std::sync::Arc;

use async_trait::async_trait;
use gochat_proto::repo as pb;
use gochat_proto::repo::repo_client::RepoClient as PbClient;
use gochat_proto::repo::repo_server::{Repo as PbRepo, RepoServer as PbServer};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

use super::{
    ConversationInfo, ConversationSummary, Group, GroupPatch, Member, Messages, Page, Repo,
    RepoError, RepoResult, StoreOutcome, StoredMessage, User, UserAuth,
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

/// The one place repo errors become gRPC statuses.
pub fn to_status(err: RepoError) -> Status {
    match err {
        RepoError::NotFound(m) => Status::not_found(m),
        RepoError::Conflict(m) => Status::already_exists(m),
        RepoError::Invalid(m) => Status::invalid_argument(m),
        RepoError::Unavailable(cause) => Status::unavailable(cause.to_string()),
        RepoError::Internal(cause) => Status::internal(cause.to_string()),
    }
}

/// And back.
pub fn from_status(status: Status) -> RepoError {
    let message = status.message().to_owned();
    match status.code() {
        Code::NotFound => RepoError::NotFound(message),
        Code::AlreadyExists => RepoError::Conflict(message),
        Code::InvalidArgument => RepoError::Invalid(message),
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted => {
            RepoError::Unavailable(Box::new(status))
        }
        _ => RepoError::Internal(Box::new(status)),
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(result: RepoResult<T>) -> Reply<T> {
    result.map(Response::new).map_err(to_status)
}

fn missing(what: &str) -> Status {
    Status::invalid_argument(format!("missing {what}"))
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
    async fn are_friends(&self, r: Request<pb::PairRequest>) -> Reply<pb::BoolReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .are_friends(r.user_id, r.other_id)
                .await
                .map(|value| pb::BoolReply { value }),
        )
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
    async fn find_message(&self, r: Request<pb::FindMessageRequest>) -> Reply<pb::MessageReply> {
        let r = r.into_inner();
        reply(
            self.repo
                .find_message(r.from_user_id, &r.client_msg_id)
                .await
                .map(|message| pb::MessageReply { message }),
        )
    }
    async fn store_message(
        &self,
        r: Request<pb::StoreMessageRequest>,
    ) -> Reply<pb::StoreMessageReply> {
        let message = r.into_inner().message.ok_or_else(|| missing("message"))?;
        use pb::store_message_reply::Outcome;
        reply(
            self.repo
                .store_message(&message)
                .await
                .map(|outcome| pb::StoreMessageReply {
                    outcome: Some(match outcome {
                        StoreOutcome::Stored(m) => Outcome::Stored(m),
                        StoreOutcome::Duplicate(m) => Outcome::Duplicate(m),
                        StoreOutcome::SeqTaken { high_water } => {
                            Outcome::SeqTakenHighWater(high_water)
                        }
                    }),
                }),
        )
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
}

/// A [`Repo`] served by a remote repo service.
#[derive(Clone)]
pub struct RepoClient {
    client: PbClient<Channel>,
}

impl RepoClient {
    /// Connects lazily to `endpoint` (e.g. `http://127.0.0.1:9002`): the first call
    /// dials, and a lost connection is re-dialled on the next call.
    pub fn connect_lazy(endpoint: &str) -> RepoResult<Self> {
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| RepoError::Invalid(format!("repo endpoint {endpoint}: {e}")))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .connect_lazy();
        Ok(Self {
            client: PbClient::new(channel),
        })
    }

    fn c(&self) -> PbClient<Channel> {
        self.client.clone()
    }
}

fn unwrap<T>(result: Result<Response<T>, Status>) -> RepoResult<T> {
    result.map(Response::into_inner).map_err(from_status)
}

#[async_trait]
impl Repo for RepoClient {
    async fn ping(&self) -> RepoResult<()> {
        unwrap(self.c().ping(pb::Empty {}).await).map(|_| ())
    }
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
    async fn find_message(
        &self,
        from_user_id: i64,
        client_msg_id: &str,
    ) -> RepoResult<Option<StoredMessage>> {
        let r = pb::FindMessageRequest {
            from_user_id,
            client_msg_id: client_msg_id.into(),
        };
        unwrap(self.c().find_message(r).await).map(|r| r.message)
    }
    async fn store_message(&self, message: &StoredMessage) -> RepoResult<StoreOutcome> {
        use pb::store_message_reply::Outcome;
        let r = pb::StoreMessageRequest {
            message: Some(message.clone()),
        };
        match unwrap(self.c().store_message(r).await)?.outcome {
            Some(Outcome::Stored(m)) => Ok(StoreOutcome::Stored(m)),
            Some(Outcome::Duplicate(m)) => Ok(StoreOutcome::Duplicate(m)),
            Some(Outcome::SeqTakenHighWater(high_water)) => {
                Ok(StoreOutcome::SeqTaken { high_water })
            }
            None => Err(RepoError::Internal(
                "store_message reply without outcome".into(),
            )),
        }
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
    async fn list_mentions(&self, user_id: i64) -> RepoResult<Vec<StoredMessage>> {
        unwrap(self.c().list_mentions(pb::UserIdRequest { user_id }).await).map(|r| r.messages)
    }
}

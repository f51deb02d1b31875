//! Friends with consent and blocks (PROTOCOL v1.1 "Friends with consent"):
//! a request waits for the target's yes unless their `friend_policy` is
//! `open`, a pending request the other way is a yes already, and a block in
//! either direction refuses everything between the two.

use bytes::Bytes;
use gochat_proto::frames::ServerFrame;
use gochat_proto::ids::Id;

use super::delivery::deliver;
use super::facts::Fact;
use super::{Logic, LogicError, LogicResult};
use crate::repo::{FriendRequest, User};

/// Who may befriend a user without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FriendPolicy {
    /// Requests wait for the user's accept (the default).
    Approve,
    /// Anyone not blocked becomes a friend at once.
    Open,
    /// Nobody may ask.
    Closed,
}

impl FriendPolicy {
    /// The stored code (`users.friend_policy`).
    pub fn code(self) -> i32 {
        match self {
            FriendPolicy::Approve => 0,
            FriendPolicy::Open => 1,
            FriendPolicy::Closed => 2,
        }
    }

    /// The policy a stored code means; unknown codes ask first.
    pub fn from_code(code: i32) -> Self {
        match code {
            1 => FriendPolicy::Open,
            2 => FriendPolicy::Closed,
            _ => FriendPolicy::Approve,
        }
    }

    /// The protocol's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            FriendPolicy::Approve => "approve",
            FriendPolicy::Open => "open",
            FriendPolicy::Closed => "closed",
        }
    }

    /// Parses the protocol's name.
    pub fn parse(name: &str) -> LogicResult<Self> {
        match name {
            "approve" => Ok(FriendPolicy::Approve),
            "open" => Ok(FriendPolicy::Open),
            "closed" => Ok(FriendPolicy::Closed),
            _ => Err(LogicError::BadRequest(
                "friend_policy: \"approve\", \"open\" or \"closed\"".into(),
            )),
        }
    }
}

/// What asking to be someone's friend did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Befriended {
    /// Friends now (or already).
    Friends,
    /// A request waits for the target's answer.
    Requested(Id),
}

/// The longest note a request may carry, in characters.
const REQUEST_MESSAGE_MAX: usize = 200;

impl Logic {
    /// Asks `other` to be `me`'s friend, with an optional note.
    pub async fn add_friend(&self, me: Id, other: Id, message: &str) -> LogicResult<Befriended> {
        if message.chars().count() > REQUEST_MESSAGE_MAX || message.chars().any(char::is_control) {
            return Err(LogicError::BadRequest(
                "message: at most 200 characters, no control characters".into(),
            ));
        }
        let target = self.other_user(me, other).await?;
        if self.blocked_either_way(me, other).await? {
            return Err(refused());
        }
        if self.repo.are_friends(me.0, other.0).await? {
            return Ok(Befriended::Friends);
        }
        let theirs = self.repo.friend_requests(me.0).await?;
        if theirs
            .iter()
            .any(|r| r.from_user_id == other.0 && r.to_user_id == me.0)
        {
            self.befriend(me, other).await?;
            return Ok(Befriended::Friends);
        }
        match FriendPolicy::from_code(target.friend_policy) {
            FriendPolicy::Open => {
                self.befriend(me, other).await?;
                Ok(Befriended::Friends)
            }
            FriendPolicy::Closed => Err(refused()),
            FriendPolicy::Approve => {
                let request = self.repo.request_friend(me.0, other.0, message).await?;
                let frame = ServerFrame::FriendRequest {
                    request_id: Id(request.request_id),
                    from_user_id: me,
                    message: request.message,
                };
                self.tell(&[other], &frame).await;
                Ok(Befriended::Requested(Id(request.request_id)))
            }
        }
    }

    /// The requests the caller sent and received, oldest first:
    /// (incoming, outgoing).
    pub async fn friend_requests(
        &self,
        me: Id,
    ) -> LogicResult<(Vec<FriendRequest>, Vec<FriendRequest>)> {
        Ok(self
            .repo
            .friend_requests(me.0)
            .await?
            .into_iter()
            .partition(|r| r.to_user_id == me.0))
    }

    /// The target of a request says yes.
    pub async fn accept_friend_request(&self, me: Id, request_id: Id) -> LogicResult<()> {
        let request = self.incoming_request(me, request_id).await?;
        let from = Id(request.from_user_id);
        if self.blocked_either_way(me, from).await? {
            self.repo.delete_friend_request(request_id.0).await?;
            return Err(refused());
        }
        self.befriend(me, from).await
    }

    /// The target of a request says no; the sender is not told.
    pub async fn reject_friend_request(&self, me: Id, request_id: Id) -> LogicResult<()> {
        self.incoming_request(me, request_id).await?;
        Ok(self.repo.delete_friend_request(request_id.0).await?)
    }

    /// Sets who may befriend the caller.
    pub async fn set_friend_policy(&self, me: Id, policy: FriendPolicy) -> LogicResult<User> {
        Ok(self.repo.set_friend_policy(me.0, policy.code()).await?)
    }

    /// The caller's friends.
    pub async fn friends(&self, me: Id) -> LogicResult<Vec<User>> {
        Ok(self.repo.list_friends(me.0).await?)
    }

    /// Ends a friendship (both ways).
    pub async fn remove_friend(&self, me: Id, other: Id) -> LogicResult<()> {
        self.repo.remove_friend(me.0, other.0).await?;
        self.facts.forget(&[Fact::friends(me.0, other.0)]);
        Ok(())
    }

    /// `me` stops accepting messages, requests, invitations and presence
    /// from `other`; requests pending between the two are dropped.
    pub async fn block(&self, me: Id, other: Id) -> LogicResult<()> {
        self.other_user(me, other).await?;
        self.repo.add_block(me.0, other.0).await?;
        self.facts.forget(&[Fact::Blocked(me.0, other.0)]);
        Ok(())
    }

    /// The users the caller has blocked.
    pub async fn blocks(&self, me: Id) -> LogicResult<Vec<User>> {
        Ok(self.repo.list_blocks(me.0).await?)
    }

    /// Lifts a block.
    pub async fn unblock(&self, me: Id, other: Id) -> LogicResult<()> {
        self.repo.remove_block(me.0, other.0).await?;
        self.facts.forget(&[Fact::Blocked(me.0, other.0)]);
        Ok(())
    }

    /// Has either of the two blocked the other?
    pub(super) async fn blocked_either_way(&self, a: Id, b: Id) -> LogicResult<bool> {
        for (who, whom) in [(a, b), (b, a)] {
            let blocked = self
                .facts
                .get(
                    Fact::Blocked(who.0, whom.0),
                    self.repo.is_blocked(who.0, whom.0),
                )
                .await?;
            if blocked {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn other_user(&self, me: Id, other: Id) -> LogicResult<User> {
        if me == other {
            return Err(LogicError::BadRequest("that is you".into()));
        }
        Ok(self.repo.get_user(other.0).await?)
    }

    /// A request to the caller by id; someone else's is as unknown as a
    /// missing one (404), so ids cannot be probed.
    async fn incoming_request(&self, me: Id, request_id: Id) -> LogicResult<FriendRequest> {
        self.repo
            .friend_requests(me.0)
            .await?
            .into_iter()
            .find(|r| r.request_id == request_id.0 && r.to_user_id == me.0)
            .ok_or_else(|| LogicError::NotFound(format!("friend request {request_id} not found")))
    }

    /// Makes the two friends and tells both.
    async fn befriend(&self, a: Id, b: Id) -> LogicResult<()> {
        self.repo.add_friend(a.0, b.0).await?;
        self.facts.forget(&[Fact::friends(a.0, b.0)]);
        self.tell(&[a], &ServerFrame::FriendAdded { user_id: b })
            .await;
        self.tell(&[b], &ServerFrame::FriendAdded { user_id: a })
            .await;
        Ok(())
    }

    /// A notice to the users' live connections. The change it tells of is
    /// stored already, and a client that missed the frame sees it on its
    /// next `GET /friends` or `GET /friend-requests`, so a failed delivery
    /// is logged, not returned.
    async fn tell(&self, users: &[Id], frame: &ServerFrame) {
        let frame = Bytes::from(frame.to_json());
        if let Err(e) = deliver(self.state.as_ref(), self.bus.as_ref(), users, None, frame).await {
            tracing::warn!(error = %e, "friend notice not delivered");
        }
    }
}

fn refused() -> LogicError {
    LogicError::Forbidden("this user does not accept friend requests from you".into())
}

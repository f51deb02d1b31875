//! Group administration (PROTOCOL v1.1 "Group administration"): roles, the
//! owner's hand-over, dissolution, mutes, and requests to join. Powers act on
//! lower roles only; every change is posted into the group as a
//! `system_group` message whose `metadata.event` names it.

use gochat_proto::ids::{Id, now_millis};
use serde_json::json;

use super::facts::Fact;
use super::groups::MemberRole;
use super::{Logic, LogicError, LogicResult};
use crate::repo::{Group, GroupPatch, JoinRequest, Member, role};

/// Who may join a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinPolicy {
    /// A join waits for an owner's or admin's accept (the default).
    Approval,
    /// Anyone may join.
    Open,
    /// Only invitations bring people in.
    InviteOnly,
}

impl JoinPolicy {
    /// The stored code (`groups.join_policy`).
    pub fn code(self) -> i32 {
        match self {
            JoinPolicy::Approval => 0,
            JoinPolicy::Open => 1,
            JoinPolicy::InviteOnly => 2,
        }
    }

    /// The policy a stored code means; unknown codes ask for approval.
    pub fn from_code(code: i32) -> Self {
        match code {
            1 => JoinPolicy::Open,
            2 => JoinPolicy::InviteOnly,
            _ => JoinPolicy::Approval,
        }
    }

    /// The protocol's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            JoinPolicy::Approval => "approval",
            JoinPolicy::Open => "open",
            JoinPolicy::InviteOnly => "invite_only",
        }
    }

    /// Parses the protocol's name.
    pub fn parse(name: &str) -> LogicResult<Self> {
        match name {
            "approval" => Ok(JoinPolicy::Approval),
            "open" => Ok(JoinPolicy::Open),
            "invite_only" => Ok(JoinPolicy::InviteOnly),
            _ => Err(LogicError::BadRequest(
                "join_policy: \"open\", \"approval\" or \"invite_only\"".into(),
            )),
        }
    }
}

/// What asking to join did.
#[derive(Debug)]
pub enum Joined {
    /// A member now (or already): the group after joining.
    Member(Group),
    /// A request waits for an owner or admin.
    Requested(Id),
}

fn forbidden<T>(message: &str) -> LogicResult<T> {
    Err(LogicError::Forbidden(message.to_owned()))
}

impl Logic {
    /// The owner makes a member an admin or an admin a member.
    pub async fn set_role(
        &self,
        me: Id,
        group: Id,
        target: Id,
        new_role: MemberRole,
    ) -> LogicResult<Member> {
        self.require_owner(me, group).await?;
        if new_role == MemberRole::Owner {
            return Err(LogicError::BadRequest(
                "role: \"admin\" or \"member\" (hand the group over with /transfer)".into(),
            ));
        }
        match self.member_role(group, target).await? {
            None => return Err(not_a_member(target)),
            Some(MemberRole::Owner) => return forbidden("the owner's role cannot change"),
            Some(_) => {}
        }
        let code = match new_role {
            MemberRole::Admin => role::ADMIN,
            _ => role::MEMBER,
        };
        let member = self
            .repo
            .update_member(group.0, target.0, Some(code), None)
            .await?
            .ok_or_else(|| not_a_member(target))?;
        self.facts.forget(&[Fact::MayPost(group.0, target.0)]);
        let (operator, name) = (self.display_name(me).await, self.display_name(target).await);
        self.announce(
            group,
            format!("{operator} made {name} {}", article(new_role)),
            json!({"event": "role_changed", "group_id": group, "user_id": target,
                   "role": new_role.as_str(), "operator_id": me}),
        )
        .await;
        Ok(member)
    }

    /// The owner hands the group to another member and stays as an admin.
    pub async fn transfer_group(&self, me: Id, group: Id, to: Id) -> LogicResult<Group> {
        self.require_owner(me, group).await?;
        if to == me {
            return Err(LogicError::BadRequest("the group is yours already".into()));
        }
        if self.member_role(group, to).await?.is_none() {
            return Err(not_a_member(to));
        }
        let after = self.repo.transfer_group(group.0, me.0, to.0).await?;
        self.facts
            .forget(&[Fact::MayPost(group.0, me.0), Fact::MayPost(group.0, to.0)]);
        let (operator, name) = (self.display_name(me).await, self.display_name(to).await);
        self.announce(
            group,
            format!("{operator} made {name} the owner"),
            json!({"event": "owner_transferred", "group_id": group, "user_id": to,
                   "operator_id": me}),
        )
        .await;
        Ok(after)
    }

    /// The owner dissolves the group: a last system message, then no more
    /// sends; the history stays readable to its members.
    pub async fn dissolve_group(&self, me: Id, group: Id) -> LogicResult<()> {
        self.require_owner(me, group).await?;
        let who = self.display_name(me).await;
        // Posted first so that it is the conversation's last entry.
        self.announce(
            group,
            format!("{who} dissolved the group"),
            json!({"event": "group_dissolved", "group_id": group, "operator_id": me}),
        )
        .await;
        let patch = GroupPatch {
            dissolved: Some(true),
            ..GroupPatch::default()
        };
        self.repo.update_group(group.0, &patch).await?;
        self.facts.forget_group(group.0);
        Ok(())
    }

    /// An owner or admin mutes a member of a lower role until `until` (ms),
    /// or lifts the mute (`None`).
    pub async fn mute_member(
        &self,
        me: Id,
        group: Id,
        target: Id,
        until: Option<i64>,
    ) -> LogicResult<Member> {
        let mine = self.role_in_live_group(me, group).await?;
        let current = self
            .repo
            .get_member(group.0, target.0)
            .await?
            .ok_or_else(|| not_a_member(target))?;
        if mine < MemberRole::Admin || mine <= MemberRole::of(current.role) {
            return forbidden("only the owner or an admin may mute, and only lower roles");
        }
        if until.is_some_and(|u| u <= now_millis()) {
            return Err(LogicError::BadRequest(
                "until: a time in the future (ms)".into(),
            ));
        }
        // Lifting a mute that is not there changes nothing: no message.
        if until.is_none() && current.muted_until <= now_millis() {
            return Ok(current);
        }
        let member = self
            .repo
            .update_member(group.0, target.0, None, Some(until.unwrap_or(0)))
            .await?
            .ok_or_else(|| not_a_member(target))?;
        self.facts.forget(&[Fact::MayPost(group.0, target.0)]);
        let (operator, name) = (self.display_name(me).await, self.display_name(target).await);
        let (content, metadata) = match until {
            Some(until) => (
                format!("{operator} muted {name}"),
                json!({"event": "member_muted", "group_id": group, "user_id": target,
                       "until": until, "operator_id": me}),
            ),
            None => (
                format!("{operator} unmuted {name}"),
                json!({"event": "member_unmuted", "group_id": group, "user_id": target,
                       "operator_id": me}),
            ),
        };
        self.announce(group, content, metadata).await;
        Ok(member)
    }

    /// Asks to join: at once when the group is open, a request when it
    /// asks for approval, refused when it takes invitations only.
    pub async fn join(&self, me: Id, group: Id) -> LogicResult<Joined> {
        let found = self.repo.get_group(group.0).await?;
        if found.dissolved {
            return forbidden("the group was dissolved");
        }
        if self.member_role(group, me).await?.is_some() {
            return Ok(Joined::Member(found));
        }
        match JoinPolicy::from_code(found.join_policy) {
            JoinPolicy::Open => {
                self.admit(me, group, me).await?;
                Ok(Joined::Member(self.repo.get_group(group.0).await?))
            }
            JoinPolicy::Approval => {
                let request = self.repo.request_join(group.0, me.0).await?;
                Ok(Joined::Requested(Id(request.request_id)))
            }
            JoinPolicy::InviteOnly => forbidden("this group takes members by invitation only"),
        }
    }

    /// A group's pending join requests, for its owner and admins.
    pub async fn join_requests(&self, me: Id, group: Id) -> LogicResult<Vec<JoinRequest>> {
        self.require_manager(me, group).await?;
        Ok(self.repo.join_requests(group.0).await?)
    }

    /// An owner or admin lets the asker in.
    pub async fn accept_join(&self, me: Id, group: Id, request: Id) -> LogicResult<()> {
        self.require_manager(me, group).await?;
        let found = self.join_request(group, request).await?;
        self.admit(Id(found.user_id), group, me).await
    }

    /// An owner or admin turns the asker away; they are not told.
    pub async fn reject_join(&self, me: Id, group: Id, request: Id) -> LogicResult<()> {
        self.require_manager(me, group).await?;
        self.join_request(group, request).await?;
        Ok(self.repo.delete_join_request(request.0).await?)
    }

    /// Refuses a send or edit into a group the user may not post in now:
    /// not a member, dissolved, muted, or everyone muted but managers.
    /// A yes is kept for a moment (see `facts`); a no is always asked again.
    pub(super) async fn check_may_post(&self, group: Id, user: Id) -> LogicResult<()> {
        let fact = Fact::MayPost(group.0, user.0);
        let may = self.facts.get(fact, async {
            Ok(self.post_refusal(group, user).await.is_none())
        });
        if may.await? {
            return Ok(());
        }
        match self.post_refusal(group, user).await {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    async fn post_refusal(&self, group: Id, user: Id) -> Option<LogicError> {
        let member = match self.repo.get_member(group.0, user.0).await {
            Ok(Some(member)) => member,
            Ok(None) => {
                return Some(LogicError::Forbidden(format!(
                    "not a member of group {group}"
                )));
            }
            Err(e) => return Some(e.into()),
        };
        let found = match self.repo.get_group(group.0).await {
            Ok(found) => found,
            Err(e) => return Some(e.into()),
        };
        let manager = MemberRole::of(member.role) >= MemberRole::Admin;
        let refusal = if found.dissolved {
            "the group was dissolved"
        } else if member.muted_until > now_millis() {
            "you are muted in this group"
        } else if found.mute_all && !manager {
            "only the owner and admins may send while the group is muted"
        } else {
            return None;
        };
        Some(LogicError::Forbidden(refusal.into()))
    }

    /// Adds `user` (joining or accepted by `operator`) and tells the group.
    async fn admit(&self, user: Id, group: Id, operator: Id) -> LogicResult<()> {
        let added = self.repo.add_members(group.0, &[user.0]).await?;
        if added.is_empty() {
            return Ok(());
        }
        self.rooms_changed(group, &[user], true).await;
        let who = self.display_name(user).await;
        self.announce(
            group,
            format!("{who} joined the group"),
            json!({"event": "member_joined", "action": "join", "group_id": group,
                   "user_id": user, "operator_id": operator}),
        )
        .await;
        Ok(())
    }

    async fn join_request(&self, group: Id, request: Id) -> LogicResult<JoinRequest> {
        self.repo
            .join_requests(group.0)
            .await?
            .into_iter()
            .find(|r| r.request_id == request.0)
            .ok_or_else(|| LogicError::NotFound(format!("join request {request} not found")))
    }

    /// The caller's role in a group that is not dissolved; `forbidden` for
    /// outsiders.
    pub(super) async fn role_in_live_group(&self, me: Id, group: Id) -> LogicResult<MemberRole> {
        let found = self.repo.get_group(group.0).await?;
        let mine = self
            .member_role(group, me)
            .await?
            .ok_or_else(|| LogicError::Forbidden(format!("not a member of group {group}")))?;
        if found.dissolved {
            return forbidden("the group was dissolved");
        }
        Ok(mine)
    }

    async fn require_owner(&self, me: Id, group: Id) -> LogicResult<()> {
        if self.role_in_live_group(me, group).await? != MemberRole::Owner {
            return forbidden("only the owner may do this");
        }
        Ok(())
    }

    async fn require_manager(&self, me: Id, group: Id) -> LogicResult<()> {
        if self.role_in_live_group(me, group).await? < MemberRole::Admin {
            return forbidden("only the owner or an admin may do this");
        }
        Ok(())
    }
}

fn not_a_member(user: Id) -> LogicError {
    LogicError::NotFound(format!("user {user} is not a member"))
}

fn article(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Admin => "an admin",
        _ => "a member",
    }
}

//! Groups: who may create, edit, invite, leave and remove whom (the role
//! hierarchy owner > admin > member; the owner cannot leave). Every change
//! posts a `system_group` message into the group's conversation with
//! `metadata.event` naming it. Roles, mutes, joins and dissolution are in
//! `group_admin.rs`.

use gochat_proto::ids::Id;
use serde_json::{Value, json};

use super::facts::Fact;
use super::{Logic, LogicError, LogicResult};
use crate::repo::{Group, GroupPatch, Member, User, role};

const MAX_GROUP_NAME: usize = 50;
const MAX_INVITES: usize = 500;
const MAX_ANNOUNCEMENT: usize = 4096;
const MAX_AVATAR_URL: usize = 255;
const SEARCH_LIMIT: u32 = 50;

/// What creating a group needs.
#[derive(Debug)]
pub struct NewGroup {
    /// 1 to 50 characters after trimming.
    pub name: String,
    /// Initial members besides the creator.
    pub member_ids: Vec<Id>,
}

/// A group edit; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct GroupEdit {
    /// New name.
    pub name: Option<String>,
    /// New announcement.
    pub announcement: Option<String>,
    /// New avatar.
    pub avatar_url: Option<String>,
    /// Who may join.
    pub join_policy: Option<super::JoinPolicy>,
    /// Only the owner and admins may send.
    pub mute_all: Option<bool>,
}

/// A member's place in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemberRole {
    /// A plain member.
    Member,
    /// May edit the group and remove plain members.
    Admin,
    /// The creator: may remove admins, cannot leave.
    Owner,
}

impl MemberRole {
    /// From the stored number.
    pub fn of(stored: i32) -> Self {
        match stored {
            role::OWNER => MemberRole::Owner,
            role::ADMIN => MemberRole::Admin,
            _ => MemberRole::Member,
        }
    }

    /// As the protocol spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Owner => "owner",
            MemberRole::Admin => "admin",
            MemberRole::Member => "member",
        }
    }
}

fn bad(message: &str) -> LogicError {
    LogicError::BadRequest(message.to_owned())
}

fn valid_name(name: &str) -> bool {
    let name = name.trim();
    !name.is_empty() && name.chars().count() <= MAX_GROUP_NAME
}

fn distinct(ids: &[Id]) -> Vec<i64> {
    let mut v: Vec<i64> = ids.iter().map(|i| i.0).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn shown_name(u: &User) -> String {
    if u.nickname.is_empty() {
        u.username.clone()
    } else {
        u.nickname.clone()
    }
}

impl Logic {
    /// Creates a group owned by `me` with the given members.
    pub async fn create_group(&self, me: Id, group: NewGroup) -> LogicResult<Group> {
        if !valid_name(&group.name) {
            return Err(bad("name: 1 to 50 characters"));
        }
        if group.member_ids.len() > MAX_INVITES {
            return Err(bad("at most 500 initial members"));
        }
        let ids: Vec<i64> = group.member_ids.iter().map(|i| i.0).collect();
        if self.repo.get_users(&ids).await?.len() != distinct(&group.member_ids).len() {
            return Err(LogicError::NotFound("a member_id names no user".into()));
        }
        self.refuse_blocked_invitees(me, &group.member_ids).await?;
        let created = self
            .repo
            .create_group(me.0, group.name.trim(), &ids)
            .await?;
        let who = self.display_name(me).await;
        let id = Id(created.group_id);
        let mut joined: Vec<Id> = distinct(&group.member_ids).into_iter().map(Id).collect();
        joined.push(me);
        self.rooms_changed(id, &joined, true).await;
        self.announce(
            id,
            format!("{who} created the group"),
            json!({"action": "create", "group_id": id, "creator_id": me}),
        )
        .await;
        Ok(created)
    }

    /// Groups whose name contains `query`, or the caller's groups without one.
    pub async fn groups(&self, me: Id, query: Option<&str>) -> LogicResult<Vec<Group>> {
        Ok(match query {
            Some(q) if !q.is_empty() => self.repo.search_groups(q, SEARCH_LIMIT).await?,
            _ => self.repo.list_user_groups(me.0).await?,
        })
    }

    /// One group's public profile.
    pub async fn group(&self, group: Id) -> LogicResult<Group> {
        Ok(self.repo.get_group(group.0).await?)
    }

    /// Edits a group: the owner or an admin only.
    pub async fn update_group(&self, me: Id, group: Id, edit: GroupEdit) -> LogicResult<Group> {
        if self.role_in_live_group(me, group).await? < MemberRole::Admin {
            return Err(LogicError::Forbidden(
                "only the owner or an admin may edit the group".into(),
            ));
        }
        if edit.name.as_deref().is_some_and(|n| !valid_name(n)) {
            return Err(bad("name: 1 to 50 characters"));
        }
        if edit
            .announcement
            .as_deref()
            .is_some_and(|a| a.len() > MAX_ANNOUNCEMENT)
            || edit
                .avatar_url
                .as_deref()
                .is_some_and(|a| a.len() > MAX_AVATAR_URL)
        {
            return Err(bad("announcement up to 4096 bytes, avatar_url up to 255"));
        }
        let before = self.repo.get_group(group.0).await?;
        let patch = GroupPatch {
            name: edit.name.map(|n| n.trim().to_owned()),
            announcement: edit.announcement,
            avatar_url: edit.avatar_url,
            join_policy: edit.join_policy.map(super::JoinPolicy::code),
            mute_all: edit.mute_all,
            dissolved: None,
        };
        let after = self.repo.update_group(group.0, &patch).await?;
        let operator = self.display_name(me).await;
        if after.announcement != before.announcement {
            self.announce(
                group,
                format!("{operator} changed the announcement"),
                json!({"event": "announcement_changed", "group_id": group,
                       "announcement": after.announcement, "operator_id": me}),
            )
            .await;
        }
        if after.mute_all != before.mute_all {
            self.facts.forget_group(group.0);
            let what = if after.mute_all { "muted" } else { "unmuted" };
            self.announce(
                group,
                format!("{operator} {what} the group"),
                json!({"event": "mute_all_changed", "group_id": group,
                       "mute_all": after.mute_all, "operator_id": me}),
            )
            .await;
        }
        Ok(after)
    }

    /// A member adds users; returns those who were not members before.
    pub async fn invite(&self, me: Id, group: Id, user_ids: &[Id]) -> LogicResult<Vec<Id>> {
        self.role_in_live_group(me, group).await?;
        if user_ids.is_empty() || user_ids.len() > MAX_INVITES {
            return Err(bad("user_ids: 1 to 500 ids"));
        }
        let ids: Vec<i64> = user_ids.iter().map(|i| i.0).collect();
        let users = self.repo.get_users(&ids).await?;
        if users.len() != distinct(user_ids).len() {
            return Err(LogicError::NotFound("a user_id names no user".into()));
        }
        self.refuse_blocked_invitees(me, user_ids).await?;
        let added = self.repo.add_members(group.0, &ids).await?;
        if !added.is_empty() {
            let inviter = self.display_name(me).await;
            let names: Vec<String> = users
                .iter()
                .filter(|u| added.contains(&u.user_id))
                .map(shown_name)
                .collect();
            let invitees: Vec<Id> = added.iter().copied().map(Id).collect();
            self.rooms_changed(group, &invitees, true).await;
            self.announce(
                group,
                format!("{inviter} invited {}", names.join(", ")),
                json!({"event": "member_joined", "action": "invite", "group_id": group,
                       "user_id": invitees.first(), "user_ids": invitees,
                       "inviter_id": me, "invitee_ids": invitees}),
            )
            .await;
        }
        Ok(added.into_iter().map(Id).collect())
    }

    /// `me` leaves (`target == me`) or removes a member of lower rank.
    pub async fn remove_member(&self, me: Id, group: Id, target: Id) -> LogicResult<()> {
        let my_role = self.role_of(group, me).await?;
        let Some(target_role) = self.member_role(group, target).await? else {
            return Err(LogicError::NotFound(format!(
                "user {target} is not a member"
            )));
        };
        if target_role == MemberRole::Owner {
            return Err(LogicError::Conflict(
                "the owner cannot leave or be removed".into(),
            ));
        }
        let leaving = target == me;
        if !leaving && self.repo.get_group(group.0).await?.dissolved {
            return Err(LogicError::Forbidden("the group was dissolved".into()));
        }
        let may_remove = matches!(my_role, Some(r) if r > target_role && r >= MemberRole::Admin);
        if !leaving && !may_remove {
            return Err(LogicError::Forbidden(
                "only the owner or an admin may remove members".into(),
            ));
        }
        let removed = self.repo.remove_member(group.0, target.0).await?;
        self.facts.forget(&[Fact::MayPost(group.0, target.0)]);
        if removed {
            // Out of the rooms before anything else is sent to the group.
            self.rooms_changed(group, &[target], false).await;
            let name = self.display_name(target).await;
            let (content, action, event) = if leaving {
                (format!("{name} left the group"), "leave", "member_left")
            } else {
                let operator = self.display_name(me).await;
                (
                    format!("{operator} removed {name}"),
                    "remove",
                    "member_removed",
                )
            };
            self.announce(
                group,
                content,
                json!({"event": event, "action": action, "group_id": group, "user_id": target,
                       "operator_id": me}),
            )
            .await;
        }
        Ok(())
    }

    /// The members of a group the caller is in.
    pub async fn members(&self, me: Id, group: Id) -> LogicResult<Vec<Member>> {
        if self.role_of(group, me).await?.is_none() {
            return Err(not_member(group));
        }
        Ok(self.repo.list_members(group.0).await?)
    }

    /// `forbidden` when any invitee has blocked the inviter (PROTOCOL v1.1:
    /// a block stops group invites by the blocked user); nobody is added.
    async fn refuse_blocked_invitees(&self, inviter: Id, invitees: &[Id]) -> LogicResult<()> {
        for invitee in invitees {
            let blocked = self.facts.get(
                Fact::Blocked(invitee.0, inviter.0),
                self.repo.is_blocked(invitee.0, inviter.0),
            );
            if blocked.await? {
                return Err(LogicError::Forbidden(format!(
                    "user {invitee} does not accept invitations from you"
                )));
            }
        }
        Ok(())
    }

    /// The caller's role; `NotFound` when the group does not exist.
    async fn role_of(&self, group: Id, user: Id) -> LogicResult<Option<MemberRole>> {
        self.repo.get_group(group.0).await?;
        self.member_role(group, user).await
    }

    pub(super) async fn member_role(&self, group: Id, user: Id) -> LogicResult<Option<MemberRole>> {
        Ok(self
            .repo
            .get_member(group.0, user.0)
            .await?
            .map(|m| MemberRole::of(m.role)))
    }

    pub(super) async fn display_name(&self, user: Id) -> String {
        match self.repo.get_user(user.0).await {
            Ok(u) => shown_name(&u),
            Err(_) => format!("user {user}"),
        }
    }

    /// Tells the gateways holding the users' connections to update the
    /// group's rooms. The change itself is already stored (so a connection
    /// opening now reads it); a failure is retried briefly, then logged —
    /// the connections' rooms are right again when they reconnect.
    pub(super) async fn rooms_changed(&self, group: Id, users: &[Id], joined: bool) {
        let mut wait = std::time::Duration::from_millis(50);
        for attempt in 1..=3 {
            match self.writer.announce_membership(group, users, joined).await {
                Ok(()) => return,
                Err(e) if attempt == 3 => {
                    tracing::error!(error = %e, %group, joined, "group rooms not updated");
                }
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait *= 4;
                }
            }
        }
    }

    /// Posts a membership event; the change itself is already stored, so a
    /// failure here is logged rather than undoing it.
    pub(super) async fn announce(&self, group: Id, content: String, metadata: Value) {
        if let Err(e) = self.writer.post_group_event(group, content, metadata).await {
            tracing::warn!(error = %e, %group, "group event not posted");
        }
    }
}

fn not_member(group: Id) -> LogicError {
    LogicError::Forbidden(format!("not a member of group {group}"))
}

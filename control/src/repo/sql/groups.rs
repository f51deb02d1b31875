//! Groups and their members.

use gochat_proto::ids::{group_conversation_id, now_millis};
use sqlx::any::AnyRow;

use super::users::escape_like;
use super::{SqlRepo, clamp_limit, get, get_text, map_err};
use async_trait::async_trait;

use crate::repo::cache::Lookup;

use crate::repo::{Group, GroupPatch, GroupRepo, JoinRequest, Member, RepoError, RepoResult, role};

const GROUP_SELECT: &str = "SELECT g.id, g.name, g.owner_id, g.avatar_url, g.announcement, g.created_at, \
     g.join_policy, g.mute_all, g.dissolved, \
     (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS member_count FROM `groups` g";

fn group_from_row(row: &AnyRow) -> RepoResult<Group> {
    Ok(Group {
        group_id: get(row, "id")?,
        name: get_text(row, "name")?,
        owner_id: get(row, "owner_id")?,
        avatar_url: get_text(row, "avatar_url")?,
        announcement: get_text(row, "announcement")?,
        member_count: get(row, "member_count")?,
        created_at: get(row, "created_at")?,
        join_policy: get(row, "join_policy")?,
        mute_all: get::<i32>(row, "mute_all")? != 0,
        dissolved: get::<i32>(row, "dissolved")? != 0,
    })
}

#[async_trait]
impl GroupRepo for SqlRepo {
    async fn create_group(
        &self,
        owner_id: i64,
        name: &str,
        member_ids: &[i64],
    ) -> RepoResult<Group> {
        let now = now_millis();
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let query = sqlx::query("INSERT INTO `groups` (name, owner_id, avatar_url, announcement, created_at) VALUES (?, ?, '', '', ?)")
            .bind(name)
            .bind(owner_id)
            .bind(now);
        let group_id = self.insert_id(&mut tx, query).await?;
        let cid = group_conversation_id(gochat_proto::ids::Id(group_id));
        sqlx::query("INSERT INTO conversations (conversation_id, kind, group_id, last_seq_id, last_message_id, updated_at) VALUES (?, 2, ?, 0, 0, ?)")
            .bind(&cid)
            .bind(group_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let members = std::iter::once((owner_id, role::OWNER)).chain(
            member_ids
                .iter()
                .filter(|id| **id != owner_id)
                .map(|id| (*id, role::MEMBER)),
        );
        for (user_id, member_role) in members {
            self.insert_member(&mut tx, group_id, &cid, user_id, member_role, now)
                .await?;
        }
        tx.commit().await.map_err(map_err)?;
        self.get_group(group_id).await
    }

    async fn get_group(&self, group_id: i64) -> RepoResult<Group> {
        let row = sqlx::query(&format!("{GROUP_SELECT} WHERE g.id = ?"))
            .bind(group_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .ok_or_else(|| RepoError::NotFound(format!("group {group_id}")))?;
        group_from_row(&row)
    }

    async fn update_group(&self, group_id: i64, patch: &GroupPatch) -> RepoResult<Group> {
        let flag = |v: Option<bool>| v.map(i32::from);
        sqlx::query(
            "UPDATE `groups` SET name = COALESCE(?, name), announcement = COALESCE(?, announcement), \
             avatar_url = COALESCE(?, avatar_url), join_policy = COALESCE(?, join_policy), \
             mute_all = COALESCE(?, mute_all), dissolved = COALESCE(?, dissolved) WHERE id = ?",
        )
        .bind(patch.name.as_deref())
        .bind(patch.announcement.as_deref())
        .bind(patch.avatar_url.as_deref())
        .bind(patch.join_policy)
        .bind(flag(patch.mute_all))
        .bind(flag(patch.dissolved))
        .bind(group_id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        self.get_group(group_id).await
    }

    async fn search_groups(&self, query: &str, limit: u32) -> RepoResult<Vec<Group>> {
        sqlx::query(&format!(
            "{GROUP_SELECT} WHERE g.name LIKE ? ESCAPE '!' ORDER BY g.id LIMIT ?"
        ))
        .bind(format!("%{}%", escape_like(query)))
        .bind(clamp_limit(limit, 100))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(group_from_row)
        .collect()
    }

    async fn list_user_groups(&self, user_id: i64) -> RepoResult<Vec<Group>> {
        sqlx::query(&format!(
            "{GROUP_SELECT} WHERE g.dissolved = 0 AND g.id IN (SELECT group_id FROM group_members WHERE user_id = ?) ORDER BY g.id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(group_from_row)
        .collect()
    }

    async fn add_members(&self, group_id: i64, user_ids: &[i64]) -> RepoResult<Vec<i64>> {
        self.get_group(group_id).await?;
        let cid = group_conversation_id(gochat_proto::ids::Id(group_id));
        let now = now_millis();
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let mut added = Vec::new();
        for user_id in user_ids {
            if !added.contains(user_id)
                && self
                    .insert_member(&mut tx, group_id, &cid, *user_id, role::MEMBER, now)
                    .await?
            {
                added.push(*user_id);
            }
        }
        tx.commit().await.map_err(map_err)?;
        self.cache.forget_members(group_id).await;
        Ok(added)
    }

    async fn remove_member(&self, group_id: i64, user_id: i64) -> RepoResult<bool> {
        let cid = group_conversation_id(gochat_proto::ids::Id(group_id));
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let removed = sqlx::query("DELETE FROM group_members WHERE group_id = ? AND user_id = ?")
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            > 0;
        sqlx::query("DELETE FROM user_conversations WHERE user_id = ? AND conversation_id = ?")
            .bind(user_id)
            .bind(&cid)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.cache.forget_members(group_id).await;
        Ok(removed)
    }

    async fn list_members(&self, group_id: i64) -> RepoResult<Vec<Member>> {
        let ticket = match self.cache.members(group_id).await {
            Lookup::Hit(members) => return Ok(members),
            Lookup::Miss(ticket) => ticket,
        };
        let members = sqlx::query(
            "SELECT user_id, role, joined_at, muted_until FROM group_members WHERE group_id = ? ORDER BY id",
        )
        .bind(group_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(member_from_row)
        .collect::<RepoResult<Vec<_>>>()?;
        self.cache.fill_members(group_id, &members, ticket).await;
        Ok(members)
    }

    async fn get_member(&self, group_id: i64, user_id: i64) -> RepoResult<Option<Member>> {
        if let Lookup::Hit(members) = self.cache.members(group_id).await {
            return Ok(members.into_iter().find(|m| m.user_id == user_id));
        }
        self.load_member(group_id, user_id).await
    }

    async fn update_member(
        &self,
        group_id: i64,
        user_id: i64,
        role: Option<i32>,
        muted_until: Option<i64>,
    ) -> RepoResult<Option<Member>> {
        self.change_member(group_id, user_id, role, muted_until)
            .await
    }

    async fn transfer_group(&self, group_id: i64, from: i64, to: i64) -> RepoResult<Group> {
        self.hand_over(group_id, from, to).await
    }

    async fn request_join(&self, group_id: i64, user_id: i64) -> RepoResult<JoinRequest> {
        self.file_join_request(group_id, user_id).await
    }

    async fn join_requests(&self, group_id: i64) -> RepoResult<Vec<JoinRequest>> {
        self.join_requests_of(group_id).await
    }

    async fn delete_join_request(&self, request_id: i64) -> RepoResult<()> {
        self.drop_join_request(request_id).await
    }
}

impl SqlRepo {
    /// One membership straight from SQL.
    pub(super) async fn load_member(
        &self,
        group_id: i64,
        user_id: i64,
    ) -> RepoResult<Option<Member>> {
        sqlx::query(
            "SELECT user_id, role, joined_at, muted_until FROM group_members WHERE group_id = ? AND user_id = ?",
        )
        .bind(group_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(member_from_row)
        .transpose()
    }

    /// Adds one member and their conversation row; false if already a member.
    async fn insert_member(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        group_id: i64,
        cid: &str,
        user_id: i64,
        member_role: i32,
        now: i64,
    ) -> RepoResult<bool> {
        let added = sqlx::query(&format!(
            "{} INTO group_members (group_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)",
            self.dialect.insert_ignore()
        ))
        .bind(group_id)
        .bind(user_id)
        .bind(member_role)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?
        .rows_affected()
            > 0;
        if added {
            Self::clear_join_request(tx, group_id, user_id).await?;
            // A new member starts with everything before the join read, so the
            // group's history does not show up as unread.
            sqlx::query(&format!(
                "{} INTO user_conversations (user_id, conversation_id, read_seq_id, created_at) \
                 SELECT ?, ?, last_seq_id, ? FROM conversations WHERE conversation_id = ?",
                self.dialect.insert_ignore()
            ))
            .bind(user_id)
            .bind(cid)
            .bind(now)
            .bind(cid)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        }
        Ok(added)
    }
}

fn member_from_row(row: &AnyRow) -> RepoResult<Member> {
    Ok(Member {
        user_id: get(row, "user_id")?,
        role: get(row, "role")?,
        joined_at: get(row, "joined_at")?,
        muted_until: get(row, "muted_until")?,
    })
}

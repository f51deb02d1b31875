//! Group administration (PROTOCOL v1.1 "Group administration"): roles and
//! mutes on the membership rows, the owner's hand-over, and the requests to
//! join a group that asks for approval. Join policy, mute-all and
//! dissolution are columns of the group row, changed by `update_group`.

use gochat_proto::ids::now_millis;
use sqlx::any::AnyRow;

use super::{SqlRepo, get, map_err};
use crate::repo::{Group, JoinRequest, Member, RepoError, RepoResult, role};

const REQUEST_COLUMNS: &str = "id, group_id, user_id, created_at";

fn request_from_row(row: &AnyRow) -> RepoResult<JoinRequest> {
    Ok(JoinRequest {
        request_id: get(row, "id")?,
        group_id: get(row, "group_id")?,
        user_id: get(row, "user_id")?,
        created_at: get(row, "created_at")?,
    })
}

impl SqlRepo {
    /// Sets a member's role and/or mute.
    pub(super) async fn change_member(
        &self,
        group_id: i64,
        user_id: i64,
        new_role: Option<i32>,
        muted_until: Option<i64>,
    ) -> RepoResult<Option<Member>> {
        // The owner's role moves only by a hand-over: a role change racing
        // one must not leave the group without an owner.
        sqlx::query(
            "UPDATE group_members SET role = COALESCE(?, role), muted_until = COALESCE(?, muted_until) \
             WHERE group_id = ? AND user_id = ? AND (? IS NULL OR role <> ?)",
        )
        .bind(new_role)
        .bind(muted_until)
        .bind(group_id)
        .bind(user_id)
        .bind(new_role)
        .bind(role::OWNER)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        self.cache.forget_members(group_id).await;
        self.load_member(group_id, user_id).await
    }

    /// The owner row moves to `to`; `from` stays on as an admin.
    pub(super) async fn hand_over(&self, group_id: i64, from: i64, to: i64) -> RepoResult<Group> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Each row only from the role it must have (the owner's from owner,
        // the next one's from anything else): of two hand-overs at once one
        // finds no owner to move, so a group never has two owners.
        let steps = [
            (from, role::ADMIN, "role = ?"),
            (to, role::OWNER, "role <> ?"),
        ];
        for (user_id, new_role, was) in steps {
            let changed = sqlx::query(&format!(
                "UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ? AND {was}"
            ))
            .bind(new_role)
            .bind(group_id)
            .bind(user_id)
            .bind(role::OWNER)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
            if changed == 0 {
                return Err(RepoError::Conflict(format!(
                    "user {user_id} of group {group_id} is not in the role a hand-over needs"
                )));
            }
        }
        sqlx::query("UPDATE `groups` SET owner_id = ? WHERE id = ?")
            .bind(to)
            .bind(group_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.cache.forget_members(group_id).await;
        crate::repo::GroupRepo::get_group(self, group_id).await
    }

    /// Files a join request; a pending one is kept and returned.
    pub(super) async fn file_join_request(
        &self,
        group_id: i64,
        user_id: i64,
    ) -> RepoResult<JoinRequest> {
        sqlx::query(&format!(
            "{} INTO group_join_requests (group_id, user_id, created_at) VALUES (?, ?, ?)",
            self.dialect.insert_ignore()
        ))
        .bind(group_id)
        .bind(user_id)
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM group_join_requests WHERE group_id = ? AND user_id = ?"
        ))
        .bind(group_id)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        request_from_row(&row)
    }

    /// A group's pending join requests, oldest first.
    pub(super) async fn join_requests_of(&self, group_id: i64) -> RepoResult<Vec<JoinRequest>> {
        sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM group_join_requests WHERE group_id = ? ORDER BY id"
        ))
        .bind(group_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(request_from_row)
        .collect()
    }

    /// Forgets one join request.
    pub(super) async fn drop_join_request(&self, request_id: i64) -> RepoResult<()> {
        sqlx::query("DELETE FROM group_join_requests WHERE id = ?")
            .bind(request_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// Forgets a user's request to join once they are a member.
    pub(super) async fn clear_join_request(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        group_id: i64,
        user_id: i64,
    ) -> RepoResult<()> {
        sqlx::query("DELETE FROM group_join_requests WHERE group_id = ? AND user_id = ?")
            .bind(group_id)
            .bind(user_id)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

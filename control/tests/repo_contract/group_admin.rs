//! The contract of group administration (PROTOCOL v1.1): roles, mutes,
//! the hand-over, the group's flags and join requests, on every backend.

use std::sync::Arc;

use anyhow::Result;
use gochat_control::repo::{GroupPatch, Repo, role};

pub(crate) async fn roles_mutes_flags_and_join_requests(repo: Arc<dyn Repo>) -> Result<()> {
    let owner = repo.create_user("ga_owner", "h", "").await?.user_id;
    let member = repo.create_user("ga_member", "h", "").await?.user_id;
    let asker = repo.create_user("ga_asker", "h", "").await?.user_id;
    let group = repo.create_group(owner, "admin", &[member]).await?;
    let gid = group.group_id;
    assert_eq!(
        (group.join_policy, group.mute_all, group.dissolved),
        (0, false, false)
    );
    // Read once so that a cache (where there is one) holds the members.
    assert_eq!(repo.list_members(gid).await?.len(), 2);
    let changed = repo
        .update_member(gid, member, Some(role::ADMIN), Some(5_000))
        .await?
        .map(|m| (m.role, m.muted_until));
    assert_eq!(changed, Some((role::ADMIN, 5_000)));
    let read = repo
        .get_member(gid, member)
        .await?
        .map(|m| (m.role, m.muted_until));
    assert_eq!(read, changed, "the cache must not serve the old row");
    let lifted = repo.update_member(gid, member, None, Some(0)).await?;
    assert_eq!(
        lifted.map(|m| (m.role, m.muted_until)),
        Some((role::ADMIN, 0))
    );
    assert_eq!(
        repo.update_member(gid, asker, Some(role::ADMIN), None)
            .await?,
        None
    );

    let handed = repo.transfer_group(gid, owner, member).await?;
    assert_eq!(handed.owner_id, member);
    let roles: Vec<(i64, i32)> = repo
        .list_members(gid)
        .await?
        .iter()
        .map(|m| (m.user_id, m.role))
        .collect();
    assert_eq!(roles, vec![(owner, role::ADMIN), (member, role::OWNER)]);
    assert!(
        repo.transfer_group(gid, member, asker).await.is_err(),
        "not a member"
    );
    assert!(
        repo.transfer_group(gid, owner, member).await.is_err(),
        "the old owner has nothing left to hand over (a second, racing transfer)"
    );
    assert_eq!(
        repo.update_member(gid, member, Some(role::MEMBER), None)
            .await?
            .map(|m| m.role),
        Some(role::OWNER),
        "the owner's role moves only by a hand-over"
    );

    let patch = GroupPatch {
        join_policy: Some(2),
        mute_all: Some(true),
        ..GroupPatch::default()
    };
    let flagged = repo.update_group(gid, &patch).await?;
    assert_eq!((flagged.join_policy, flagged.mute_all), (2, true));

    let asked = repo.request_join(gid, asker).await?;
    assert_eq!(
        repo.request_join(gid, asker).await?,
        asked,
        "one pending request"
    );
    assert_eq!(repo.join_requests(gid).await?, vec![asked]);
    repo.add_members(gid, &[asker]).await?;
    assert_eq!(
        repo.join_requests(gid).await?,
        vec![],
        "membership clears it"
    );
    let again = repo.request_join(gid, asker).await?;
    repo.delete_join_request(again.request_id).await?;
    assert_eq!(repo.join_requests(gid).await?, vec![]);

    let dissolved = GroupPatch {
        dissolved: Some(true),
        ..GroupPatch::default()
    };
    assert!(repo.update_group(gid, &dissolved).await?.dissolved);
    assert!(repo.list_user_groups(owner).await?.is_empty(), "dissolved");
    assert_eq!(repo.list_members(gid).await?.len(), 3, "members stay");
    Ok(())
}

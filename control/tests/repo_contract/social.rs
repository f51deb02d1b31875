//! The contract of friends with consent, last seen and the presence
//! audience (PROTOCOL v1.1), on every backend.

use std::sync::Arc;

use anyhow::Result;
use gochat_control::repo::Repo;
use gochat_proto::ids::{Id, single_conversation_id};

pub(crate) async fn friend_requests_and_presence_audience(repo: Arc<dyn Repo>) -> Result<()> {
    let mut ids = Vec::new();
    for name in ["fa", "fb", "fc", "fd", "fe", "ff"] {
        ids.push(repo.create_user(name, "h", "").await?.user_id);
    }
    let [a, b, c, d, e, f] = ids[..] else {
        anyhow::bail!("six users")
    };
    assert_eq!(
        repo.get_user(a).await?.friend_policy,
        0,
        "approve by default"
    );
    assert_eq!(repo.set_friend_policy(a, 2).await?.friend_policy, 2);
    // The cache (where there is one) must not serve the old policy.
    assert_eq!(repo.get_user(a).await?.friend_policy, 2);
    repo.set_last_seen(a, 1234).await?;
    assert_eq!(repo.get_user(a).await?.last_seen, 1234);

    let first = repo.request_friend(a, b, "hello").await?;
    let again = repo.request_friend(a, b, "changed my mind").await?;
    assert_eq!(again, first, "a pending request is kept as it was");
    assert_eq!((first.from_user_id, first.to_user_id), (a, b));
    assert_eq!(first.message, "hello");
    let other = repo.request_friend(c, b, "").await?;
    let of_b = repo.friend_requests(b).await?;
    assert_eq!(of_b, vec![first.clone(), other.clone()], "oldest first");
    assert_eq!(repo.friend_requests(a).await?, vec![first.clone()]);
    repo.delete_friend_request(other.request_id).await?;
    repo.delete_friend_request(other.request_id).await?;
    assert_eq!(repo.friend_requests(c).await?, vec![]);
    // Friendship clears the requests between the two, either way.
    repo.request_friend(b, a, "").await?;
    repo.add_friend(b, a).await?;
    assert_eq!(repo.friend_requests(a).await?, vec![]);
    // So does a block.
    repo.request_friend(d, c, "").await?;
    repo.add_block(c, d).await?;
    assert_eq!(repo.friend_requests(d).await?, vec![]);
    repo.remove_block(c, d).await?;

    // a's presence: friend b; 1:1 peer c; e and f share a's small group,
    // d shares a's large one; a block hides f.
    let cid = single_conversation_id(Id(a), Id(c));
    repo.store_message(&super::message_of(&cid, a, c, "p-1"))
        .await?;
    repo.create_group(a, "small", &[a, e, f]).await?;
    let crowd = repo.create_group(b, "large", &[b, d]).await?;
    repo.add_members(crowd.group_id, &[a, c, e]).await?;
    repo.add_block(f, a).await?;
    assert_eq!(repo.presence_audience(a, 3).await?, vec![b, c, e]);
    assert_eq!(repo.presence_audience(a, 5).await?, vec![b, c, d, e]);
    repo.remove_block(f, a).await?;
    assert_eq!(repo.presence_audience(a, 3).await?, vec![b, c, e, f]);
    Ok(())
}

//! What authorizing a send needs to know — does the recipient exist, is the
//! sender blocked, are they friends, may the sender post in the group — kept in process
//! for a bounded time, so a batch of sends is authorized without a storage
//! round trip per send.
//!
//! Correctness comes from a bounded TTL plus local forgetting, not from bus
//! events: a change made through this process's [`Logic`](super::Logic)
//! forgets the fact at once; a change made through another logic process
//! reaches this one within [`TTL`]. Only answers that are safe to act on late
//! are kept: "exists", "friends" and "may post" are kept when true (a
//! refusal is always asked again, so a user who just joined is never refused
//! from a stale answer, and a mute made through another process takes effect
//! within the TTL); "blocked" is kept both ways, so a new block takes effect
//! everywhere within the TTL and at once in the process that made it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::repo::RepoResult;

/// How long a fact is trusted.
pub const TTL: Duration = Duration::from_secs(2);
/// Facts kept at most; past it the cache starts over (a bound, not an LRU:
/// at this size a rebuild costs less than the bookkeeping would).
const MAX_FACTS: usize = 200_000;

/// One thing authorization asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fact {
    /// The user exists.
    UserExists(i64),
    /// The first user blocked the second.
    Blocked(i64, i64),
    /// The two are friends (smaller id first).
    Friends(i64, i64),
    /// (group, user): the user may post there now (a member, not muted, the
    /// group neither dissolved nor muted for them).
    MayPost(i64, i64),
}

impl Fact {
    /// Friendship is symmetric: one key for both orders.
    pub fn friends(a: i64, b: i64) -> Self {
        Fact::Friends(a.min(b), a.max(b))
    }

    /// Whether an answer may be kept.
    fn keeps(self, answer: bool) -> bool {
        answer || matches!(self, Fact::Blocked(..))
    }
}

/// The in-process facts.
#[derive(Debug, Default)]
pub struct Facts {
    known: Mutex<HashMap<Fact, (bool, Instant)>>,
}

impl Facts {
    /// The fact's answer: kept if fresh, else `load`ed (and kept if it may be).
    pub async fn get(
        &self,
        fact: Fact,
        load: impl Future<Output = RepoResult<bool>>,
    ) -> RepoResult<bool> {
        let now = Instant::now();
        if let Some(answer) = self
            .lock()
            .get(&fact)
            .and_then(|&(answer, at)| (now.duration_since(at) < TTL).then_some(answer))
        {
            return Ok(answer);
        }
        let answer = load.await?;
        if fact.keeps(answer) {
            let mut known = self.lock();
            if known.len() >= MAX_FACTS {
                known.clear();
            }
            known.insert(fact, (answer, now));
        }
        Ok(answer)
    }

    /// Forgets every fact about one group (mute-all, dissolution).
    pub fn forget_group(&self, group: i64) {
        self.lock()
            .retain(|fact, _| !matches!(fact, Fact::MayPost(g, _) if *g == group));
    }

    /// Forgets facts this process just changed.
    pub fn forget(&self, facts: &[Fact]) {
        let mut known = self.lock();
        for fact in facts {
            known.remove(fact);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Fact, (bool, Instant)>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refusals_are_asked_again_blocks_are_kept_and_forgetting_works() {
        let facts = Facts::default();
        let member = Fact::MayPost(1, 2);
        assert_eq!(
            facts.get(member, async { Ok(false) }).await.ok(),
            Some(false)
        );
        assert_eq!(
            facts.get(member, async { Ok(true) }).await.ok(),
            Some(true),
            "a refusal is not kept"
        );
        assert_eq!(
            facts.get(member, async { Ok(false) }).await.ok(),
            Some(true),
            "a membership is kept"
        );
        facts.forget(&[member]);
        assert_eq!(
            facts.get(member, async { Ok(false) }).await.ok(),
            Some(false)
        );
        let blocked = Fact::Blocked(3, 4);
        assert_eq!(
            facts.get(blocked, async { Ok(false) }).await.ok(),
            Some(false)
        );
        assert_eq!(
            facts.get(blocked, async { Ok(true) }).await.ok(),
            Some(false),
            "not blocked is kept too"
        );
        assert_eq!(Fact::friends(9, 5), Fact::friends(5, 9));
    }
}

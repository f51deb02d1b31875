//! The heartbeat timing wheel: one slot per second of the timeout. A connection
//! is filed under the second its deadline falls in; when the slot comes round,
//! connections seen since are re-filed (lazily, no work per frame) and silent
//! ones are closed. O(1) per connection per timeout period.

/// Connection ids by deadline second.
pub(super) struct Wheel {
    slots: Vec<Vec<u64>>,
    timeout: u64,
}

impl Wheel {
    /// A wheel for `timeout_secs`.
    pub(super) fn new(timeout_secs: u64) -> Self {
        let timeout = timeout_secs.max(1);
        Self {
            slots: (0..=timeout).map(|_| Vec::new()).collect(),
            timeout,
        }
    }

    /// Files `id`, last seen at `seen`, under its deadline.
    pub(super) fn insert(&mut self, id: u64, seen: u64) {
        let slot = self.slot(seen + self.timeout);
        self.slots[slot].push(id);
    }

    /// The ids whose deadline may have passed at second `now`.
    pub(super) fn expire(&mut self, now: u64) -> Vec<u64> {
        let slot = self.slot(now);
        std::mem::take(&mut self.slots[slot])
    }

    /// The timeout in seconds.
    pub(super) fn timeout(&self) -> u64 {
        self.timeout
    }

    fn slot(&self, second: u64) -> usize {
        (second % self.slots.len() as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_expire_after_the_timeout_unless_seen() {
        let mut wheel = Wheel::new(3);
        wheel.insert(1, 0);
        wheel.insert(2, 1);
        assert!(wheel.expire(1).is_empty());
        assert!(wheel.expire(2).is_empty());
        assert_eq!(wheel.expire(3), vec![1]);
        assert_eq!(wheel.expire(4), vec![2]);
        // A full turn later the slot is empty again.
        assert!(wheel.expire(7).is_empty());
    }
}

//! Identifiers: decimal-string ids (JavaScript cannot hold 64-bit integers),
//! conversation ids (docs/protocol.md §1, conventions) and snowflake message ids.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A user, group or message id: a non-negative 64-bit integer written as a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub i64);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Id {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only plain decimal digits: no sign, no spaces, no exponent.
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err("an id is a decimal string of at most 19 digits");
        }
        s.parse::<i64>().map(Id).map_err(|_| "id out of range")
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id as a decimal string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                v.parse().map_err(E::custom)
            }
            // Numbers are accepted too: lenient clients send small ids unquoted.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                i64::try_from(v)
                    .map(Id)
                    .map_err(|_| E::custom("id out of range"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                if v < 0 {
                    return Err(E::custom("ids are not negative"));
                }
                Ok(Id(v))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

/// The sender id of system messages (`system`, `system_group`).
pub const SYSTEM_USER: Id = Id(0);

/// The conversation id of a 1:1 chat: lowercase hex MD5 of `"{min}:{max}"`.
pub fn single_conversation_id(a: Id, b: Id) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{:x}", md5::compute(format!("{}:{}", lo.0, hi.0)))
}

/// The conversation id of a group: `"g" + group_id`.
pub fn group_conversation_id(group_id: Id) -> String {
    format!("g{}", group_id.0)
}

/// What a conversation id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationRef {
    /// `g{group_id}`.
    Group(Id),
    /// A 1:1 chat (the MD5 cannot be reversed: membership comes from storage).
    Single,
}

/// Parses a conversation id; `None` when it is neither form.
pub fn parse_conversation_id(cid: &str) -> Option<ConversationRef> {
    if let Some(rest) = cid.strip_prefix('g') {
        return rest.parse().ok().map(ConversationRef::Group);
    }
    let is_md5 = cid.len() == 32 && cid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    is_md5.then_some(ConversationRef::Single)
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Snowflake ids (seed 003 §4.1.3): 41 bits of milliseconds since 2024-01-01,
/// 10 bits of node id, 12 bits of sequence. Unique across nodes with distinct
/// node ids and roughly time-ordered.
#[derive(Debug)]
pub struct Snowflake {
    node: u64,
    // (millis << 12 | seq): one atomic so concurrent callers never share an id.
    last: AtomicU64,
}

const SNOWFLAKE_EPOCH_MS: i64 = 1_704_067_200_000;

impl Snowflake {
    /// `node` must be below 1024.
    pub fn new(node: u16) -> Self {
        Self {
            node: u64::from(node & 0x3ff),
            last: AtomicU64::new(0),
        }
    }

    /// The next id, never equal to an earlier one from this generator.
    pub fn next_id(&self) -> Id {
        let now = u64::try_from(now_millis() - SNOWFLAKE_EPOCH_MS).unwrap_or(0);
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            // If the clock went back or the sequence is exhausted, borrow from the future.
            let candidate = (now << 12).max(prev + 1);
            match self.last.compare_exchange_weak(
                prev,
                candidate,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let millis = candidate >> 12;
                    let seq = candidate & 0xfff;
                    let id = (millis << 22) | (self.node << 12) | seq;
                    return Id(i64::try_from(id & (i64::MAX as u64)).unwrap_or(0));
                }
                Err(actual) => prev = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_conversation_id_is_symmetric_and_separated() {
        assert_eq!(
            single_conversation_id(Id(41), Id(42)),
            single_conversation_id(Id(42), Id(41))
        );
        // md5("41:42")
        assert_eq!(
            single_conversation_id(Id(41), Id(42)),
            format!("{:x}", md5::compute("41:42"))
        );
        // The seed's unseparated form collides; ours does not.
        assert_ne!(
            single_conversation_id(Id(1), Id(2345)),
            single_conversation_id(Id(12), Id(345))
        );
        // Compared as integers, not strings: 9 < 10.
        assert_eq!(
            single_conversation_id(Id(10), Id(9)),
            format!("{:x}", md5::compute("9:10"))
        );
    }

    #[test]
    fn conversation_ids_parse() {
        assert_eq!(
            parse_conversation_id("g7"),
            Some(ConversationRef::Group(Id(7)))
        );
        let cid = single_conversation_id(Id(1), Id(2));
        assert_eq!(parse_conversation_id(&cid), Some(ConversationRef::Single));
        for bad in [
            "",
            "g",
            "g-1",
            "gx",
            "' OR 1=1 --",
            "ABCDEF0123456789ABCDEF0123456789",
        ] {
            assert_eq!(parse_conversation_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_are_decimal_strings() {
        assert_eq!(
            serde_json::to_string(&Id(42)).ok().as_deref(),
            Some("\"42\"")
        );
        assert_eq!(serde_json::from_str::<Id>("\"42\"").ok(), Some(Id(42)));
        assert_eq!(serde_json::from_str::<Id>("42").ok(), Some(Id(42)));
        for bad in [
            "\"-1\"",
            "\"1e3\"",
            "\" 1\"",
            "\"\"",
            "-1",
            "\"99999999999999999999\"",
        ] {
            assert!(serde_json::from_str::<Id>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn snowflake_ids_are_unique_and_increasing() {
        let snowflake = Snowflake::new(3);
        let mut last = Id(0);
        for _ in 0..20_000 {
            let id = snowflake.next_id();
            assert!(id > last);
            last = id;
        }
    }
}

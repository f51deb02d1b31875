//! The token's claims, shared by the control plane (which issues tokens) and
//! the edge (which checks them locally at upgrade, without an RPC).

use serde::{Deserialize, Serialize};

use crate::ids::{Id, now_millis};

/// What a GoChat JWT (HS256) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, decimal.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Token id (the revocation handle).
    pub jti: String,
    /// Device id.
    pub did: String,
}

/// Longest token either tier accepts: a GoChat token is about 250 bytes; a
/// huge one is an attack on the decoder, refused before it is read.
pub const MAX_TOKEN_BYTES: usize = 2048;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 5;

impl Claims {
    /// The user the token names: a positive id (0 is the system user, never
    /// a client), issued no later than now (with [`LEEWAY_SECS`]). Signature,
    /// `exp` and `nbf` are the JWT library's to check.
    pub fn user_id(&self) -> Option<Id> {
        if self.iat > unix_secs() + LEEWAY_SECS {
            return None;
        }
        self.sub.parse::<Id>().ok().filter(|id| id.0 > 0)
    }

    /// Seconds until expiry (how long a revocation entry must live).
    pub fn remaining_secs(&self) -> u64 {
        self.exp.saturating_sub(unix_secs())
    }
}

/// A short, stable tag of a token id (`jti`), the same in every process
/// (FNV-1a, 64 bits): the session registry keeps it per connection so that
/// a logout can close exactly that token's connections.
pub fn token_tag(jti: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in jti.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.max(1)
}

/// Seconds since the Unix epoch.
pub fn unix_secs() -> u64 {
    u64::try_from(now_millis() / 1000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, iat: u64) -> Claims {
        Claims {
            sub: sub.into(),
            exp: unix_secs() + 600,
            iat,
            jti: "j".into(),
            did: "d".into(),
        }
    }

    #[test]
    fn only_real_users_issued_by_now() {
        let now = unix_secs();
        assert_eq!(claims("42", now).user_id(), Some(Id(42)));
        assert_eq!(claims("42", now + LEEWAY_SECS).user_id(), Some(Id(42)));
        assert_eq!(
            claims("42", now + 3600).user_id(),
            None,
            "issued in the future"
        );
        for sub in ["0", "-1", "x", "", "99999999999999999999"] {
            assert_eq!(claims(sub, now).user_id(), None, "{sub:?}");
        }
    }
}

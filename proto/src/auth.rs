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

impl Claims {
    /// The user the token names, if the subject is a valid id.
    pub fn user_id(&self) -> Option<Id> {
        self.sub.parse().ok()
    }

    /// Seconds until expiry (how long a revocation entry must live).
    pub fn remaining_secs(&self) -> u64 {
        self.exp.saturating_sub(unix_secs())
    }
}

/// Seconds since the Unix epoch.
pub fn unix_secs() -> u64 {
    u64::try_from(now_millis() / 1000).unwrap_or(0)
}

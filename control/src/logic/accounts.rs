//! Accounts, sessions and profiles: who may register with what and how a
//! password becomes a token. Friends and blocks are in `friends.rs`.

use std::sync::Arc;

use gochat_proto::ids::Id;

use super::auth::Claims;
use super::facts::Fact;
use super::{Logic, LogicError, LogicResult};
use crate::repo::{RepoError, User};

const SEARCH_LIMIT: u32 = 50;

/// What `register` needs.
#[derive(Debug)]
pub struct NewAccount {
    /// 3 to 32 letters, digits, `_`, `.` or `-`.
    pub username: String,
    /// 8 to 128 bytes.
    pub password: String,
    /// Shown name; empty means the username.
    pub nickname: String,
}

/// A login's result.
#[derive(Debug)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// Whose.
    pub user_id: Id,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// Profile fields a user may change; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct ProfilePatch {
    /// New nickname.
    pub nickname: Option<String>,
    /// New avatar (an http(s) URL or a `/media/` path).
    pub avatar_url: Option<String>,
    /// Who may befriend the user from now on.
    pub friend_policy: Option<super::FriendPolicy>,
}

/// Someone's profile as another user sees it.
#[derive(Debug)]
pub struct UserProfile {
    /// The stored profile.
    pub user: User,
    /// Connected now; `None` when the registry could not say or a block
    /// hides it.
    pub online: Option<bool>,
}

fn bad(message: &str) -> LogicError {
    LogicError::BadRequest(message.to_owned())
}

fn valid_username(name: &str) -> bool {
    (3..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_nickname(name: &str) -> bool {
    name.chars().count() <= 50 && !name.chars().any(char::is_control)
}

const NICKNAME_RULE: &str = "nickname: at most 50 characters, no control characters";

/// The rules of a new account's fields.
pub(super) fn check_account(account: &NewAccount) -> LogicResult<()> {
    if !valid_username(&account.username) {
        return Err(bad("username: 3 to 32 letters, digits, '_', '.' or '-'"));
    }
    if !(8..=128).contains(&account.password.len()) {
        return Err(bad("password: 8 to 128 bytes"));
    }
    if !valid_nickname(&account.nickname) {
        return Err(bad(NICKNAME_RULE));
    }
    Ok(())
}

impl Logic {
    /// Creates an account.
    pub async fn register(self: &Arc<Self>, account: NewAccount) -> LogicResult<User> {
        check_account(&account)?;
        let hash = self.hash(account.password).await?;
        self.repo
            .create_user(&account.username, &hash, &account.nickname)
            .await
            .map_err(|e| match e {
                RepoError::Conflict(_) => LogicError::Conflict("username is taken".into()),
                other => other.into(),
            })
    }

    /// An argon2 hash of `password`. Argon2 is deliberately slow: off the
    /// async workers, a few at a time (429 when none is free for a while).
    pub(super) async fn hash(self: &Arc<Self>, password: String) -> LogicResult<String> {
        let logic = self.clone();
        Ok(self
            .auth
            .hashing(move || logic.auth.hash_password(&password))
            .await
            .ok_or(LogicError::RateLimited)??)
    }

    /// Checks a password and issues a token for `device_id` (default `"default"`).
    pub async fn login(
        self: &Arc<Self>,
        username: &str,
        password: String,
        device_id: Option<String>,
    ) -> LogicResult<Session> {
        let device_id = device_id.unwrap_or_else(|| "default".into());
        if device_id.is_empty() || device_id.len() > 64 || device_id.chars().any(char::is_control) {
            return Err(bad("device_id: 1 to 64 characters"));
        }
        let auth = match self.repo.get_user_auth(username).await {
            Ok(a) => Some(a),
            Err(RepoError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let logic = self.clone();
        let stored = auth.as_ref().map(|a| a.password_hash.clone());
        let ok = self
            .auth
            .hashing(move || match stored {
                Some(hash) => logic.auth.verify_password(&password, &hash),
                // Hash anyway so unknown usernames take as long as wrong passwords.
                None => logic
                    .auth
                    .hash_password(&password)
                    .map(|_| false)
                    .unwrap_or(false),
            })
            .await
            .ok_or(LogicError::RateLimited)?;
        let user = auth
            .and_then(|a| a.user)
            .filter(|_| ok)
            .ok_or_else(|| LogicError::Unauthorized("wrong username or password".into()))?;
        let (token, expires_at) = self.auth.issue(Id(user.user_id), &device_id)?;
        Ok(Session {
            token,
            user_id: Id(user.user_id),
            expires_at,
        })
    }

    /// Who a bearer token speaks for: signature, expiry and revocation checked.
    pub async fn authenticate(&self, token: &str) -> LogicResult<(Id, Claims)> {
        let unauthorized = |m: &str| LogicError::Unauthorized(m.to_owned());
        let claims = self
            .auth
            .verify(token)
            .map_err(|_| unauthorized("invalid or expired token"))?;
        if self.state.is_revoked(&claims.jti).await? {
            return Err(unauthorized("token revoked"));
        }
        let id = claims
            .user_id()
            .ok_or_else(|| unauthorized("invalid token"))?;
        // A validly signed token for a user that does not exist (deleted, or
        // minted by whoever holds the secret) names nobody.
        if !self.user_exists(id).await? {
            return Err(unauthorized("invalid token"));
        }
        Ok((id, claims))
    }

    /// Does the user exist? (A fact: kept for a moment, see `facts`.)
    pub(super) async fn user_exists(&self, user: Id) -> LogicResult<bool> {
        let lookup = async {
            match self.repo.get_user(user.0).await {
                Ok(_) => Ok(true),
                Err(RepoError::NotFound(_)) => Ok(false),
                Err(e) => Err(e),
            }
        };
        Ok(self.facts.get(Fact::UserExists(user.0), lookup).await?)
    }

    /// Revokes the token until it would have expired anyway; its open
    /// connections get a `kick` and are closed.
    pub async fn logout(&self, claims: &Claims) -> LogicResult<()> {
        let ttl = claims.remaining_secs().max(1);
        // Durable first: the state store's list is a cache that a restart
        // (standalone) or a flush loses; it is refilled from this at start.
        let expires_at = i64::try_from(claims.exp)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        self.repo.revoke_token(&claims.jti, expires_at).await?;
        self.state.revoke_token(&claims.jti, ttl).await?;
        if let Some(user) = claims.user_id() {
            // A signed-out device gets no more pushes (the next person on a
            // shared phone must not see this user's).
            self.repo.remove_device(user.0, &claims.did).await?;
            self.writer
                .close_token(user, gochat_proto::auth::token_tag(&claims.jti))
                .await?;
        }
        Ok(())
    }

    /// The caller's own profile.
    pub async fn my_profile(&self, me: Id) -> LogicResult<User> {
        Ok(self.repo.get_user(me.0).await?)
    }

    /// Changes the caller's nickname and/or avatar.
    pub async fn update_profile(&self, me: Id, patch: ProfilePatch) -> LogicResult<User> {
        if patch
            .nickname
            .as_deref()
            .is_some_and(|n| !valid_nickname(n))
        {
            return Err(bad(NICKNAME_RULE));
        }
        if patch.avatar_url.as_deref().is_some_and(|u| {
            u.len() > 255 || !(u.is_empty() || u.starts_with('/') || u.starts_with("http"))
        }) {
            return Err(bad(
                "avatar_url: an http(s) URL or a /media/ path of at most 255 bytes",
            ));
        }
        let mut user = self
            .repo
            .update_user(me.0, patch.nickname.as_deref(), patch.avatar_url.as_deref())
            .await?;
        if let Some(policy) = patch.friend_policy {
            user = self.set_friend_policy(me, policy).await?;
        }
        Ok(user)
    }

    /// Users whose username starts with `prefix`.
    pub async fn search_users(&self, prefix: &str) -> LogicResult<Vec<User>> {
        if prefix.is_empty() {
            return Err(bad("q: the username prefix to search"));
        }
        Ok(self.repo.search_users(prefix, SEARCH_LIMIT).await?)
    }

    /// Someone's profile, with whether they are connected now; nothing of
    /// their presence when a block stands between the two.
    pub async fn user_profile(&self, viewer: Id, user: Id) -> LogicResult<UserProfile> {
        let mut stored = self.repo.get_user(user.0).await?;
        if viewer != user && self.blocked_either_way(viewer, user).await? {
            stored.last_seen = 0;
            return Ok(UserProfile {
                user: stored,
                online: None,
            });
        }
        // Presence is a nicety: a registry hiccup must not fail the profile.
        let online = match self.state.is_online(user).await {
            Ok(online) => Some(online),
            Err(e) => {
                tracing::warn!(error = %e, "presence unknown");
                None
            }
        };
        Ok(UserProfile {
            user: stored,
            online,
        })
    }
}

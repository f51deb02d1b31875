//! Passwords (argon2id) and tokens (JWT HS256 with `sub`, `exp`, `iat`, `jti`,
//! `did`). A token is revoked by its `jti` in the state store on logout, for as
//! long as it would otherwise stay valid; the edge checks the same key at connect.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use gochat_proto::ids::Id;
use jsonwebtoken::{Algorithm as JwtAlgorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::config::AuthConfig;

/// Why authentication failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Token missing, malformed, forged or expired.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The hashing library failed (bad parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub use gochat_proto::auth::Claims;
use gochat_proto::auth::unix_secs;

/// Issues and checks tokens and passwords.
pub struct Authenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
    argon: Argon2<'static>,
    /// Where hashes run.
    hashing: HashPool,
}

/// A few threads of its own that compute password hashes, one turn each.
/// A hash holds `argon2_memory_kib` while it runs; on tokio's blocking pool
/// every new thread brought a new allocator arena that kept its last hash's
/// memory (64 wrong logins at once grew the process by over 300 MiB even
/// when only two ran at a time). A fixed few threads reuse theirs.
struct HashPool {
    jobs: std::sync::mpsc::Sender<HashJob>,
    turns: Arc<tokio::sync::Semaphore>,
}

type HashJob = Box<dyn FnOnce() + Send>;

impl HashPool {
    fn new(threads: usize) -> Result<Self, AuthError> {
        let (jobs, queue) = std::sync::mpsc::channel::<HashJob>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only to take the next job.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| AuthError::Hash(format!("hashing thread: {e}")))?;
        }
        Ok(Self {
            jobs,
            turns: Arc::new(tokio::sync::Semaphore::new(threads)),
        })
    }

    /// Runs `f` on a hashing thread once one is free; `None` when none was
    /// free within [`HASH_WAIT`].
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let turn = tokio::time::timeout(HASH_WAIT, self.turns.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: HashJob = Box::new(move || {
            let _turn = turn;
            let _ = done.send(f());
        });
        self.jobs.send(job).ok()?;
        result.await.ok()
    }
}

/// How long a login or registration waits for a turn to hash before it is
/// told to come back (429).
const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Authenticator {
    /// From validated config.
    pub fn new(config: &AuthConfig) -> Result<Self, AuthError> {
        let params = Params::new(config.argon2_memory_kib, config.argon2_iterations, 1, None)
            .map_err(|e| AuthError::Hash(e.to_string()))?;
        let mut validation = Validation::new(JwtAlgorithm::HS256);
        validation.leeway = gochat_proto::auth::LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(config.jwt_secret.as_bytes()),
            decoding: DecodingKey::from_secret(config.jwt_secret.as_bytes()),
            validation,
            ttl_secs: config.token_ttl_secs,
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            hashing: HashPool::new(match config.max_concurrent_hashes {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                n => n,
            })?,
        })
    }

    /// Runs `f` (a hash or a verification) on one of the hashing threads;
    /// `None` when all stayed busy for a few seconds (tell the client to
    /// come back).
    pub async fn hashing<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        self.hashing.run(f).await
    }

    /// A PHC-format argon2id hash with a fresh salt.
    pub fn hash_password(&self, password: &str) -> Result<String, AuthError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Hash(e.to_string()))
    }

    /// Does `password` match the stored hash? A malformed hash never matches.
    pub fn verify_password(&self, password: &str, hash: &str) -> bool {
        PasswordHash::new(hash).is_ok_and(|parsed| {
            self.argon
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    }

    /// A token for `user` on `device`; returns it and its expiry (ms since the epoch).
    pub fn issue(&self, user: Id, device_id: &str) -> Result<(String, i64), AuthError> {
        let iat = unix_secs();
        let claims = Claims {
            sub: user.to_string(),
            exp: iat + self.ttl_secs,
            iat,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            did: device_id.to_owned(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(JwtAlgorithm::HS256), &claims, &self.encoding)
                .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        let expires_at = i64::try_from(claims.exp)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        Ok((token, expires_at))
    }

    /// Checks signature and expiry (revocation is the caller's second step).
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if token.len() > gochat_proto::auth::MAX_TOKEN_BYTES {
            return Err(AuthError::InvalidToken("token too long".into()));
        }
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(secret: &str) -> Authenticator {
        let config = AuthConfig {
            jwt_secret: secret.into(),
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            ..AuthConfig::default()
        };
        Authenticator::new(&config).expect("params")
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let a = auth("0123456789abcdef0123456789abcdef");
        let hash = a.hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(a.verify_password("correct horse", &hash));
        assert!(!a.verify_password("wrong", &hash));
        assert!(!a.verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_round_trip_and_forgeries_fail() {
        let a = auth("0123456789abcdef0123456789abcdef");
        let (token, expires_at) = a.issue(Id(42), "web").expect("issue");
        let claims = a.verify(&token).expect("valid");
        assert_eq!(
            (claims.user_id(), claims.did.as_str()),
            (Some(Id(42)), "web")
        );
        assert!(expires_at > gochat_proto::ids::now_millis());
        let other = auth("another-secret-another-secret-xx");
        assert!(other.verify(&token).is_err(), "signed with another secret");
        assert!(a.verify("garbage").is_err());
        let mut tampered = token.clone();
        tampered.insert(token.len() / 2, 'x');
        assert!(a.verify(&tampered).is_err());
    }

    #[test]
    fn expired_tokens_fail() {
        let config = AuthConfig {
            jwt_secret: "0123456789abcdef0123456789abcdef".into(),
            token_ttl_secs: 0,
            ..AuthConfig::default()
        };
        let a = Authenticator::new(&config).expect("params");
        let iat = unix_secs() - 100;
        let claims = Claims {
            sub: "1".into(),
            exp: iat + 10,
            iat,
            jti: "j".into(),
            did: "d".into(),
        };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &a.encoding).expect("encode");
        assert!(a.verify(&token).is_err());
    }
}

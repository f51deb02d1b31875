//! Token checks at upgrade, done locally (no RPC): HS256 signature and expiry
//! with the secret the control plane signs with; revocation is asked of the
//! registry afterwards.

use gochat_proto::auth::Claims;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// Verifies tokens.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    /// A verifier for `secret`.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = gochat_proto::auth::LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// The claims of a valid, unexpired token naming a user.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        if token.len() > gochat_proto::auth::MAX_TOKEN_BYTES {
            return None;
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .ok()?
            .claims;
        claims.user_id().map(|_| claims)
    }
}

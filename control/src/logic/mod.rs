//! The logic service: the REST API ([`http`]) and the message pipeline
//! ([`pipeline`]), fed by the upstream consumer ([`consumer`]) and by
//! `POST /messages` through the same [`Logic::send`].

pub mod auth;
pub mod consumer;
pub mod http;
pub mod pipeline;
mod routing;

use std::sync::Arc;

use gochat_proto::frames::ErrorCode;
use gochat_proto::ids::Snowflake;

use crate::bus::{Bus, BusError};
use crate::config::{AuthConfig, LogicConfig};
use crate::repo::{Repo, RepoError};
use crate::state::{StateError, StateStore};
use auth::{AuthError, Authenticator};

/// Why a logic operation failed; [`LogicError::code`] is its protocol error code.
#[derive(Debug, thiserror::Error)]
pub enum LogicError {
    /// The request is malformed or breaks a rule.
    #[error("{0}")]
    BadRequest(String),
    /// No valid token.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// The target does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Clashes with existing state.
    #[error("{0}")]
    Conflict(String),
    /// Over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// Over the send rate.
    #[error("too many sends; slow down")]
    RateLimited,
    /// SQL failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// Redis failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Kafka failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Hashing failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl LogicError {
    /// The protocol error code (PROTOCOL.md).
    pub fn code(&self) -> ErrorCode {
        match self {
            LogicError::BadRequest(_) => ErrorCode::BadRequest,
            LogicError::Unauthorized(_) => ErrorCode::Unauthorized,
            LogicError::Forbidden(_) => ErrorCode::Forbidden,
            LogicError::NotFound(_) | LogicError::Repo(RepoError::NotFound(_)) => {
                ErrorCode::NotFound
            }
            LogicError::Conflict(_) | LogicError::Repo(RepoError::Conflict(_)) => {
                ErrorCode::Conflict
            }
            LogicError::TooLarge(_) => ErrorCode::TooLarge,
            LogicError::RateLimited => ErrorCode::RateLimited,
            LogicError::Repo(RepoError::Invalid(_)) => ErrorCode::BadRequest,
            LogicError::Auth(AuthError::InvalidToken(_)) => ErrorCode::Unauthorized,
            _ => ErrorCode::Internal,
        }
    }

    /// A dependency is down: the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            LogicError::Repo(e) => e.is_retryable(),
            LogicError::State(_) => true,
            LogicError::Bus(e) => matches!(e, BusError::Unavailable(_)),
            _ => false,
        }
    }

    /// The message shown to clients: internal details stay in the logs.
    pub fn public_message(&self) -> String {
        match self.code() {
            ErrorCode::Internal if self.is_retryable() => {
                "a dependency is unavailable; retry".into()
            }
            ErrorCode::Internal => "internal error".into(),
            _ => match self {
                LogicError::Repo(e) => e.to_string(),
                other => other.to_string(),
            },
        }
    }
}

/// Result alias for logic operations.
pub type LogicResult<T> = Result<T, LogicError>;

/// The logic service: everything the REST handlers and the consumer share.
pub struct Logic {
    pub(crate) repo: Arc<dyn Repo>,
    pub(crate) state: Arc<dyn StateStore>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) auth: Authenticator,
    pub(crate) config: LogicConfig,
    pub(crate) admin_usernames: Vec<String>,
    pub(crate) ids: Snowflake,
}

impl Logic {
    /// Assembles the service from its dependencies.
    pub fn new(
        repo: Arc<dyn Repo>,
        state: Arc<dyn StateStore>,
        bus: Arc<dyn Bus>,
        auth_config: &AuthConfig,
        config: LogicConfig,
        node_id: u16,
    ) -> Result<Self, AuthError> {
        Ok(Self {
            repo,
            state,
            bus,
            auth: Authenticator::new(auth_config)?,
            config,
            admin_usernames: auth_config.admin_usernames.clone(),
            ids: Snowflake::new(node_id),
        })
    }
}

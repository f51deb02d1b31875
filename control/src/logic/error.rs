//! What can go wrong in logic, and the one place a [`LogicError`] becomes what
//! a client sees: a protocol error code, whether retrying may help, and a
//! message without internals ([`LogicError::public_message`]); for gRPC
//! callers, a tonic status ([`to_status`]). HTTP statuses are derived from
//! these in `http/mod.rs`, WebSocket `error` frames in the consumer.

use gochat_proto::frames::ErrorCode;

use super::auth::AuthError;
use super::delivery::DeliveryError;
use crate::bus::BusError;
use crate::repo::RepoError;
use crate::state::StateError;

use crate::BoxError;

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
    /// An upload of a type that is not taken.
    #[error("{0}")]
    UnsupportedType(String),
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
    /// Logic itself cannot take the request now (its send path is stopping,
    /// or the group commit the request was part of failed on a dependency).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The send path is saturated: the send was not taken (admission
    /// control); resend after a pause.
    #[error("the server is overloaded; resend after a second")]
    Overloaded,
    /// Hashing or token signing failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A bug or a local failure (a file write, a crashed blocking task); the
    /// cause is kept for the logs, clients see "internal error".
    #[error("internal: {0}")]
    Internal(#[source] BoxError),
}

impl LogicError {
    /// The protocol error code (docs/protocol.md).
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
            LogicError::UnsupportedType(_) => ErrorCode::UnsupportedType,
            LogicError::RateLimited => ErrorCode::RateLimited,
            LogicError::Overloaded => ErrorCode::Overloaded,
            LogicError::Repo(RepoError::Invalid(_)) => ErrorCode::BadRequest,
            LogicError::Auth(AuthError::InvalidToken(_)) => ErrorCode::Unauthorized,
            _ => ErrorCode::Internal,
        }
    }

    /// A dependency is down: the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            LogicError::Repo(e) => e.is_retryable(),
            LogicError::State(_) | LogicError::Unavailable(_) | LogicError::Overloaded => true,
            LogicError::Bus(e) => matches!(e, BusError::Unavailable(_)),
            _ => false,
        }
    }

    /// The same answer for another copy of the request (a resend handled in
    /// the same batch): its code, retryability and public message.
    pub fn for_copy(&self) -> LogicError {
        let message = self.public_message();
        match self.code() {
            ErrorCode::BadRequest => LogicError::BadRequest(message),
            ErrorCode::Unauthorized => LogicError::Unauthorized(message),
            ErrorCode::Forbidden => LogicError::Forbidden(message),
            ErrorCode::NotFound => LogicError::NotFound(message),
            ErrorCode::Conflict => LogicError::Conflict(message),
            ErrorCode::TooLarge => LogicError::TooLarge(message),
            ErrorCode::UnsupportedType => LogicError::UnsupportedType(message),
            ErrorCode::RateLimited => LogicError::RateLimited,
            ErrorCode::Overloaded => LogicError::Overloaded,
            _ if self.is_retryable() => LogicError::Unavailable(message),
            _ => LogicError::Internal(message.into()),
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

impl From<DeliveryError> for LogicError {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::State(s) => s.into(),
            DeliveryError::Bus(b) => b.into(),
        }
    }
}

/// A logic error for a gRPC caller: retryable failures are `UNAVAILABLE`, so
/// the caller's retry policy applies; refusals carry their public message.
pub fn to_status(e: &LogicError) -> tonic::Status {
    use tonic::Status;
    if e.is_retryable() {
        return Status::unavailable(e.public_message());
    }
    let message = e.public_message();
    match e.code() {
        ErrorCode::BadRequest | ErrorCode::TooLarge | ErrorCode::UnsupportedType => {
            Status::invalid_argument(message)
        }
        ErrorCode::Unauthorized => Status::unauthenticated(message),
        ErrorCode::Forbidden => Status::permission_denied(message),
        ErrorCode::NotFound => Status::not_found(message),
        ErrorCode::Conflict => Status::already_exists(message),
        ErrorCode::RateLimited => Status::resource_exhausted(message),
        _ => {
            tracing::error!(error = %e, "grpc request failed");
            Status::internal(message)
        }
    }
}

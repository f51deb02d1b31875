//! The repo over gRPC: [`RepoServer`] exposes any [`Repo`](super::Repo)
//! (tonic service), and [`RepoClient`] is a repo that calls a remote repo
//! service. Errors cross the wire as gRPC status codes and come back as the
//! same [`RepoError`] variants, so callers cannot tell a local repo from a
//! remote one.

mod client;
pub mod discovery;
mod server;

use tonic::{Code, Status};

use super::RepoError;
pub use client::RepoClient;
pub use server::RepoServer;

/// The one place repo errors become gRPC statuses.
pub fn to_status(err: RepoError) -> Status {
    match err {
        RepoError::NotFound(m) => Status::not_found(m),
        RepoError::Conflict(m) => Status::already_exists(m),
        RepoError::Invalid(m) => Status::invalid_argument(m),
        RepoError::Unavailable(cause) => Status::unavailable(cause.to_string()),
        RepoError::Internal(cause) => Status::internal(cause.to_string()),
    }
}

/// And back.
pub fn from_status(status: Status) -> RepoError {
    let message = status.message().to_owned();
    match status.code() {
        Code::NotFound => RepoError::NotFound(message),
        Code::AlreadyExists => RepoError::Conflict(message),
        Code::InvalidArgument => RepoError::Invalid(message),
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted => {
            RepoError::Unavailable(Box::new(status))
        }
        _ => RepoError::Internal(Box::new(status)),
    }
}

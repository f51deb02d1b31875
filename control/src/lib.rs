//! gochat-control: the control plane on tokio (DESIGN.md §4).
//!
//! - [`repo`]: the repo service, the only owner of SQL (MySQL/MariaDB or SQLite),
//!   with a Redis cache and a gRPC client/server.
//! - [`logic`]: the REST API and the message pipeline (dedup, seq, persist, route).
//! - [`task`]: offline push and large-group fan-out, with retries and a dead-letter topic.
//! - [`state`]: session registry, seq cache, revocation, rate limits (Redis or in-process).
//! - [`bus`]: the tier-to-tier log (Kafka or in-process).
//! - [`server`]: assembles a process from [`config::ControlConfig`]; `run(config, listeners, shutdown)`.
//!
//! The control plane never depends on the edge crate: they meet in `gochat-proto`.

pub mod bus;
pub mod config;
mod consume;
mod grpc_faces;
pub mod logic;
pub mod repo;
pub mod server;
pub mod state;
pub mod task;

/// A failure's cause, kept (not flattened to text) so logs show the whole chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub use server::{ControlListeners, Running, StartError, run, start};

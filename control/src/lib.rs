//! gochat-control: the control plane on tokio (docs/design.md §4).
//!
//! - [`repo`]: the repo service, the only owner of SQL (MySQL/MariaDB or SQLite),
//!   with a Redis cache and a gRPC client/server.
//! - [`logic`]: the REST API and the message pipeline (dedup, seq, persist, route).
//! - [`task`]: offline push and large-group fan-out, with retries and a dead-letter topic.
//! - state store and message bus: the `gochat-engines` crate, shared with the
//!   gateway process.
//! - [`server`]: assembles a process from [`config::ControlConfig`]; `run(config, listeners, shutdown)`.
//!
//! The control plane never depends on the edge crate: they meet in `gochat-proto`.

pub mod config;
mod consume;
mod consume_batch;
mod grpc_faces;
pub mod grpc_metrics;
pub mod logic;
pub mod repo;
pub mod server;
pub mod task;

// The engines are the control plane's as much as the gateway's; the paths
// `crate::bus` and `crate::state` keep reading as they did.
pub(crate) use gochat_engines::{BoxError, bus, state};

pub use server::{ControlListeners, Running, StartError, run, start};

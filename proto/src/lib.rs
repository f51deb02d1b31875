//! gochat-proto: the contract every tier shares.
//!
//! - [`auth`]: the token claims both tiers read.
//! - [`frames`]: the client frames of docs/protocol.md (what a WebSocket or REST client sees).
//! - [`kafka`]: the values carried between tiers on Kafka (seed 002 plus routing);
//!   [`downstream`]: the downstream record key (connections or a group room).
//! - [`ids`]: ids as decimal strings, conversation ids, snowflake message ids.
//! - [`settings`]: the TOML + `GOCHAT_*` environment convention of every binary.
//! - [`tls`]: listener certificates, reloaded on SIGHUP (`https://`, `wss://`).
//! - [`trace`]: the W3C `traceparent` a traced message carries across the tiers; `[tracing]`.
//! - [`metrics`]: the process's Prometheus recorder and its upkeep.
//! - [`keys`]: topic names, consumer groups and the shared Redis keys (session registry).
//! - [`repo`], [`logic`], [`task`]: the gRPC services, generated from `proto/*.proto`.
//!
//! This crate depends on nothing of ours; `edge`, `control` and `loadgen` depend on it.

pub mod auth;
pub mod downstream;
pub mod frames;
pub mod ids;
pub mod kafka;
pub mod keys;
pub mod metrics;
pub mod settings;
pub mod tls;
pub mod trace;

/// The repo service (SQL owner): messages and service definitions.
#[allow(missing_docs, clippy::all)]
pub mod repo {
    tonic::include_proto!("gochat.repo.v1");
}

/// The logic service's gRPC face.
#[allow(missing_docs, clippy::all)]
pub mod logic {
    tonic::include_proto!("gochat.logic.v1");
}

/// The task service's gRPC face.
#[allow(missing_docs, clippy::all)]
pub mod task {
    tonic::include_proto!("gochat.task.v1");
}

/// The `version` field every Kafka value carries (seed 002).
pub const WIRE_VERSION: &str = "1.0";

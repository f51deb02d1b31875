//! The `gochat` binary's library half: how the edge and the control plane are
//! put together ([`links`]), a Kafka/Redis gateway ([`edge_cmd`]) and
//! standalone mode ([`standalone`], configured by [`standalone_config`]),
//! and `gochat config` ([`config_cmd`]); logs and traces ([`telemetry`]);
//! freed memory given back to the system ([`memory`]). Kept as a
//! library so tests start real servers in-process on port 0.

pub mod config_cmd;
pub mod edge_cmd;
pub mod links;
pub mod memory;
pub mod standalone;
pub mod standalone_config;
pub mod telemetry;

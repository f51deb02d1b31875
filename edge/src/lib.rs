//! gochat-edge: the data plane (DESIGN.md §3): a thread-per-core io_uring
//! WebSocket gateway on monoio.
//!
//! - [`ws`]: the upgrade handshake and the frame codec, socket-free.
//!
//! The edge never depends on the control plane: they meet in `gochat-proto`
//! (upstream/downstream records, topic names, the session registry entry).

pub mod ws;

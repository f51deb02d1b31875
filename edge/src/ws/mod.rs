//! WebSocket protocol pieces, free of sockets so they are unit-tested alone:
//! the upgrade handshake and the frame codec.

pub mod codec;
pub mod handshake;

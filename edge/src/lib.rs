//! gochat-edge: the data plane (thread-per-core io_uring WebSocket gateway on monoio).
//!
//! Not built yet: it is the next issue. The seams it plugs into already exist in
//! `gochat-proto`: the upstream record it produces (`kafka::UpstreamRecord`), the
//! downstream key it reads (`kafka::DownstreamKey`), the topic names and the session
//! registry entry it writes (`keys::Names`, `keys::SessionRoute`).

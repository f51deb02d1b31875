//! gochat-testkit: what several test suites share, written once — the
//! contract every [`StateStore`](gochat_engines::state::StateStore) must keep
//! ([`state_contract`]), a REST client that speaks docs/protocol.md like a
//! client would ([`rest`]), where the dev stack is ([`stack`]), a
//! throwaway CA for TLS tests ([`pki`]) and the servers tests start for
//! themselves ([`process`]). A dev dependency only: nothing here ships.

pub mod pki;
pub mod process;
pub mod rest;
pub mod stack;
pub mod state_contract;

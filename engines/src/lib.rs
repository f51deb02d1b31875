//! gochat-engines: what the control plane and the gateway process share below
//! the product's rules — the state store ([`state`]: session registry, seq
//! cache, revocation, rate limits; Redis or in-process) and the tier-to-tier
//! log ([`bus`]: Kafka or in-process). A gateway's registry side thread needs
//! exactly these, so `gochat edge` depends on this crate and not on the
//! control plane's logic, repo or HTTP stack.

pub mod bus;
pub mod state;

/// A failure's cause, kept (not flattened to text) so logs show the whole chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

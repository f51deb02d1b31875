//! Both state stores keep one contract (the session registry, the gateway directory, revocation, rate limits): the in-process one, and Redis on the
//! dev stack.

use anyhow::Result;
use gochat_engines::state::memory::MemoryState;
use gochat_engines::state::redis::RedisState;
use gochat_proto::keys::Names;
use gochat_testkit::stack::{stack_setting, unique};
use gochat_testkit::state_contract::{gateway_directory, named_budgets, routes_and_revocation};

#[tokio::test]
async fn memory_state_keeps_the_contract() {
    let store = MemoryState::new();
    routes_and_revocation(&store, 100).await;
    gateway_directory(&store).await;
    named_budgets(&store, "budget").await;
}

#[tokio::test]
async fn redis_state_keeps_the_contract() -> Result<()> {
    let url = stack_setting("GOCHAT_TEST_REDIS_URL")?;
    let store = RedisState::connect(&url, Names::new(unique("st") + ":")).await?;
    routes_and_revocation(&store, 100).await;
    gateway_directory(&store).await;
    named_budgets(&store, "budget").await;
    Ok(())
}

//! The at-least-once consume loop shared by logic and task: handle a record,
//! commit it only once handled, and retry the same record (without committing)
//! while a dependency is down — so nothing is skipped and a crash replays it.

use std::future::Future;

use bytes::Bytes;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{Delivery, Inbox};

/// What handling a record came to.
#[derive(Debug)]
pub enum Handled {
    /// Done (or hopeless and logged): commit it.
    Done,
    /// A dependency failed: try the same record again after a pause.
    Retry(String),
}

/// Consumes `inbox` until `shutdown`, calling `handle` for each record in order.
pub async fn consume<I, F, Fut>(
    mut inbox: I,
    shutdown: CancellationToken,
    what: &'static str,
    mut handle: F,
) where
    I: Inbox,
    F: FnMut(Bytes) -> Fut,
    Fut: Future<Output = Handled>,
{
    loop {
        let Delivery { payload, position } = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = inbox.next() => match next {
                Some(d) => d,
                None => break,
            },
        };
        let mut backoff = Duration::from_millis(50);
        while let Handled::Retry(why) = handle(payload.clone()).await {
            tracing::warn!(%why, ?position, "{what}: will retry the record");
            tokio::select! {
                _ = shutdown.cancelled() => {
                    // Not committed: the next consumer of the partition replays it.
                    inbox.close().await;
                    return;
                }
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        if let Err(e) = inbox.commit(&position).await {
            tracing::warn!(error = %e, ?position, "{what}: offset not stored; the record may be replayed");
        }
    }
    inbox.close().await;
}

//! Logic's consumer of `im-upstream-topic` (group `im-logic-group`): client
//! frames from the edge, each answered on the connection it came from.
//! Frames about one conversation are handled in order; different
//! conversations concurrently ([`crate::consume`]).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use gochat_proto::frames::{ClientFrame, ServerFrame};
use gochat_proto::kafka::UpstreamRecord;
use tokio_util::sync::CancellationToken;

use super::Logic;
use crate::bus::Inbox;
use crate::consume::{Handled, Laned, consume};

/// Runs until `shutdown`.
pub async fn run(logic: Arc<Logic>, inbox: impl Inbox, shutdown: CancellationToken) {
    let in_flight = logic.consume_in_flight();
    consume(inbox, shutdown, "upstream", in_flight, |record| {
        handle(logic.clone(), record)
    })
    .await;
}

impl Laned for UpstreamRecord {
    /// The conversation: a sender's messages to it keep their order, a resend
    /// waits for its original, and pushes of one conversation leave in seq order.
    fn lane(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        match &self.frame {
            ClientFrame::Send(frame) => match (frame.group_id, frame.to_user_id) {
                (Some(group), _) => ("g", group.0).hash(&mut hasher),
                (None, Some(peer)) => (
                    "u",
                    self.from_user_id.0.min(peer.0),
                    self.from_user_id.0.max(peer.0),
                )
                    .hash(&mut hasher),
                // Invalid (refused when handled): the sender's own lane.
                (None, None) => ("s", self.from_user_id.0).hash(&mut hasher),
            },
            ClientFrame::Read {
                conversation_id, ..
            }
            | ClientFrame::Typing { conversation_id } => ("c", conversation_id).hash(&mut hasher),
            ClientFrame::Ping {} => ("s", self.from_user_id.0).hash(&mut hasher),
        }
        hasher.finish()
    }
}

async fn handle(logic: Arc<Logic>, record: UpstreamRecord) -> Handled {
    let from = record.from_user_id;
    let origin = &record.origin;
    let (result, client_msg_id) = match record.frame {
        ClientFrame::Send(frame) => {
            let cmid = frame.client_msg_id.clone();
            (
                logic.send(from, frame, Some(origin)).await.map(|_| ()),
                Some(cmid),
            )
        }
        ClientFrame::Read {
            conversation_id,
            seq_id,
        } => (
            logic.read(from, &conversation_id, seq_id).await.map(|_| ()),
            None,
        ),
        ClientFrame::Typing { conversation_id } => {
            (logic.typing(from, &conversation_id).await, None)
        }
        ClientFrame::Ping {} => (Ok(()), None),
    };
    match result {
        Ok(()) => Handled::Done,
        Err(e) if e.is_retryable() => Handled::Retry(e.to_string()),
        Err(e) => {
            let frame = ServerFrame::error(client_msg_id, e.code(), e.public_message());
            if let Err(bus) = logic.answer(origin, Bytes::from(frame.to_json())).await {
                tracing::warn!(error = %bus, "error frame not delivered");
            }
            Handled::Done
        }
    }
}

//! Logic's consumer of `im-upstream-topic` (group `im-logic-group`): client
//! frames from the edge, each answered on the connection it came from.

use std::sync::Arc;

use bytes::Bytes;
use gochat_proto::frames::{ClientFrame, ServerFrame};
use gochat_proto::kafka::UpstreamRecord;
use tokio_util::sync::CancellationToken;

use super::Logic;
use crate::bus::Inbox;
use crate::consume::{Handled, consume};
use crate::delivery::to_origin;

/// Runs until `shutdown`.
pub async fn run(logic: Arc<Logic>, inbox: impl Inbox, shutdown: CancellationToken) {
    consume(inbox, shutdown, "upstream", |d| handle(logic.clone(), d)).await;
}

async fn handle(logic: Arc<Logic>, payload: Bytes) -> Handled {
    let record: UpstreamRecord = match serde_json::from_slice(&payload) {
        Ok(r) => r,
        Err(e) => {
            // The edge validated the frame; a bad record is a bug or foreign data.
            tracing::error!(error = %e, "undecodable upstream record skipped");
            return Handled::Done;
        }
    };
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
            if let Err(bus) =
                to_origin(logic.bus.as_ref(), origin, Bytes::from(frame.to_json())).await
            {
                tracing::warn!(error = %bus, "error frame not delivered");
            }
            Handled::Done
        }
    }
}

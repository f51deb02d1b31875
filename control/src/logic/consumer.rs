//! Logic's consumer of `im-upstream-topic` (group `im-logic-group`): client
//! frames from the edge, in batches ([`crate::consume_batch`]). The sends of
//! a batch are one job on the process's [`SendQueue`] (one group commit,
//! perhaps shared with REST sends), in log order, so a
//! conversation's messages keep their order and one conversation's rate is
//! not bounded by one message's latency; read cursors and typing follow.
//! Each refusal is answered on the connection the frame came from.

use std::sync::Arc;

use bytes::Bytes;
use gochat_proto::frames::{ClientFrame, MessageType, ServerFrame};
use gochat_proto::kafka::{Origin, UpstreamRecord};
use gochat_proto::trace::TraceParent;
use opentelemetry::Context;
use opentelemetry::context::FutureExt;
use tokio_util::sync::CancellationToken;

use super::{Logic, LogicError, LogicResult, Send, SendQueue, spans};
use crate::bus::Inbox;
use crate::consume::Handled;
use crate::consume_batch::consume_batches;

/// Runs until `shutdown`.
pub async fn run(
    logic: Arc<Logic>,
    sends: SendQueue,
    inbox: impl Inbox,
    shutdown: CancellationToken,
) {
    let max_batch = logic.consume_in_flight();
    consume_batches(inbox, shutdown, "upstream", max_batch, |records| {
        handle(logic.clone(), sends.clone(), records)
    })
    .await;
}

async fn handle(
    logic: Arc<Logic>,
    queue: SendQueue,
    records: Vec<(UpstreamRecord, Option<TraceParent>)>,
) -> Handled {
    let mut sends = Vec::new();
    // Where each send's refusal would go.
    let mut answers: Vec<(Option<String>, Origin)> = Vec::new();
    let mut others = Vec::new();
    for (record, trace) in records {
        let UpstreamRecord {
            from_user_id: from,
            origin,
            frame,
            ..
        } = record;
        let span = trace.map(|t| spans::consumed(&t, frame.name(), from));
        let answered = Some(origin.clone());
        let mut send = match frame {
            ClientFrame::Send(frame) => Send::message(from, frame, answered),
            ClientFrame::Edit(change) => Send::change(from, MessageType::Edit, change, answered),
            ClientFrame::Recall(change) => {
                Send::change(from, MessageType::Recall, change, answered)
            }
            ClientFrame::Ping {} => continue,
            frame => {
                others.push((from, origin, frame, span));
                continue;
            }
        };
        send.trace = span;
        answers.push((Some(send.frame.client_msg_id.clone()), origin));
        sends.push(send);
    }
    let traces: Vec<Option<Context>> = sends.iter().map(|s| s.trace.clone()).collect();
    let results = match queue.submit(sends).await {
        Ok(results) => results,
        Err(e) => {
            // The batch comes again (with new spans): these end here.
            let why = e.to_string();
            for cx in traces.iter().flatten() {
                spans::end(cx, Some(&why));
            }
            return Handled::Retry(why);
        }
    };
    let mut refused = Vec::new();
    for (((client_msg_id, origin), result), trace) in answers.into_iter().zip(results).zip(traces) {
        if let Some(cx) = &trace {
            spans::end(
                cx,
                result.as_ref().err().map(|e| e.public_message()).as_deref(),
            );
        }
        if let Err(e) = result {
            refused.push((client_msg_id, origin, e));
        }
    }
    for (from, origin, frame, span) in others {
        let work = async {
            match frame {
                ClientFrame::Read {
                    conversation_id,
                    seq_id,
                } => logic.read(from, &conversation_id, seq_id).await.map(|_| ()),
                ClientFrame::Delivered {
                    conversation_id,
                    seq_id,
                } => logic.delivered(from, &conversation_id, seq_id).await,
                ClientFrame::Typing { conversation_id } => {
                    logic.typing(from, &conversation_id).await
                }
                ClientFrame::Send(_)
                | ClientFrame::Edit(_)
                | ClientFrame::Recall(_)
                | ClientFrame::Ping {} => Ok(()),
            }
        };
        let result: LogicResult<()> = match &span {
            Some(cx) => work.with_context(cx.clone()).await,
            None => work.await,
        };
        if let Some(cx) = &span {
            spans::end(
                cx,
                result.as_ref().err().map(|e| e.public_message()).as_deref(),
            );
        }
        match result {
            Err(e) if e.is_retryable() => return Handled::Retry(e.to_string()),
            Err(e) => refused.push((None, origin, e)),
            Ok(()) => {}
        }
    }
    for (client_msg_id, origin, e) in refused {
        answer_refusal(&logic, client_msg_id, &origin, &e).await;
    }
    Handled::Done
}

async fn answer_refusal(
    logic: &Logic,
    client_msg_id: Option<String>,
    origin: &Origin,
    e: &LogicError,
) {
    let answers_send = client_msg_id.is_some();
    let frame = ServerFrame::error(client_msg_id, e.code(), e.public_message());
    if let Err(bus) = logic
        .answer(origin, Bytes::from(frame.to_json()), answers_send)
        .await
    {
        tracing::warn!(error = %bus, "error frame not delivered");
    }
}

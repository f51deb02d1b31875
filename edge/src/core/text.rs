//! What a text frame from the client does: the connection's frame rate,
//! the core's send window (admission control), then upstream. Refusals are
//! answered here, as cheaply as they can be: under overload they are most of
//! the traffic.

use bytes::Bytes;
use gochat_proto::frames::{ClientFrame, ErrorCode, FramePeek, ServerFrame};
use gochat_proto::ids::now_millis;
use gochat_proto::kafka::{Origin, UpstreamRecord};
use gochat_proto::trace::TraceParent;

use super::Core;
use super::conn::Conn;

/// Per-connection frame rate: a fixed one-second window.
pub(super) struct RateWindow {
    pub(super) second: u64,
    pub(super) count: u32,
}

/// What handling a text frame came to, for the connection's read loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handled {
    /// Passed on, answered or refused for its own reasons.
    Done,
    /// A send refused because the core's window is full: the connection
    /// pauses its reads (see `session::frame_loop`).
    Overloaded,
}

const TOO_MANY_FRAMES: &str = "too many frames; slow down";
const OVERLOADED: &str = "the server is overloaded; resend after a second";

/// Counts a frame in the connection's one-second window: true when it is
/// over the limit.
fn over_rate(rate: &mut RateWindow, now: u64, limit: u32) -> bool {
    if rate.second != now {
        *rate = RateWindow {
            second: now,
            count: 0,
        };
    }
    rate.count += 1;
    rate.count > limit
}

pub(super) fn on_text(
    core: &Core,
    conn: &Conn,
    text: &str,
    rate: &mut RateWindow,
    now: u64,
) -> Handled {
    if core.window.borrow_mut().is_full(now) {
        // Under overload most sends are refused: the refusal must cost far
        // less than the send it turns away, or refusing starves the commits
        // it protects of CPU. A peek at type and id, not a parse.
        if let Some(client_msg_id) = FramePeek::send_id(text) {
            let code = if over_rate(rate, now, core.shared.config.ws.frames_per_second) {
                ErrorCode::RateLimited
            } else {
                ErrorCode::Overloaded
            };
            return refuse_send(core, conn, Some(client_msg_id.into_owned()), code);
        }
    }
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            let message = if e.is_data() {
                format!("unknown frame: {e}")
            } else {
                "invalid JSON".to_owned()
            };
            reply_error(core, conn, None, ErrorCode::BadRequest, &message);
            return Handled::Done;
        }
    };
    if let ClientFrame::Ping {} = frame {
        conn.deliver(
            Bytes::from_static(br#"{"type":"pong"}"#),
            core.shared.config.ws.max_outbound_bytes,
        );
        return Handled::Done;
    }
    // Sends, edits and recalls are answered (`ack` or `error`, keyed
    // `a<conn>`): each takes a slot of the window until then.
    let client_msg_id = frame.acked_id().map(str::to_owned);
    let is_send = client_msg_id.is_some();
    if over_rate(rate, now, core.shared.config.ws.frames_per_second) {
        return refuse_send(core, conn, client_msg_id, ErrorCode::RateLimited);
    }
    if is_send && !core.window.borrow_mut().try_take(now) {
        return refuse_send(core, conn, client_msg_id, ErrorCode::Overloaded);
    }
    let span = core
        .shared
        .tracer
        .as_ref()
        .map(|tracer| super::spans::upstream(tracer, core, conn, frame.name()));
    let trace = span.as_ref().and_then(TraceParent::of);
    let record = UpstreamRecord {
        version: gochat_proto::WIRE_VERSION.into(),
        from_user_id: conn.user,
        device_id: conn.device.to_string(),
        origin: Origin {
            gateway_id: core.shared.config.gateway_id.clone(),
            core: core.index,
            conn_id: conn.id,
        },
        timestamp: now_millis(),
        frame,
    };
    let sent = serde_json::to_vec(&record)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            core.upstream
                .send(&conn.user.to_string(), bytes, trace.as_ref())
                .map_err(|e| e.to_string())
        });
    if let Some(span) = span {
        super::spans::queued(span, sent.as_ref().err().map(String::as_str));
    }
    if let Err(e) = sent {
        tracing::warn!(error = %e, "upstream produce failed");
        if is_send {
            core.give_back_slot();
        }
        reply_error(
            core,
            conn,
            client_msg_id,
            ErrorCode::Internal,
            "temporarily unavailable; retry",
        );
    }
    Handled::Done
}

/// Answers a frame turned away for the rate (`RateLimited`) or a full window
/// (`Overloaded`).
fn refuse_send(
    core: &Core,
    conn: &Conn,
    client_msg_id: Option<String>,
    code: ErrorCode,
) -> Handled {
    if code == ErrorCode::Overloaded {
        reply_error(core, conn, client_msg_id, code, OVERLOADED);
        return Handled::Overloaded;
    }
    reply_error(core, conn, client_msg_id, code, TOO_MANY_FRAMES);
    Handled::Done
}

pub(super) fn reply_error(
    core: &Core,
    conn: &Conn,
    client_msg_id: Option<String>,
    code: ErrorCode,
    message: &str,
) {
    let frame = ServerFrame::error(client_msg_id, code, message).to_json();
    conn.deliver(Bytes::from(frame), core.shared.config.ws.max_outbound_bytes);
}

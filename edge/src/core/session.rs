//! One connection's task: the upgrade (with a deadline), the token and origin
//! checks, then the frame loop — wait for readability or for output, read into
//! a buffer borrowed from the core, decode, answer pings locally, send the
//! rest upstream, and write everything queued in one write.

use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::Core;
use super::conn::{Conn, SLOW_READER};
use super::text::{Handled, RateWindow, on_text, reply_error};
use super::transport::Transport;
use crate::ws::codec::{self, CloseRequest, Codec, Event, close_code};
use crate::ws::handshake::{self, MAX_REQUEST, Refusal, Upgrade};
use futures::future::{Either, select};
use gochat_proto::frames::ErrorCode;
use gochat_proto::ids::{Id, now_millis};
use gochat_proto::keys::SessionRoute;

/// Serves one accepted connection (TCP, or TLS over it) to the end.
///
/// The task's functions are written as `fn ... -> impl Future` around an
/// `async move` block, not as `async fn`: an `async fn` keeps a second copy
/// of each argument in its state for its whole life (rustc moves arguments
/// into locals), and every connection would carry those copies while it idles.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments twice (see `serve`)"
)]
pub(super) fn serve<T: Transport>(
    core: Rc<Core>,
    mut stream: T,
    peer: IpAddr,
) -> impl Future<Output = ()> {
    async move {
        let slot = UpgradeSlot(&core);
        if !core.admit_ip(peer) {
            let _ = stream.write_all(Refusal::Unavailable.response()).await;
            return;
        }
        upgrade_and_run(&core, &mut stream, slot).await;
        core.release_ip(peer);
    }
}

/// One of the core's upgrades under way (counted by the accept loop, see
/// `UPGRADES_IN_FLIGHT`): given back when dropped, however the upgrade ends.
struct UpgradeSlot<'a>(&'a Core);

impl Drop for UpgradeSlot<'_> {
    fn drop(&mut self) {
        self.0.upgrade_finished();
    }
}

#[allow(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments twice (see `serve`)"
)]
fn upgrade_and_run<'a, T: Transport>(
    core: &'a Rc<Core>,
    stream: &'a mut T,
    slot: UpgradeSlot<'a>,
) -> impl Future<Output = ()> + 'a {
    async move {
        // A connection's task is as large as its largest await, for its
        // whole life, and most connections spend that life idle in `wait`.
        // The upgrade is by far the largest await and runs once: boxed, it
        // costs its memory only while it runs.
        let upgraded = Box::pin(accept(core, stream)).await;
        drop(slot);
        let Some((mut session, closing)) = upgraded.map(|up| Session::start(core, up)) else {
            return;
        };
        frame_loop(&mut session, stream, closing).await;
        let conn = &session.conn;
        if !core.shared.config.ws.echo {
            core.registry.unregister(conn.user, &conn.device, conn.id);
        }
        core.remove(conn.id);
    }
}

/// The upgrade: request, checks, table slot, 101. `None` when refused or gone.
async fn accept<T: Transport>(core: &Rc<Core>, stream: &mut T) -> Option<(Rc<Conn>, Vec<u8>)> {
    let ws = &core.shared.config.ws;
    let deadline = Duration::from_millis(ws.handshake_timeout_ms);
    let (upgrade, leftover) =
        match monoio::time::timeout(deadline, read_upgrade(stream, &ws.path)).await {
            Err(_) => {
                crate::ops::upgrade("timeout");
                return None;
            }
            Ok(Err(None)) => {
                crate::ops::upgrade("gone");
                return None;
            }
            Ok(Err(Some(refusal))) => return refuse(stream, refusal).await,
            Ok(Ok(parsed)) => parsed,
        };
    let (user, device, token) = if ws.echo {
        (Id(0), "echo".to_owned(), 0)
    } else {
        match authorize(core, &upgrade).await {
            Ok(who) => who,
            Err(refusal) => return refuse(stream, refusal).await,
        }
    };
    let generation = u64::try_from(now_millis()).unwrap_or(0);
    let Some(conn) = core.add(user, &device, generation, token) else {
        return refuse(stream, Refusal::Unavailable).await;
    };
    // Registered, and in its group rooms, before the 101: once a client's
    // upgrade completes, messages sent to it are routed to it (no window
    // where it looks offline), and the pull it starts with covers whatever
    // was sent before.
    if !ws.echo {
        core.rooms.borrow_mut().start_fill(conn.id);
        let filled = core
            .registry
            .register_and_wait(user, &device, route(core, &conn))
            .await;
        match filled {
            Ok(Some(groups)) => core.rooms.borrow_mut().finish_fill(conn.id, &groups),
            Ok(None) => {
                tracing::debug!(%user, "a valid token for no such user; upgrade refused");
                core.registry.unregister(user, &device, conn.id);
                core.remove(conn.id);
                return refuse(stream, Refusal::Unauthorized("unknown user")).await;
            }
            Err(e) => {
                // Without its rooms the connection would miss its large
                // groups' messages: the client retries the upgrade instead.
                tracing::warn!(error = %e, %user, "group rooms not filled; upgrade refused");
                core.registry.unregister(user, &device, conn.id);
                core.remove(conn.id);
                return refuse(stream, Refusal::Unavailable).await;
            }
        }
    }
    let (written, _) = stream.write_all(handshake::accept(&upgrade.key)).await;
    crate::ops::upgrade(if written.is_ok() { "ok" } else { "gone" });
    if written.is_err() {
        if !ws.echo {
            core.registry.unregister(user, &device, conn.id);
        }
        core.remove(conn.id);
        return None;
    }
    Some((conn, leftover))
}

async fn refuse<T, S: Transport>(stream: &mut S, refusal: Refusal) -> Option<T> {
    crate::ops::upgrade(refusal.status());
    let _ = stream.write_all(refusal.response()).await;
    None
}

/// Reads until a complete upgrade request. `Err(None)`: the peer went away.
async fn read_upgrade<T: Transport>(
    stream: &mut T,
    path: &str,
) -> Result<(Upgrade, Vec<u8>), Option<Refusal>> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= MAX_REQUEST {
                return Err(Some(Refusal::TooLarge));
            }
            buf.reserve(1024);
        }
        let (result, read) = stream.read(buf).await;
        buf = read;
        match result {
            Ok(0) | Err(_) => return Err(None),
            Ok(_) => {}
        }
        match handshake::parse(&buf, path) {
            Ok(Some((upgrade, used))) => return Ok((upgrade, buf[used..].to_vec())),
            Ok(None) => {}
            Err(refusal) => return Err(Some(refusal)),
        }
    }
}

/// Origin, token, revocation: all before the 101, so a refused client never
/// holds a WebSocket.
/// Who the upgrade is for: the user, the device, and the token's tag.
async fn authorize(core: &Core, upgrade: &Upgrade) -> Result<(Id, String, u64), Refusal> {
    if core.draining.get() {
        return Err(Refusal::Unavailable);
    }
    if !handshake::origin_allowed(
        upgrade.origin.as_deref(),
        &core.shared.config.ws.allowed_origins,
    ) {
        return Err(Refusal::Forbidden("origin not allowed"));
    }
    let token = upgrade
        .token
        .as_deref()
        .ok_or(Refusal::Unauthorized("missing token"))?;
    let claims = core
        .shared
        .verifier
        .verify(token)
        .ok_or(Refusal::Unauthorized("invalid or expired token"))?;
    match core.registry.is_revoked(&claims.jti).await {
        Ok(false) => {}
        Ok(true) => return Err(Refusal::Unauthorized("token revoked")),
        // Fail closed: a revoked token must not get in while Redis is away.
        Err(e) => {
            tracing::warn!(error = %e, "revocation check failed; refusing the upgrade");
            return Err(Refusal::Unavailable);
        }
    }
    let user = claims
        .user_id()
        .ok_or(Refusal::Unauthorized("invalid token"))?;
    let tag = gochat_proto::auth::token_tag(&claims.jti);
    Ok((user, upgrade.device_id.clone().unwrap_or(claims.did), tag))
}

pub(super) fn route(core: &Core, conn: &Conn) -> SessionRoute {
    SessionRoute {
        gateway_id: core.shared.config.gateway_id.clone(),
        core: core.index,
        conn_id: conn.id,
        generation: conn.generation,
        seen_at: now_millis(),
        token: conn.token,
    }
}

/// One upgraded connection's inbound side: its decoder, the frames it answers
/// itself, its rate window and when its registry entry was last refreshed.
struct Session<'a> {
    core: &'a Core,
    conn: Rc<Conn>,
    codec: Codec,
    /// Frames the connection answers itself (pongs; everything in echo mode),
    /// written ahead of the queued JSON frames: a buffer borrowed from the
    /// core while there are any (see `control_buffer`), none while idle.
    control: Vec<u8>,
    rate: RateWindow,
    registered_at: u64,
    /// Not read again before this: a send was just refused as overloaded.
    read_pause: Option<Instant>,
}

impl<'a> Session<'a> {
    /// The session of a connection just upgraded, and what the bytes the
    /// client sent right behind its upgrade request asked for.
    fn start(
        core: &'a Core,
        (conn, mut leftover): (Rc<Conn>, Vec<u8>),
    ) -> (Self, Option<CloseRequest>) {
        let mut session = Self {
            core,
            conn,
            codec: Codec::default(),
            control: Vec::new(),
            rate: RateWindow {
                second: 0,
                count: 0,
            },
            registered_at: core.now(),
            read_pause: None,
        };
        let closing = session.ingest(&mut leftover);
        (session, closing)
    }

    /// Decodes and handles what the client sent (unmasking it in place);
    /// `Some` ends the connection with that close frame. The codec's
    /// contract says which close wins and what a violation leaves handled.
    fn ingest(&mut self, input: &mut [u8]) -> Option<CloseRequest> {
        let core = self.core;
        let max_message = core.shared.config.ws.max_message_bytes;
        core.metrics.bytes_in.add(input.len() as u64);
        // One clock read per read, not per frame (the clock counts seconds).
        let now = core.now();
        // Out of the session while it hands events to it (it is the session's
        // own state, and an empty codec is free to make).
        let mut codec = std::mem::take(&mut self.codec);
        let mut frames = 0;
        let close = codec.feed(input, max_message, |event| {
            frames += 1;
            self.handle(event, now)
        });
        self.codec = codec;
        core.metrics.frames_in.add(frames);
        core.poller.progressed(frames);
        // Borrowed for frames that wrote nothing (an echoed pong): back now,
        // not kept through the idle wait.
        if self.control.is_empty() && self.control.capacity() > 0 {
            core.give_buffer(std::mem::take(&mut self.control));
        }
        close
    }

    /// Anything to write: the session's own frames or the connection's queue?
    fn has_output(&self) -> bool {
        !self.control.is_empty() || self.conn.has_output()
    }

    /// Handles one decoded event; returns a close request when the connection ends.
    fn handle(&mut self, event: Event<'_>, now: u64) -> Option<CloseRequest> {
        let (core, conn) = (self.core, &*self.conn);
        conn.last_seen.set(now);
        if core.shared.config.ws.echo {
            return echo(event, control_buffer(core, &mut self.control));
        }
        // Heartbeats also keep the registry entry alive, a third of its TTL at a time.
        if now.saturating_sub(self.registered_at) * 3 >= core.shared.config.session_ttl_secs {
            self.registered_at = now;
            core.registry
                .register(conn.user, &conn.device, route(core, conn));
        }
        match event {
            Event::Text(text) => {
                if on_text(core, conn, text, &mut self.rate, now) == Handled::Overloaded {
                    self.read_pause = Some(Instant::now() + OVERLOAD_READ_PAUSE);
                    core.wait_for_room(conn);
                }
            }
            Event::Binary(_) => reply_error(
                core,
                conn,
                None,
                ErrorCode::BadRequest,
                "frames are JSON text",
            ),
            Event::Ping(payload) => {
                codec::encode_pong(payload, control_buffer(core, &mut self.control));
            }
            Event::Pong => {}
            Event::Close(received) => return Some(echo_close(received)),
        }
        None
    }

    /// One write: the session's own frames, then every queued JSON frame,
    /// then the close frame. Most writes fit the socket's buffer whole and
    /// are done here; `Some` is the rest, for the caller to wait out.
    fn write_now<T: Transport>(
        &mut self,
        stream: &mut T,
        close: Option<CloseRequest>,
    ) -> std::io::Result<Option<Vec<u8>>> {
        // The control frames' buffer, when there is one, is the write's: it
        // goes back to the core with it, and the idle connection holds none.
        let mut out = if self.control.capacity() > 0 {
            std::mem::take(&mut self.control)
        } else {
            self.core.take_buffer()
        };
        let metrics = &self.core.metrics;
        metrics.outbox(self.conn.queued_bytes());
        let frames = self.conn.take_outbox();
        metrics.frames_out.add(frames.len() as u64);
        for frame in frames {
            codec::encode_text(&frame, &mut out);
        }
        if let Some(close) = close {
            codec::encode_close(close.code, close.reason, &mut out);
            crate::ops::close_sent(close.code, close.reason == SLOW_READER);
        }
        metrics.bytes_out.add(out.len() as u64);
        match stream.write_now(&out) {
            Ok(sent) if sent == out.len() => {
                self.core.give_buffer(out);
                Ok(None)
            }
            Ok(sent) => {
                out.drain(..sent);
                Ok(Some(out))
            }
            Err(e) => {
                self.core.give_buffer(out);
                Err(e)
            }
        }
    }
}

/// The session's control buffer, borrowed from the core on first use: a
/// connection's control frames go out in the write that follows the read
/// they answer (no await between), which gives the buffer back. Kept per
/// connection, it would pin what its largest burst needed for its whole life.
fn control_buffer<'b>(core: &Core, control: &'b mut Vec<u8>) -> &'b mut Vec<u8> {
    if control.capacity() == 0 {
        *control = core.take_buffer();
    }
    control
}

/// What waiting on a connection brought.
enum Wake {
    /// Bytes from the client, in a buffer borrowed from the core.
    Input(Vec<u8>),
    /// Output or a close request is queued.
    Output,
    /// The client went away or the socket failed.
    Gone,
}

/// Waits for the client or for output. The read buffer is borrowed only once
/// the socket is readable, so an idle connection holds none.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments twice (see `serve`)"
)]
fn wait<'a, T: Transport>(
    core: &'a Core,
    conn: &'a Conn,
    stream: &'a mut T,
) -> impl Future<Output = Wake> + 'a {
    async move {
        {
            let readable = std::pin::pin!(stream.readable());
            let woke = std::pin::pin!(conn.wake_up());
            if let Either::Right(_) = select(readable, woke).await {
                return Wake::Output;
            }
        }
        let (result, buffer) = stream.read(core.take_buffer()).await;
        match result {
            Ok(read) if read > 0 => Wake::Input(buffer),
            _ => {
                core.give_buffer(buffer);
                Wake::Gone
            }
        }
    }
}

/// How long, at most, a connection is not read after one of its sends was
/// refused as overloaded. A refusal costs the core a read and a write, about
/// what the send would have cost to pass on: a client that keeps sending into
/// a full window would take the CPU the commits need. So the connection
/// queues for room (`Core::wait_for_room`) and is read again when an answer
/// frees a slot for it, or after this pause if none does. Not reading is free;
/// what the client sends meanwhile waits in its socket and is read in one go.
/// Nothing is lost: frames are read late, not dropped.
const OVERLOAD_READ_PAUSE: Duration = Duration::from_secs(1);

/// Frames in, frames out, until either side closes.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments twice (see `serve`)"
)]
fn frame_loop<'a, 's, T: Transport>(
    session: &'a mut Session<'s>,
    stream: &'a mut T,
    mut closing: Option<CloseRequest>,
) -> impl Future<Output = ()> + 'a {
    async move {
        loop {
            // In a block of its own: what was requested is not kept across the wait.
            {
                let requested = closing.or_else(|| session.conn.close_requested());
                if requested.is_some() || session.has_output() {
                    let written = match session.write_now(stream, requested) {
                        Ok(None) => Ok(()),
                        Ok(Some(rest)) => {
                            // Boxed: rare, and larger than the idle wait (see
                            // `upgrade_and_run`).
                            let (result, rest) = Box::pin(stream.write_all(rest)).await;
                            session.core.give_buffer(rest);
                            result
                        }
                        Err(e) => Err(e),
                    };
                    if written.is_err() || requested.is_some() {
                        return;
                    }
                    continue;
                }
            }
            if let Some(until) = session.read_pause.take() {
                // Output still goes out during the pause; reading resumes after it.
                let left = until.saturating_duration_since(Instant::now());
                // Boxed: monoio's sleep is several times the idle wait, and a
                // connection pauses rarely (see `upgrade_and_run`).
                let pause = Box::pin(monoio::time::sleep(left));
                let woke = std::pin::pin!(session.conn.wake_up());
                if let Either::Right(_) = select(pause, woke).await
                    && !session.conn.take_room()
                {
                    session.read_pause = Some(until);
                }
                continue;
            }
            closing = match wait(session.core, &session.conn, stream).await {
                Wake::Input(mut buffer) => {
                    let close = session.ingest(&mut buffer);
                    session.core.give_buffer(buffer);
                    close
                }
                Wake::Output => None,
                Wake::Gone => return,
            };
        }
    }
}

/// Protocol test mode: messages come back as they went, pings get pongs.
fn echo(event: Event<'_>, out: &mut Vec<u8>) -> Option<CloseRequest> {
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    match event {
        Event::Text(text) => codec::encode(OpCode::Data(Data::Text), text.as_bytes(), out),
        Event::Binary(data) => codec::encode(OpCode::Data(Data::Binary), data, out),
        Event::Ping(payload) => codec::encode_pong(payload, out),
        Event::Pong => {}
        Event::Close(received) => return Some(echo_close(received)),
    }
    None
}

/// The answer to the client's close frame: its code back (RFC 6455 §5.5.1).
fn echo_close(received: Option<(u16, &str)>) -> CloseRequest {
    let code = received.map_or(close_code::NORMAL, |(code, _)| code);
    CloseRequest { code, reason: "" }
}

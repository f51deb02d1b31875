//! The connection state machine end to end on a real core, under both monoio
//! drivers: upgrade, token check, ping/pong, a client frame reaching upstream,
//! a downstream frame reaching the client, heartbeat-free close, and a protocol
//! violation closing with its code once the valid frames that came in the same
//! bytes are handled, the window of unanswered sends refusing with
//! `overloaded` until an answer frees a slot, and every connection registered
//! again when the registry lost the gateway's entries (read from the socket, or left over behind the upgrade
//! request). The client is a plain blocking socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gochat_edge::backend::{
    CoreLinks, Downstream, DownstreamItem, Registry, RegistryError, Upstream, UpstreamError,
};
use gochat_edge::config::{DriverChoice, EdgeConfig};
use gochat_edge::{EdgeListeners, Shutdown};
use gochat_proto::auth::Claims;
use gochat_proto::ids::Id;
use gochat_proto::kafka::DownstreamKey;
use gochat_proto::keys::{RouteChange, SessionRoute};
use gochat_proto::trace::TraceParent;

const SECRET: &str = "driver-test-secret-driver-test-secret";

/// Records upstream sends; serves downstream frames pushed by the test.
#[derive(Default)]
struct TestLinks {
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
    down: Mutex<Option<flume::Receiver<(DownstreamKey, Bytes)>>>,
}

struct TestUpstream(Arc<Mutex<Vec<Vec<u8>>>>);
impl Upstream for TestUpstream {
    fn send(&self, _: &str, record: Vec<u8>, _: Option<&TraceParent>) -> Result<(), UpstreamError> {
        self.0
            .lock()
            .map_err(|_| UpstreamError::Unavailable("poisoned".into()))?
            .push(record);
        Ok(())
    }
    fn flush(&self, _: Duration) {}
}

struct TestDownstream(flume::r#async::RecvStream<'static, (DownstreamKey, Bytes)>);
impl Downstream for TestDownstream {
    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut Vec<DownstreamItem>) -> Poll<bool> {
        use futures::Stream;
        match std::pin::Pin::new(&mut self.0).poll_next(cx) {
            Poll::Ready(Some((key, frame))) => {
                out.push((key, frame, None));
                Poll::Ready(true)
            }
            Poll::Ready(None) => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl CoreLinks for TestLinks {
    fn upstream(&self, _: u32) -> Box<dyn Upstream> {
        Box::new(TestUpstream(self.sent.clone()))
    }
    fn downstream(&self, _: u32) -> Box<dyn Downstream> {
        let rx = self.down.lock().ok().and_then(|mut d| d.take());
        let rx = rx.unwrap_or_else(|| flume::unbounded().1);
        Box::new(TestDownstream(rx.into_stream()))
    }
}

/// Remembers the last registered route and the gateway's announcement, and
/// counts registrations; `lost` makes the next directory check say the
/// gateway is gone (a registry that restarted empty). The test user is in
/// group 88.
#[derive(Default)]
struct TestRegistry {
    route: Mutex<Option<SessionRoute>>,
    announced: Mutex<Option<(String, u32)>>,
    lost: std::sync::atomic::AtomicBool,
    registrations: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl Registry for TestRegistry {
    async fn register(
        &self,
        _: Id,
        _: &str,
        route: &SessionRoute,
        _: u64,
    ) -> Result<RouteChange, RegistryError> {
        *self
            .route
            .lock()
            .map_err(|_| RegistryError("poisoned".into()))? = Some(route.clone());
        self.registrations.fetch_add(1, SeqCst);
        Ok(RouteChange::Registered)
    }
    async fn unregister(&self, _: Id, _: &str, _: u64) -> Result<(), RegistryError> {
        Ok(())
    }
    async fn is_revoked(&self, jti: &str) -> Result<bool, RegistryError> {
        Ok(jti == "revoked")
    }
    async fn kick(&self, _: &SessionRoute, _: Bytes) -> Result<(), RegistryError> {
        Ok(())
    }
    async fn presence_changed(&self, _: Id) -> Result<(), RegistryError> {
        Ok(())
    }
    async fn groups_of(&self, user: Id) -> Result<Option<Vec<i64>>, RegistryError> {
        // User 42 exists and is in group 88; nobody else exists.
        Ok((user == Id(42)).then(|| vec![88]))
    }
    async fn announce_gateway(&self, id: &str, cores: u32, _: u64) -> Result<(), RegistryError> {
        *self
            .announced
            .lock()
            .map_err(|_| RegistryError("poisoned".into()))? = Some((id.to_owned(), cores));
        Ok(())
    }
    async fn gateway_listed(&self, _: &str) -> Result<bool, RegistryError> {
        Ok(!self.lost.swap(false, SeqCst))
    }
}

fn token(jti: &str) -> String {
    let now = gochat_proto::auth::unix_secs();
    let claims = Claims {
        sub: "42".into(),
        exp: now + 600,
        iat: now,
        jti: jti.into(),
        did: "test".into(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap_or_default()
}

/// Connects and sends the upgrade request followed by `then`, in one write;
/// returns the socket and the response head.
fn upgrade_then(
    addr: std::net::SocketAddr,
    token: &str,
    then: &[u8],
) -> std::io::Result<(TcpStream, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = format!(
        "GET /ws?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .into_bytes();
    request.extend_from_slice(then);
    s.write_all(&request)?;
    // Byte by byte up to the blank line: frames may follow in the same segment.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        s.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    Ok((s, String::from_utf8_lossy(&head).into_owned()))
}

fn upgrade(addr: std::net::SocketAddr, token: &str) -> std::io::Result<(TcpStream, String)> {
    upgrade_then(addr, token, &[])
}

fn masked_text(payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut out = vec![0x81, 0x80 | payload.len() as u8];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Reads one unmasked server frame: (opcode, payload).
fn read_frame(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head)?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b)?;
            usize::from(u16::from_be_bytes(b))
        }
        n => usize::from(n),
    };
    let mut payload = vec![0; len];
    s.read_exact(&mut payload)?;
    Ok((head[0] & 0x0f, payload))
}

fn exercise(driver: DriverChoice) -> std::io::Result<()> {
    let mut config = EdgeConfig {
        gateway_id: "t".into(),
        cores: 1,
        driver,
        pin_cores: false,
        ..EdgeConfig::default()
    };
    config.auth.jwt_secret = SECRET.into();
    config.ws.max_unanswered_sends = 2;
    // The directory is checked every third of this (at least every second).
    config.session_ttl_secs = 3;
    let any = "127.0.0.1:0".parse().map_err(std::io::Error::other)?;
    let listeners = EdgeListeners::bind(any, 1)?.with_ops(any)?;
    let addr = listeners.local_addr()?;
    let (down_tx, down_rx) = flume::unbounded();
    let links = Arc::new(TestLinks {
        down: Mutex::new(Some(down_rx)),
        ..TestLinks::default()
    });
    let registry = Arc::new(TestRegistry::default());
    let (mut trigger, shutdown) = Shutdown::new();
    let edge = gochat_edge::run(config, listeners, links.clone(), registry.clone(), shutdown)
        .map_err(std::io::Error::other)?;
    let ops = edge
        .ops_addr
        .ok_or_else(|| std::io::Error::other("no ops address"))?;
    assert!(http_get(ops, "/readyz")?.starts_with("HTTP/1.1 200"));

    // Refused before the upgrade.
    let (_, answer) = upgrade(addr, "garbage")?;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let (_, answer) = upgrade(addr, &token("revoked"))?;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    let (mut s, answer) = upgrade(addr, &token("ok"))?;
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    s.write_all(&masked_text(br#"{"type":"ping"}"#))?;
    assert_eq!(read_frame(&mut s)?, (1, br#"{"type":"pong"}"#.to_vec()));
    s.write_all(&masked_text(br#"{"type":"typing","conversation_id":"g1"}"#))?;
    s.write_all(&masked_text(b"{oops"))?;
    let (_, error) = read_frame(&mut s)?;
    assert!(String::from_utf8_lossy(&error).contains("bad_request"));
    let sent = links.sent.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(sent.len(), 1, "the typing frame went upstream");
    assert!(String::from_utf8_lossy(&sent[0]).contains(r#""from_user_id":"42""#));

    // A downstream frame for this connection reaches it.
    // Registration happens on the side thread: give it a moment under load.
    let mut route = None;
    for _ in 0..200 {
        route = registry.route.lock().ok().and_then(|r| r.clone());
        if route.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let route = route.ok_or_else(|| std::io::Error::other("not registered"))?;
    down_tx
        .send((
            DownstreamKey::to(vec![route.conn_id]),
            Bytes::from_static(br#"{"type":"notify","conversation_id":"g1","seq_id":3}"#),
        ))
        .map_err(std::io::Error::other)?;
    let (_, frame) = read_frame(&mut s)?;
    assert!(String::from_utf8_lossy(&frame).contains("notify"));
    group_rooms(&down_tx, &mut s, route.conn_id)?;
    send_window(&down_tx, &mut s, route.conn_id, &links.sent)?;
    registered_again_after_a_loss(&registry)?;
    let announced = registry.announced.lock().ok().and_then(|a| a.clone());
    assert_eq!(
        announced,
        Some(("t".to_owned(), 1)),
        "announced before serving"
    );

    // A valid frame, then an unmasked one (a protocol error), in one read:
    // the valid one is handled, then the connection closes with 1002.
    let mut valid_then_bad = masked_text(br#"{"type":"ping"}"#);
    valid_then_bad.extend_from_slice(&[0x81, 0x01, b'x']);
    s.write_all(&valid_then_bad)?;
    assert_handled_then_closed(&mut s)?;
    // The same bytes right behind the upgrade request: the same outcome.
    let (mut s, answer) = upgrade_then(addr, &token("ok"), &valid_then_bad)?;
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    assert_handled_then_closed(&mut s)?;

    let metrics = http_get(ops, "/metrics")?;
    assert!(
        metrics.contains(r#"gochat_edge_upgrades_total{outcome="401"} 2"#),
        "{metrics}"
    );
    trigger.fire();
    // A draining gateway is not ready: load balancers stop sending to it.
    let readiness = http_get(ops, "/readyz")?;
    assert!(
        readiness.starts_with("HTTP/1.1 503") && readiness.ends_with("draining"),
        "{readiness}"
    );
    edge.join();
    Ok(())
}

/// One GET on a fresh connection; the whole answer.
fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer)
}

type DownTx = flume::Sender<(DownstreamKey, Bytes)>;

/// The connection is in group 88's room from the start (its fill); records
/// keyed by the room reach it unless it is the skipped sender; after a
/// leave record they do not, after a join record for 99 those of 99 do.
fn group_rooms(down: &DownTx, s: &mut TcpStream, conn: u64) -> std::io::Result<()> {
    let send = |key: DownstreamKey, frame: &'static [u8]| {
        down.send((key, Bytes::from_static(frame)))
            .map_err(std::io::Error::other)
    };
    let room = |group, skip| DownstreamKey::Room { group, skip };
    let membership = |group, joined| DownstreamKey::Membership {
        group,
        conns: vec![conn],
        joined,
    };
    send(room(88, None), b"room-88")?;
    assert_eq!(read_frame(s)?, (1, b"room-88".to_vec()));
    send(room(88, Some(conn)), b"skipped")?;
    send(room(77, None), b"not-a-member")?;
    send(membership(88, false), b"")?;
    send(room(88, None), b"after-leave")?;
    send(membership(99, true), b"")?;
    send(room(99, None), b"room-99")?;
    send(DownstreamKey::to(vec![conn]), b"direct")?;
    assert_eq!(read_frame(s)?, (1, b"room-99".to_vec()));
    assert_eq!(read_frame(s)?, (1, b"direct".to_vec()));
    Ok(())
}

/// With two sends unanswered the third is refused as `overloaded` and not
/// passed on; an answer (`a` key) reaches the client, frees a slot and wakes
/// the refused connection, which was not read meanwhile.
fn send_window(
    down: &DownTx,
    s: &mut TcpStream,
    conn: u64,
    sent: &Mutex<Vec<Vec<u8>>>,
) -> std::io::Result<()> {
    let upstream = || sent.lock().map(|v| v.len()).unwrap_or_default();
    let send = |s: &mut TcpStream, id: &str| {
        let frame =
            format!(r#"{{"type":"send","client_msg_id":"{id}","to_user_id":"7","content":"x"}}"#);
        s.write_all(&masked_text(frame.as_bytes()))
    };
    let before = upstream();
    send(s, "w1")?;
    send(s, "w2")?;
    send(s, "w3")?;
    let (_, refusal) = read_frame(s)?;
    let refusal = String::from_utf8_lossy(&refusal).into_owned();
    assert!(
        refusal.contains(r#""code":"overloaded""#) && refusal.contains(r#""client_msg_id":"w3""#),
        "{refusal}"
    );
    assert_eq!(upstream() - before, 2, "the refused send stayed here");
    down.send((
        DownstreamKey::Answer { conn },
        Bytes::from_static(b"ack-w1"),
    ))
    .map_err(std::io::Error::other)?;
    assert_eq!(read_frame(s)?, (1, b"ack-w1".to_vec()));
    send(s, "w4")?;
    send(s, "w5")?;
    let (_, refusal) = read_frame(s)?;
    let refused_at = std::time::Instant::now();
    assert!(String::from_utf8_lossy(&refusal).contains(r#""client_msg_id":"w5""#));
    assert_eq!(upstream() - before, 3, "w4 took the freed slot");
    // After an `overloaded` refusal the connection is not read while the
    // window stays full: the ping waits in the socket...
    s.write_all(&masked_text(br#"{"type":"ping"}"#))?;
    s.set_read_timeout(Some(Duration::from_millis(400)))?;
    let early = read_frame(s);
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    assert!(
        early.is_err(),
        "answered {:?} after the refusal: no read pause",
        refused_at.elapsed()
    );
    // ...until an answer frees a slot for it, well before the pause runs out.
    down.send((
        DownstreamKey::Answer { conn },
        Bytes::from_static(b"ack-w2"),
    ))
    .map_err(std::io::Error::other)?;
    let answered_at = std::time::Instant::now();
    assert_eq!(read_frame(s)?, (1, b"ack-w2".to_vec()));
    assert_eq!(read_frame(s)?, (1, br#"{"type":"pong"}"#.to_vec()));
    assert!(
        answered_at.elapsed() < Duration::from_millis(500),
        "read {:?} after a slot freed",
        answered_at.elapsed()
    );
    // A full window (w4 and w6 unanswered) turns away sends only.
    send(s, "w6")?;
    s.write_all(&masked_text(br#"{"type":"typing","conversation_id":"g1"}"#))?;
    for _ in 0..200 {
        if upstream() - before == 5 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(std::io::Error::other(
        "a typing frame was held back by the send window",
    ))
}

/// The registry says the gateway's announcement is gone: the open connection
/// is registered again without any activity of its own.
fn registered_again_after_a_loss(registry: &TestRegistry) -> std::io::Result<()> {
    let before = registry.registrations.load(SeqCst);
    registry.lost.store(true, SeqCst);
    for _ in 0..500 {
        if registry.registrations.load(SeqCst) > before {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(std::io::Error::other(
        "not registered again after the registry lost the gateway",
    ))
}

/// The pong for the valid ping, then the close frame with 1002.
fn assert_handled_then_closed(s: &mut TcpStream) -> std::io::Result<()> {
    assert_eq!(read_frame(s)?, (1, br#"{"type":"pong"}"#.to_vec()));
    let (opcode, payload) = read_frame(s)?;
    assert_eq!((opcode, &payload[..2]), (8, &1002u16.to_be_bytes()[..]));
    Ok(())
}

#[test]
fn connection_state_machine_on_io_uring() -> std::io::Result<()> {
    if !monoio::utils::detect_uring() {
        eprintln!("io_uring unavailable on this kernel; the legacy test covers the logic");
        return Ok(());
    }
    exercise(DriverChoice::IoUring)
}

#[test]
fn connection_state_machine_on_the_legacy_driver() -> std::io::Result<()> {
    exercise(DriverChoice::Legacy)
}

//! What a connection's bytes travel on: the TCP socket itself, or TLS over
//! it (`wss://`, with `ws.tls`). The session is generic over [`Transport`],
//! so the upgrade and the frame loop are one code path, and a plain
//! connection's task is exactly as small as before TLS existed.
//!
//! TLS is rustls driven by hand over the socket: ciphertext is read into
//! the spare room of the same core buffer the plaintext then lands in, and
//! written from the buffer the frames were encoded in, so an idle TLS
//! connection holds rustls's session state and no buffer of ours. The TLS
//! handshake happens inside the first reads, so the upgrade's deadline
//! covers it.
//!
//! A plain socket is a non-blocking descriptor in the core's epoll set
//! ([`super::poller`]): it is read and written with direct `recv` and `send`
//! calls, and waited on only when one of them finds it drained.

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use rustix::net::{RecvFlags, SendFlags};
use rustls::ServerConnection;

use super::poller::{Poller, READ, WRITE};

/// A connection's byte stream.
pub(crate) trait Transport {
    /// Waits until a read would find bytes, the end or an error.
    fn readable(&mut self) -> impl Future<Output = ()>;
    /// Reads into `buf`'s spare capacity, after what it holds; `Ok(0)` at the end.
    fn read(&mut self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)>;
    /// Writes all of `buf`, which comes back for reuse.
    fn write_all(&mut self, buf: Vec<u8>) -> impl Future<Output = (io::Result<()>, Vec<u8>)>;
    /// Writes what the socket takes of `buf` now, without waiting; returns
    /// how much that was (0 when the transport cannot write directly).
    fn write_now(&mut self, buf: &[u8]) -> io::Result<usize>;
}

/// An accepted TCP socket in the core's epoll set (left when dropped).
pub(crate) struct Socket {
    fd: OwnedFd,
    token: u32,
    poller: Rc<Poller>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.poller.deregister(&self.fd, self.token);
    }
}

impl Socket {
    /// Adds an accepted non-blocking socket to the core's set, Nagle off
    /// (frames are written in batches already).
    fn new(fd: OwnedFd, poller: Rc<Poller>) -> io::Result<Self> {
        let _ = rustix::net::sockopt::set_tcp_nodelay(&fd, true);
        let token = poller.register(&fd)?;
        Ok(Self { fd, token, poller })
    }

    /// Resolves once the socket is marked readable. A closure over the
    /// poller, not an `async fn`: this is what an idle connection holds.
    fn readable(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| self.poller.poll_ready(self.token, READ, cx))
    }

    /// `recv` into `buf`'s spare room, never blocking: `Ok(None)` when the
    /// socket is drained (then it is waited on).
    fn recv_now(&self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        if buf.capacity() == buf.len() {
            buf.reserve(1024);
        }
        let room = buf.capacity() - buf.len();
        let spare = rustix::buffer::spare_capacity(buf);
        match rustix::net::recv(&self.fd, spare, RecvFlags::DONTWAIT) {
            Ok((read, _)) => {
                // Short of the room it had: the queue is empty now.
                if read > 0 && read < room {
                    self.poller.clear(self.token, READ);
                }
                Ok(Some(read))
            }
            Err(rustix::io::Errno::AGAIN) => {
                self.poller.clear(self.token, READ);
                Ok(None)
            }
            Err(rustix::io::Errno::INTR) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads into `buf`'s spare room, waiting while there is nothing. Written
    /// by hand (the buffer and the socket, 32 bytes) for the same reason as
    /// [`Socket::readable`]: a read is an idle connection's largest await.
    fn recv(&mut self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)> + '_ {
        let mut buf = Some(buf);
        std::future::poll_fn(move |cx| {
            loop {
                if self.poller.poll_ready(self.token, READ, cx).is_pending() {
                    return Poll::Pending;
                }
                let Some(into) = buf.as_mut() else {
                    return Poll::Ready((Err(io::ErrorKind::Other.into()), Vec::new()));
                };
                let read = match self.recv_now(into) {
                    Ok(Some(read)) => Ok(read),
                    Ok(None) => continue,
                    Err(e) => Err(e),
                };
                return Poll::Ready((read, buf.take().unwrap_or_default()));
            }
        })
    }

    /// `send` of what the socket takes of `buf` now, never blocking.
    fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
        let sent = match rustix::net::send(&self.fd, buf, SendFlags::DONTWAIT | SendFlags::NOSIGNAL)
        {
            Ok(sent) => sent,
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => 0,
            Err(e) => return Err(e.into()),
        };
        if sent < buf.len() {
            self.poller.clear(self.token, WRITE);
        }
        Ok(sent)
    }

    /// Sends all of `buf`, waiting whenever the socket's buffer is full.
    async fn send_all(&mut self, mut buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let mut sent = 0;
        while sent < buf.len() {
            self.poller.ready(self.token, WRITE).await;
            match self.send_now(&buf[sent..]) {
                Ok(n) => sent += n,
                Err(e) => return (Err(e), buf),
            }
        }
        buf.clear();
        (Ok(()), buf)
    }
}

impl Transport for Socket {
    fn readable(&mut self) -> impl Future<Output = ()> {
        Socket::readable(self)
    }

    fn read(&mut self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)> {
        self.recv(buf)
    }

    fn write_all(&mut self, buf: Vec<u8>) -> impl Future<Output = (io::Result<()>, Vec<u8>)> {
        self.send_all(buf)
    }

    fn write_now(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send_now(buf)
    }
}

/// The core's listening socket in its epoll set (left when dropped).
pub(super) struct Listener {
    listener: std::net::TcpListener,
    token: u32,
    poller: Rc<Poller>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.poller.deregister(&self.listener, self.token);
    }
}

impl Listener {
    /// Adds the core's listener to its epoll set.
    pub(super) fn new(listener: std::net::TcpListener, poller: Rc<Poller>) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let token = poller.register(&listener)?;
        Ok(Self {
            listener,
            token,
            poller,
        })
    }

    /// The next connection, in the core's epoll set, and its peer's IP. An
    /// error is the host's (out of descriptors or memory): the caller backs off.
    pub(super) async fn accept(&self) -> io::Result<(Socket, IpAddr)> {
        use rustix::net::SocketFlags;
        loop {
            self.poller.ready(self.token, READ).await;
            let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
            let (fd, peer) = match rustix::net::acceptfrom_with(&self.listener, flags) {
                Ok(accepted) => accepted,
                // The backlog is empty: wait for the next connection.
                Err(rustix::io::Errno::AGAIN) => {
                    self.poller.clear(self.token, READ);
                    continue;
                }
                // The client gave up while queued, or a signal came in.
                Err(rustix::io::Errno::CONNABORTED | rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let peer = peer
                .and_then(|a| std::net::SocketAddr::try_from(a).ok())
                .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
            return Ok((Socket::new(fd, self.poller.clone())?, peer));
        }
    }
}

/// TLS over a socket (rustls's session state lives in the connection's
/// task, which only TLS connections pay for).
pub(crate) struct TlsStream {
    tcp: Socket,
    tls: ServerConnection,
}

impl TlsStream {
    /// A server-side TLS session on an accepted socket.
    pub(crate) fn new(tcp: Socket, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
        // Whatever the session writes is flushed to the socket at once: the
        // outbox's own bound (slow readers) is the limit, not rustls's.
        tls.set_buffer_limit(None);
        Ok(Self { tcp, tls })
    }

    /// Does rustls hold plaintext (or the peer's close) not yet read?
    fn has_plaintext(&mut self) -> bool {
        match self.tls.process_new_packets() {
            Ok(state) => state.plaintext_bytes_to_read() > 0 || state.peer_has_closed(),
            Err(_) => true,
        }
    }

    /// Moves decrypted bytes into `buf`'s spare room: `Ok(None)` when there
    /// are none yet.
    fn take_plaintext(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        let start = buf.len();
        if buf.capacity() == start {
            buf.reserve(1024);
        }
        buf.resize(buf.capacity(), 0);
        let result = self.tls.reader().read(&mut buf[start..]);
        let taken = match result {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        };
        buf.truncate(start + taken.as_ref().ok().copied().flatten().unwrap_or(0));
        taken
    }

    /// Sends what rustls has to say on its own (handshake flights, alerts).
    async fn flush_session(&mut self) -> io::Result<()> {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut out)?;
        }
        if out.is_empty() {
            return Ok(());
        }
        let (result, _) = self.tcp.send_all(out).await;
        result.map(drop)
    }

    /// Feeds `cipher` to rustls; a record it refuses ends the connection
    /// (after the alert it owes the peer).
    async fn absorb(&mut self, mut cipher: &[u8]) -> io::Result<()> {
        while !cipher.is_empty() {
            self.tls.read_tls(&mut cipher)?;
            if let Err(e) = self.tls.process_new_packets() {
                let _ = self.flush_session().await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        Ok(())
    }
}

impl Transport for TlsStream {
    async fn readable(&mut self) {
        if !self.has_plaintext() {
            self.tcp.readable().await;
        }
    }

    async fn read(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        loop {
            match self.take_plaintext(&mut buf) {
                Ok(Some(n)) => return (Ok(n), buf),
                Ok(None) => {}
                Err(e) => return (Err(e), buf),
            }
            if let Err(e) = self.flush_session().await {
                return (Err(e), buf);
            }
            let start = buf.len();
            let (result, read) = self.tcp.recv(buf).await;
            buf = read;
            let read = match result {
                Ok(0) => {
                    buf.truncate(start);
                    return (Ok(0), buf);
                }
                Ok(n) => n,
                Err(e) => {
                    buf.truncate(start);
                    return (Err(e), buf);
                }
            };
            let absorbed = self.absorb(&buf[start..start + read]).await;
            buf.truncate(start);
            if let Err(e) = absorbed {
                return (Err(e), buf);
            }
        }
    }

    async fn write_all(&mut self, mut buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        if let Err(e) = self.tls.writer().write_all(&buf) {
            return (Err(e), buf);
        }
        // The plaintext is in rustls now: its buffer carries the ciphertext.
        buf.clear();
        while self.tls.wants_write() {
            if let Err(e) = self.tls.write_tls(&mut buf) {
                return (Err(e), buf);
            }
        }
        self.tcp.send_all(buf).await
    }

    fn write_now(&mut self, _buf: &[u8]) -> io::Result<usize> {
        // rustls must see the plaintext first: the whole write goes through
        // `write_all`.
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use super::{Poller, Socket, Transport};

    /// A socket in a new epoll set (run on the current runtime, coalescing
    /// its wake-ups or not), and its peer.
    fn connected(coalesce: bool) -> std::io::Result<(UnixStream, Socket)> {
        let (peer, ours) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let poller = Poller::new()?;
        monoio::spawn(poller.clone().run(coalesce));
        Ok((peer, Socket::new(ours.into(), poller)?))
    }

    /// A socket is read while it has bytes, waited on once drained, woken
    /// by the peer's next write; a write larger than the socket's buffer
    /// waits for room and arrives whole; the peer's close reads as the end.
    async fn reads_waits_and_writes(coalesce: bool) -> std::io::Result<()> {
        let (mut peer, mut socket) = connected(coalesce)?;

        peer.write_all(b"hello")?;
        let (read, buf) = socket.read(Vec::with_capacity(64)).await;
        assert_eq!((read?, &buf[..]), (5, &b"hello"[..]));

        let pending = monoio::time::timeout(
            Duration::from_millis(50),
            socket.read(Vec::with_capacity(64)),
        )
        .await;
        assert!(pending.is_err(), "a drained socket waits");
        peer.write_all(b"again")?;
        let (read, buf) = socket.read(Vec::with_capacity(64)).await;
        assert_eq!((read?, &buf[..]), (5, &b"again"[..]));

        let big = vec![7u8; 8 << 20];
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            peer.read_to_end(&mut all).map(|_| all)
        });
        let (written, _) = socket.write_all(big.clone()).await;
        written?;
        // Only the peer's close is left to read: our side closes first.
        drop(socket);
        let received = reader
            .join()
            .map_err(|_| std::io::Error::other("reader panicked"))??;
        assert!(received == big, "the write arrives whole");
        Ok(())
    }

    /// The end of the stream reads as 0, after the bytes before it.
    async fn the_end_reads_as_zero(coalesce: bool) -> std::io::Result<()> {
        let (mut peer, mut socket) = connected(coalesce)?;
        peer.write_all(b"x")?;
        drop(peer);
        let (read, _) = socket.read(Vec::with_capacity(64)).await;
        assert_eq!(read?, 1);
        let (read, _) = socket.read(Vec::with_capacity(64)).await;
        assert_eq!(read?, 0, "the peer's close");
        Ok(())
    }

    /// A stream of small writes, each sent while the core is still busy
    /// with the ones before, for long enough (30 ms and more) that a
    /// coalescing core starts coalescing: every byte is read, in order,
    /// whether the core arms its wait after each drain or coalesces its
    /// wake-ups.
    async fn reads_a_busy_stream(coalesce: bool) -> std::io::Result<()> {
        let (mut peer, mut socket) = connected(coalesce)?;
        let writer = std::thread::spawn(move || {
            for i in 0..10_000u32 {
                peer.write_all(&i.to_le_bytes())?;
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_micros(300));
                }
            }
            Ok::<_, std::io::Error>(peer)
        });
        let mut received = Vec::with_capacity(40_000);
        while received.len() < 40_000 {
            let (read, buf) = socket.read(received).await;
            assert!(read? > 0, "the writer has not closed");
            received = buf;
        }
        let _peer = writer
            .join()
            .map_err(|_| std::io::Error::other("writer panicked"))??;
        let expected: Vec<u8> = (0..10_000u32).flat_map(u32::to_le_bytes).collect();
        assert!(received == expected, "every byte, in order");
        Ok(())
    }

    /// Runs `test` on a runtime of each driver, with and without coalescing.
    fn on_both_drivers<F: Future<Output = std::io::Result<()>>>(
        test: fn(bool) -> F,
    ) -> std::io::Result<()> {
        for coalesce in [false, true] {
            monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .enable_timer()
                .build()?
                .block_on(test(coalesce))?;
            monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()?
                .block_on(test(coalesce))?;
        }
        Ok(())
    }

    #[test]
    fn a_busy_stream_is_read_whole() -> std::io::Result<()> {
        on_both_drivers(reads_a_busy_stream)
    }

    #[test]
    fn a_socket_is_read_waited_on_and_written() -> std::io::Result<()> {
        on_both_drivers(reads_waits_and_writes)
    }

    #[test]
    fn the_peers_close_is_the_end() -> std::io::Result<()> {
        on_both_drivers(the_end_reads_as_zero)
    }
}

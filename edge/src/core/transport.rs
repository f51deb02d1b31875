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
//! A plain socket is waited on through the ring (a poll operation, which
//! holds no buffer while the connection idles) but read and written with
//! direct non-blocking calls once it is ready: the bytes are there, so a
//! `recv` or `send` syscall returns at once, where a ring operation would
//! cost a submission, a completion and another poll of the connection's
//! task. The ring takes over only when the socket cannot take a whole write
//! (the rest waits there) or a read finds nothing after all.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::ServerConnection;

/// A connection's byte stream.
pub(crate) trait Transport {
    /// Turns Nagle off (frames are written in batches already).
    fn set_nodelay(&self);
    /// Waits until a read would find bytes, or the end; `false`: the socket failed.
    fn readable(&mut self) -> impl Future<Output = bool>;
    /// Reads into `buf`'s spare capacity, after what it holds; `Ok(0)` at the end.
    fn read(&mut self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)>;
    /// Writes all of `buf`, which comes back for reuse.
    fn write_all(&mut self, buf: Vec<u8>) -> impl Future<Output = (io::Result<()>, Vec<u8>)>;
    /// Writes what the socket takes of `buf` now, without waiting; returns
    /// how much that was (0 when the transport cannot write directly).
    fn write_now(&mut self, buf: &[u8]) -> io::Result<usize>;
}

/// The socket's descriptor, for one direct call.
#[allow(unsafe_code)]
fn socket_of(stream: &TcpStream) -> BorrowedFd<'_> {
    // SAFETY: the descriptor is the stream's own and stays open while the
    // stream lives (monoio closes it when the stream is dropped); the borrow
    // cannot outlive the stream.
    unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) }
}

/// `recv` into `buf`'s spare room, never blocking: `Ok(None)` when the
/// socket holds nothing now.
fn recv_now(stream: &TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    use rustix::net::{RecvFlags, recv};
    if buf.capacity() == buf.len() {
        buf.reserve(1024);
    }
    match recv(
        socket_of(stream),
        rustix::buffer::spare_capacity(buf),
        RecvFlags::DONTWAIT,
    ) {
        Ok((read, _)) => Ok(Some(read)),
        Err(rustix::io::Errno::AGAIN) => Ok(None),
        Err(rustix::io::Errno::INTR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads into `buf`'s spare room: directly when the socket holds bytes,
/// through the ring (waiting) when it does not.
async fn recv_tcp(stream: &mut TcpStream, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
    match recv_now(stream, &mut buf) {
        Ok(Some(read)) => return (Ok(read), buf),
        Ok(None) => {}
        Err(e) => return (Err(e), buf),
    }
    let len = buf.len();
    // Boxed: rare (the socket was reported readable), and a ring read is
    // most of an idle connection's wait (see `session::upgrade_and_run`).
    let (result, slice) = Box::pin(AsyncReadRent::read(stream, buf.slice_mut(len..))).await;
    (result, slice.into_inner())
}

/// `send` of what the socket takes of `buf` now, never blocking.
fn send_now(stream: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    use rustix::net::{SendFlags, send};
    match send(
        socket_of(stream),
        buf,
        SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
    ) {
        Ok(sent) => Ok(sent),
        Err(rustix::io::Errno::AGAIN) => Ok(0),
        Err(rustix::io::Errno::INTR) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

impl Transport for TcpStream {
    fn set_nodelay(&self) {
        let _ = TcpStream::set_nodelay(self, true);
    }

    async fn readable(&mut self) -> bool {
        TcpStream::readable(self, false).await.is_ok()
    }

    async fn read(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        recv_tcp(self, buf).await
    }

    async fn write_all(&mut self, mut buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match send_now(self, &buf) {
            Ok(sent) if sent == buf.len() => return (Ok(()), buf),
            Ok(sent) => drop(buf.drain(..sent)),
            Err(e) => return (Err(e), buf),
        }
        let (result, buf) = AsyncWriteRentExt::write_all(self, buf).await;
        (result.map(drop), buf)
    }

    fn write_now(&mut self, buf: &[u8]) -> io::Result<usize> {
        send_now(self, buf)
    }
}

/// TLS over a socket (rustls's session state lives in the connection's
/// task, which only TLS connections pay for).
pub(crate) struct TlsStream {
    tcp: TcpStream,
    tls: ServerConnection,
}

impl TlsStream {
    /// A server-side TLS session on an accepted socket.
    pub(crate) fn new(tcp: TcpStream, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
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
        let (result, _) = AsyncWriteRentExt::write_all(&mut self.tcp, out).await;
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
    fn set_nodelay(&self) {
        let _ = self.tcp.set_nodelay(true);
    }

    async fn readable(&mut self) -> bool {
        if self.has_plaintext() {
            return true;
        }
        TcpStream::readable(&self.tcp, false).await.is_ok()
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
            let (result, read) = recv_tcp(&mut self.tcp, buf).await;
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
        let (result, buf) = AsyncWriteRentExt::write_all(&mut self.tcp, buf).await;
        (result.map(drop), buf)
    }

    fn write_now(&mut self, _buf: &[u8]) -> io::Result<usize> {
        // rustls must see the plaintext first: the whole write goes through
        // `write_all`.
        Ok(0)
    }
}

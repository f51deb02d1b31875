//! The WebSocket frame codec (RFC 6455, server side), socket-free.
//!
//! tungstenite supplies the header parsing and formatting ([`FrameHeader`]); this
//! module owns what tungstenite's `WebSocket` would otherwise do with its own
//! 128 KiB buffers: masking rules, control-frame rules, fragmentation, UTF-8
//! validation, size limits and close codes. It keeps only the bytes of an
//! unfinished frame or message, so an idle connection holds no buffer at all;
//! reads go into a per-core buffer that is lent to [`Codec::feed`].

use std::io::Cursor;

use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// Close codes (RFC 6455 §7.4.1) the server sends.
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Going away (shutdown).
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// Data not consistent with the type (invalid UTF-8).
    pub const INVALID_DATA: u16 = 1007;
    /// Policy violation (e.g. heartbeat timeout, binary frames).
    pub const POLICY: u16 = 1008;
    /// Message too big.
    pub const TOO_BIG: u16 = 1009;
    /// Try again later (overloaded, draining, slow reader).
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Why the server closes a connection, as the close frame to send: what the
/// codec answers a protocol violation with, and what anything else on the
/// server (drain, heartbeat, slow reader, a newer login) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseRequest {
    /// Close code ([`close_code`]).
    pub code: u16,
    /// Close reason (short, for humans).
    pub reason: &'static str,
}

fn violation(code: u16, reason: &'static str) -> CloseRequest {
    CloseRequest { code, reason }
}

/// A complete incoming message or control frame, borrowed from the bytes
/// it was decoded from: a frame that arrived whole in one read is unmasked
/// where it lies and handed on without a copy or an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A text message (UTF-8 validated).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping with its payload (answer with a pong).
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// The peer closes, with its code and reason if it gave one.
    Close(Option<(u16, &'a str)>),
}

/// Per-connection decoder state.
#[derive(Debug, Default)]
pub struct Codec {
    /// Bytes of a frame not yet complete (empty, and unallocated, when idle).
    partial: Vec<u8>,
    /// A fragmented message being assembled: opcode and payload so far
    /// (boxed: rare, and the codec lives in every idle connection).
    message: Option<Box<(Data, Vec<u8>)>>,
    /// Set after a close frame: nothing more is read.
    closed: bool,
}

impl Codec {
    /// Bytes held for unfinished frames and messages (0 when idle).
    pub fn held_bytes(&self) -> usize {
        self.partial.capacity() + self.message.as_ref().map_or(0, |m| m.1.capacity())
    }

    /// Decodes what `input` completes and hands each event to `handle`, in
    /// order; `input` is unmasked in place. Returns the close frame that ends
    /// the connection: the first one `handle` asks for (nothing after it is
    /// handled), else a protocol violation's. Frames decoded ahead of a
    /// violation in the same bytes are handled first: each was complete and
    /// valid, and the client may be waiting for what it asked (a message
    /// sent, a pong). After either, the codec decodes nothing more (and holds
    /// nothing), whatever it is fed — found by fuzzing: a message's last
    /// fragment fed after a violation used to complete the message.
    pub fn feed(
        &mut self,
        input: &mut [u8],
        max_message: usize,
        mut handle: impl FnMut(Event<'_>) -> Option<CloseRequest>,
    ) -> Option<CloseRequest> {
        if self.closed {
            return None;
        }
        let fed = self.feed_open(input, max_message, &mut handle);
        // A close frame the handler let pass also ends decoding.
        if fed.is_some() || self.closed {
            self.closed = true;
            self.partial = Vec::new();
            self.message = None;
        }
        fed
    }

    fn feed_open(
        &mut self,
        input: &mut [u8],
        max_message: usize,
        handle: &mut dyn FnMut(Event<'_>) -> Option<CloseRequest>,
    ) -> Option<CloseRequest> {
        if self.partial.is_empty() {
            let (used, end) = self.decode(input, max_message, handle);
            if end.is_some() {
                return end;
            }
            self.partial.extend_from_slice(&input[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.partial);
            buf.extend_from_slice(input);
            let (used, end) = self.decode(&mut buf, max_message, handle);
            if end.is_some() {
                return end;
            }
            buf.drain(..used);
            if !buf.is_empty() {
                self.partial = buf;
            }
        }
        // A frame can never legally be larger than the message limit plus its header.
        if self.partial.len() > max_message + 14 {
            return Some(violation(close_code::TOO_BIG, "frame too big"));
        }
        None
    }

    /// Decodes and hands on complete frames from `buf`: how many bytes were
    /// used, and the close that ended decoding if one did.
    fn decode(
        &mut self,
        buf: &mut [u8],
        max_message: usize,
        handle: &mut dyn FnMut(Event<'_>) -> Option<CloseRequest>,
    ) -> (usize, Option<CloseRequest>) {
        let mut start = 0;
        loop {
            let (header, length, header_len) = match parse_header(&buf[start..]) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return (start, None),
                Err(close) => return (start, Some(close)),
            };
            let header_end = start + header_len;
            let checked = self
                .check_header(&header, length, max_message)
                .and_then(|()| {
                    usize::try_from(length)
                        .map_err(|_| violation(close_code::TOO_BIG, "frame too big"))
                });
            let length = match checked {
                Ok(length) => length,
                Err(close) => return (start, Some(close)),
            };
            let Some(payload_end) = header_end
                .checked_add(length)
                .filter(|end| *end <= buf.len())
            else {
                return (start, None);
            };
            let payload = &mut buf[header_end..payload_end];
            if let Some(mask) = header.mask {
                unmask(payload, mask);
            }
            let end = self.on_frame(header, payload, max_message, handle);
            if end.is_some() || self.closed {
                return (payload_end, end);
            }
            start = payload_end;
        }
    }

    fn check_header(
        &self,
        header: &FrameHeader,
        length: u64,
        max_message: usize,
    ) -> Result<(), CloseRequest> {
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(violation(close_code::PROTOCOL, "reserved bits set"));
        }
        if header.mask.is_none() {
            return Err(violation(
                close_code::PROTOCOL,
                "client frames must be masked",
            ));
        }
        match header.opcode {
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                Err(violation(close_code::PROTOCOL, "reserved opcode"))
            }
            OpCode::Control(_) if !header.is_final || length > 125 => {
                Err(violation(close_code::PROTOCOL, "bad control frame"))
            }
            OpCode::Data(_) if length > max_message as u64 => {
                Err(violation(close_code::TOO_BIG, "message too big"))
            }
            _ => Ok(()),
        }
    }

    /// Hands on one frame's event (a message's once its last fragment is
    /// in); the close that ends decoding, if any.
    fn on_frame(
        &mut self,
        header: FrameHeader,
        payload: &[u8],
        max_message: usize,
        handle: &mut dyn FnMut(Event<'_>) -> Option<CloseRequest>,
    ) -> Option<CloseRequest> {
        match header.opcode {
            OpCode::Control(Control::Ping) => handle(Event::Ping(payload)),
            OpCode::Control(Control::Pong) => handle(Event::Pong),
            OpCode::Control(Control::Close) => {
                self.closed = true;
                match parse_close(payload) {
                    Ok(received) => handle(Event::Close(received)),
                    Err(close) => Some(close),
                }
            }
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                Some(violation(close_code::PROTOCOL, "reserved opcode"))
            }
            OpCode::Data(Data::Continue) => {
                let Some(mut message) = self.message.take() else {
                    return Some(violation(
                        close_code::PROTOCOL,
                        "continuation without a message",
                    ));
                };
                let (kind, data) = &mut *message;
                if data.len() + payload.len() > max_message {
                    return Some(violation(close_code::TOO_BIG, "message too big"));
                }
                data.extend_from_slice(payload);
                if header.is_final {
                    finish(*kind, data, handle)
                } else {
                    self.message = Some(message);
                    None
                }
            }
            OpCode::Data(kind) => {
                if self.message.is_some() {
                    return Some(violation(
                        close_code::PROTOCOL,
                        "new message inside a fragmented one",
                    ));
                }
                if header.is_final {
                    finish(kind, payload, handle)
                } else {
                    self.message = Some(Box::new((kind, payload.to_vec())));
                    None
                }
            }
        }
    }
}

/// A frame's header, its payload length and its own length; `None` until
/// the header is complete. A client's usual frame (masked, under 126 bytes:
/// a six-byte header) is read here; any other goes to tungstenite's parser,
/// whose general path cost as much as the rest of decoding on the echo
/// profile.
fn parse_header(buf: &[u8]) -> Result<Option<(FrameHeader, u64, usize)>, CloseRequest> {
    if let [first, second, m0, m1, m2, m3, ..] = *buf
        && second & 0x80 != 0
        && second & 0x7f < 126
    {
        let header = FrameHeader {
            is_final: first & 0x80 != 0,
            rsv1: first & 0x40 != 0,
            rsv2: first & 0x20 != 0,
            rsv3: first & 0x10 != 0,
            opcode: OpCode::from(first & 0x0f),
            mask: Some([m0, m1, m2, m3]),
        };
        return Ok(Some((header, u64::from(second & 0x7f), 6)));
    }
    let mut cursor = Cursor::new(buf);
    match FrameHeader::parse(&mut cursor) {
        Ok(parsed) => {
            Ok(parsed.map(|(header, length)| (header, length, cursor.position() as usize)))
        }
        Err(_) => Err(violation(close_code::PROTOCOL, "bad frame header")),
    }
}

/// Hands on a whole message (text validated as UTF-8).
fn finish(
    kind: Data,
    data: &[u8],
    handle: &mut dyn FnMut(Event<'_>) -> Option<CloseRequest>,
) -> Option<CloseRequest> {
    match kind {
        Data::Text => match std::str::from_utf8(data) {
            Ok(text) => handle(Event::Text(text)),
            Err(_) => Some(violation(close_code::INVALID_DATA, "text is not UTF-8")),
        },
        _ => handle(Event::Binary(data)),
    }
}

fn parse_close(payload: &[u8]) -> Result<Option<(u16, &str)>, CloseRequest> {
    match payload {
        [] => Ok(None),
        [_] => Err(violation(close_code::PROTOCOL, "close payload of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let valid = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
            if !valid {
                return Err(violation(close_code::PROTOCOL, "invalid close code"));
            }
            let reason = std::str::from_utf8(reason)
                .map_err(|_| violation(close_code::INVALID_DATA, "close reason is not UTF-8"))?;
            Ok(Some((code, reason)))
        }
    }
}

/// XORs the payload with its mask, eight bytes at a time.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // Chunks of eight keep the mask's phase: the tail starts at mask[0].
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// Appends an unmasked server frame (header + payload) to `out`.
pub fn encode(opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) {
    // A frame under 126 bytes has a two-byte header: written here, not
    // through tungstenite's general formatter (the echo profile's choice).
    if let Ok(length @ 0..=125) = u8::try_from(payload.len()) {
        out.extend_from_slice(&[0x80 | u8::from(opcode), length]);
        out.extend_from_slice(payload);
        return;
    }
    let header = FrameHeader {
        is_final: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: None,
    };
    // Writing into a Vec cannot fail.
    let _ = header.format(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Appends a text frame.
pub fn encode_text(payload: &[u8], out: &mut Vec<u8>) {
    encode(OpCode::Data(Data::Text), payload, out);
}

/// Appends a close frame with a code and a reason (trimmed to fit 125 bytes).
pub fn encode_close(code: u16, reason: &str, out: &mut Vec<u8>) {
    let mut payload = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    encode(OpCode::Control(Control::Close), &payload, out);
}

/// Appends a pong echoing a ping's payload.
pub fn encode_pong(payload: &[u8], out: &mut Vec<u8>) {
    encode(OpCode::Control(Control::Pong), payload, out);
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;

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

/// A complete incoming message or control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A text message (UTF-8 validated).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping with its payload (answer with a pong).
    Ping(Vec<u8>),
    /// A pong.
    Pong,
    /// The peer closes, with its code and reason if it gave one.
    Close(Option<(u16, String)>),
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

    /// Decodes what `input` completes; events go to `out` in order. A violation
    /// means: send the close frame it names and drop the connection. After
    /// one the codec decodes nothing more (and holds nothing), whatever it is
    /// fed — found by fuzzing: a message's last fragment fed after a
    /// violation used to complete the message.
    pub fn feed(
        &mut self,
        input: &[u8],
        max_message: usize,
        out: &mut Vec<Event>,
    ) -> Result<(), CloseRequest> {
        if self.closed {
            return Ok(());
        }
        let fed = self.feed_open(input, max_message, out);
        if fed.is_err() {
            self.closed = true;
            self.partial = Vec::new();
            self.message = None;
        }
        fed
    }

    fn feed_open(
        &mut self,
        input: &[u8],
        max_message: usize,
        out: &mut Vec<Event>,
    ) -> Result<(), CloseRequest> {
        if self.partial.is_empty() {
            let used = self.decode(input, max_message, out)?;
            if used < input.len() {
                self.partial.extend_from_slice(&input[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut self.partial);
            buf.extend_from_slice(input);
            let used = self.decode(&buf, max_message, out)?;
            buf.drain(..used);
            if !buf.is_empty() {
                self.partial = buf;
            }
        }
        // A frame can never legally be larger than the message limit plus its header.
        if self.partial.len() > max_message + 14 {
            return Err(violation(close_code::TOO_BIG, "frame too big"));
        }
        Ok(())
    }

    /// Decodes complete frames from `buf`; returns how many bytes were used.
    fn decode(
        &mut self,
        buf: &[u8],
        max_message: usize,
        out: &mut Vec<Event>,
    ) -> Result<usize, CloseRequest> {
        let mut cursor = Cursor::new(buf);
        loop {
            let start = cursor.position() as usize;
            let parsed = FrameHeader::parse(&mut cursor)
                .map_err(|_| violation(close_code::PROTOCOL, "bad frame header"))?;
            let Some((header, length)) = parsed else {
                return Ok(start);
            };
            let header_end = cursor.position() as usize;
            self.check_header(&header, length, max_message)?;
            let length = usize::try_from(length)
                .map_err(|_| violation(close_code::TOO_BIG, "frame too big"))?;
            let Some(payload_end) = header_end
                .checked_add(length)
                .filter(|end| *end <= buf.len())
            else {
                return Ok(start);
            };
            let mut payload = buf[header_end..payload_end].to_vec();
            if let Some(mask) = header.mask {
                unmask(&mut payload, mask);
            }
            cursor.set_position(payload_end as u64);
            self.on_frame(header, payload, max_message, out)?;
            if self.closed {
                return Ok(payload_end);
            }
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

    fn on_frame(
        &mut self,
        header: FrameHeader,
        payload: Vec<u8>,
        max_message: usize,
        out: &mut Vec<Event>,
    ) -> Result<(), CloseRequest> {
        match header.opcode {
            OpCode::Control(Control::Ping) => out.push(Event::Ping(payload)),
            OpCode::Control(Control::Pong) => out.push(Event::Pong),
            OpCode::Control(Control::Close) => {
                self.closed = true;
                out.push(Event::Close(parse_close(&payload)?));
            }
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                return Err(violation(close_code::PROTOCOL, "reserved opcode"));
            }
            OpCode::Data(Data::Continue) => {
                let Some(mut message) = self.message.take() else {
                    return Err(violation(
                        close_code::PROTOCOL,
                        "continuation without a message",
                    ));
                };
                let (_, data) = &mut *message;
                if data.len() + payload.len() > max_message {
                    return Err(violation(close_code::TOO_BIG, "message too big"));
                }
                data.extend_from_slice(&payload);
                if header.is_final {
                    let (kind, data) = *message;
                    out.push(finish(kind, data)?);
                } else {
                    self.message = Some(message);
                }
            }
            OpCode::Data(kind) => {
                if self.message.is_some() {
                    return Err(violation(
                        close_code::PROTOCOL,
                        "new message inside a fragmented one",
                    ));
                }
                if header.is_final {
                    out.push(finish(kind, payload)?);
                } else {
                    self.message = Some(Box::new((kind, payload)));
                }
            }
        }
        Ok(())
    }
}

fn finish(kind: Data, data: Vec<u8>) -> Result<Event, CloseRequest> {
    match kind {
        Data::Text => String::from_utf8(data)
            .map(Event::Text)
            .map_err(|_| violation(close_code::INVALID_DATA, "text is not UTF-8")),
        _ => Ok(Event::Binary(data)),
    }
}

fn parse_close(payload: &[u8]) -> Result<Option<(u16, String)>, CloseRequest> {
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
            Ok(Some((code, reason.to_owned())))
        }
    }
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// Appends an unmasked server frame (header + payload) to `out`.
pub fn encode(opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) {
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
mod tests {
    use super::*;

    const MAX: usize = 64 * 1024;

    /// A masked client frame, as a browser would send it.
    fn client_frame(opcode: OpCode, is_final: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let header = FrameHeader {
            is_final,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: Some(mask),
        };
        let mut out = Vec::new();
        let _ = header.format(payload.len() as u64, &mut out);
        let mut body = payload.to_vec();
        unmask(&mut body, mask);
        out.extend_from_slice(&body);
        out
    }

    fn text(s: &str) -> Vec<u8> {
        client_frame(OpCode::Data(Data::Text), true, s.as_bytes())
    }

    fn feed(codec: &mut Codec, bytes: &[u8]) -> Result<Vec<Event>, CloseRequest> {
        let mut out = Vec::new();
        codec.feed(bytes, MAX, &mut out).map(|()| out)
    }

    #[test]
    fn decodes_masked_text_and_holds_nothing_after() {
        let mut c = Codec::default();
        assert_eq!(
            feed(&mut c, &text(r#"{"type":"ping"}"#)),
            Ok(vec![Event::Text(r#"{"type":"ping"}"#.into())])
        );
        assert_eq!(c.held_bytes(), 0, "an idle connection keeps no buffer");
    }

    #[test]
    fn frames_split_across_reads_are_reassembled() {
        let mut c = Codec::default();
        let mut bytes = text("hello");
        bytes.extend(text("world"));
        let mut events = Vec::new();
        for chunk in bytes.chunks(3) {
            events.extend(feed(&mut c, chunk).expect("valid"));
        }
        assert_eq!(
            events,
            vec![Event::Text("hello".into()), Event::Text("world".into())]
        );
        assert_eq!(c.held_bytes(), 0);
    }

    #[test]
    fn fragments_with_interleaved_control_frames_assemble() {
        let mut c = Codec::default();
        let mut bytes = client_frame(OpCode::Data(Data::Text), false, b"hel");
        bytes.extend(client_frame(OpCode::Control(Control::Ping), true, b"p"));
        bytes.extend(client_frame(OpCode::Data(Data::Continue), true, b"lo"));
        assert_eq!(
            feed(&mut c, &bytes),
            Ok(vec![
                Event::Ping(b"p".to_vec()),
                Event::Text("hello".into())
            ])
        );
    }

    #[test]
    fn protocol_violations_close_with_the_right_code() {
        let unmasked = {
            let mut out = Vec::new();
            encode_text(b"x", &mut out);
            out
        };
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (unmasked, close_code::PROTOCOL),
            (
                client_frame(OpCode::Data(Data::Continue), true, b"x"),
                close_code::PROTOCOL,
            ),
            (
                client_frame(OpCode::Data(Data::Reserved(3)), true, b"x"),
                close_code::PROTOCOL,
            ),
            (
                client_frame(OpCode::Control(Control::Ping), false, b"x"),
                close_code::PROTOCOL,
            ),
            (
                client_frame(OpCode::Control(Control::Ping), true, &[0; 126]),
                close_code::PROTOCOL,
            ),
            (
                client_frame(OpCode::Data(Data::Text), true, &[0xff, 0xfe]),
                close_code::INVALID_DATA,
            ),
            (
                client_frame(OpCode::Data(Data::Text), true, &vec![b'a'; MAX + 1]),
                close_code::TOO_BIG,
            ),
            (
                client_frame(OpCode::Control(Control::Close), true, &[3]),
                close_code::PROTOCOL,
            ),
            (
                client_frame(
                    OpCode::Control(Control::Close),
                    true,
                    &1005u16.to_be_bytes(),
                ),
                close_code::PROTOCOL,
            ),
            (
                {
                    let mut b = client_frame(OpCode::Data(Data::Text), false, b"a");
                    b.extend(client_frame(OpCode::Data(Data::Text), true, b"b"));
                    b
                },
                close_code::PROTOCOL,
            ),
        ];
        for (bytes, code) in cases {
            let mut c = Codec::default();
            assert_eq!(
                feed(&mut c, &bytes).map_err(|v| v.code),
                Err(code),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn oversized_fragmented_messages_are_refused() {
        let mut c = Codec::default();
        let chunk = vec![b'a'; MAX / 2 + 1];
        let mut bytes = client_frame(OpCode::Data(Data::Text), false, &chunk);
        bytes.extend(client_frame(OpCode::Data(Data::Continue), true, &chunk));
        assert_eq!(
            feed(&mut c, &bytes).map_err(|v| v.code),
            Err(close_code::TOO_BIG)
        );
    }

    #[test]
    fn close_frames_end_decoding() {
        let mut c = Codec::default();
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        let mut bytes = client_frame(OpCode::Control(Control::Close), true, &payload);
        bytes.extend(text("ignored"));
        assert_eq!(
            feed(&mut c, &bytes),
            Ok(vec![Event::Close(Some((1000, "bye".into())))])
        );
        assert_eq!(feed(&mut c, &text("later")), Ok(vec![]));
    }

    #[test]
    fn server_frames_encode_unmasked() {
        let mut out = Vec::new();
        encode_text(b"hi", &mut out);
        assert_eq!(out, vec![0x81, 2, b'h', b'i']);
        out.clear();
        encode_close(1013, "draining", &mut out);
        assert_eq!(&out[..4], &[0x88, 10, 0x03, 0xf5]);
        out.clear();
        encode_text(&[b'x'; 300], &mut out);
        assert_eq!(&out[..4], &[0x81, 126, 0x01, 0x2c]);
    }

    #[test]
    fn nothing_is_decoded_after_a_violation() {
        // Found by fuzzing (fuzz/corpus/ws_codec/after-violation): a text
        // fragment, a frame with a reserved bit (a violation), then the
        // message's last fragment, fed three bytes at a time.
        let input: &[u8] = &[
            1, 131, 1, 2, 3, 4, 96, 96, 96, 46, 128, 1, 2, 3, 4, 128, 131, 1, 2, 3, 4, 101, 103,
            101,
        ];
        let mut codec = Codec::default();
        let mut events = Vec::new();
        let mut violated = false;
        for piece in input.chunks(3) {
            let before = events.len();
            if codec.feed(piece, 4096, &mut events).is_err() {
                violated = true;
            } else if violated {
                assert_eq!(events.len(), before, "decoded after the violation");
            }
        }
        assert!(violated);
        assert!(events.is_empty());
        assert_eq!(codec.held_bytes(), 0);
    }
}

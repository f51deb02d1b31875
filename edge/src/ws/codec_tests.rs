//! The codec against RFC 6455's rules and against tungstenite's own
//! header parsing and formatting, which its short-frame paths stand in for.

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

/// An event as the test keeps it, past the bytes it was decoded from.
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Option<(u16, String)>),
}

impl From<Event<'_>> for Owned {
    fn from(event: Event<'_>) -> Self {
        match event {
            Event::Text(text) => Owned::Text(text.to_owned()),
            Event::Binary(data) => Owned::Binary(data.to_vec()),
            Event::Ping(payload) => Owned::Ping(payload.to_vec()),
            Event::Pong => Owned::Pong,
            Event::Close(received) => {
                Owned::Close(received.map(|(code, reason)| (code, reason.to_owned())))
            }
        }
    }
}

/// Feeds a copy of `bytes` (the codec unmasks in place), keeping every event.
fn feed_into(codec: &mut Codec, bytes: &[u8], out: &mut Vec<Owned>) -> Option<CloseRequest> {
    codec.feed(&mut bytes.to_vec(), MAX, |event| {
        out.push(event.into());
        None
    })
}

fn feed(codec: &mut Codec, bytes: &[u8]) -> Result<Vec<Owned>, CloseRequest> {
    let mut out = Vec::new();
    match feed_into(codec, bytes, &mut out) {
        Some(close) => Err(close),
        None => Ok(out),
    }
}

#[test]
fn decodes_masked_text_and_holds_nothing_after() {
    let mut c = Codec::default();
    assert_eq!(
        feed(&mut c, &text(r#"{"type":"ping"}"#)),
        Ok(vec![Owned::Text(r#"{"type":"ping"}"#.into())])
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
        vec![Owned::Text("hello".into()), Owned::Text("world".into())]
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
            Owned::Ping(b"p".to_vec()),
            Owned::Text("hello".into())
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
        Ok(vec![Owned::Close(Some((1000, "bye".into())))])
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
fn unmasking_eight_bytes_at_a_time_matches_the_rfc() {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    for length in 0..40 {
        let payload: Vec<u8> = (0..length).map(|i| (i * 7 + 1) as u8).collect();
        let mut wide = payload.clone();
        unmask(&mut wide, mask);
        // RFC 6455 §5.3: octet i is XORed with octet i MOD 4 of the key.
        let expected: Vec<u8> = payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(wide, expected, "length {length}");
    }
}

#[test]
fn the_short_header_path_reads_what_tungstenite_reads() {
    for first in 0..=255u8 {
        for second in [
            0x80,
            0x81,
            0x80 | 100,
            0x80 | 125,
            0x80 | 126,
            0x80 | 127,
            5,
        ] {
            let mut bytes = vec![first, second, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
            for len in [1, 2, 5, 6, bytes.len()] {
                bytes.truncate(len.max(1));
                let ours = parse_header(&bytes).map_err(|c| c.code);
                let mut cursor = Cursor::new(&bytes[..]);
                let theirs = FrameHeader::parse(&mut cursor)
                    .map(|parsed| parsed.map(|(h, l)| (h, l, cursor.position() as usize)))
                    .map_err(|_| close_code::PROTOCOL);
                assert_eq!(ours, theirs, "{bytes:?}");
            }
        }
    }
}

#[test]
fn the_short_frame_path_writes_what_tungstenite_writes() {
    let opcodes = [
        OpCode::Data(Data::Text),
        OpCode::Data(Data::Binary),
        OpCode::Control(Control::Close),
        OpCode::Control(Control::Pong),
    ];
    for opcode in opcodes {
        for length in 0..=130 {
            let payload = vec![b'x'; length];
            let mut ours = Vec::new();
            encode(opcode, &payload, &mut ours);
            let header = FrameHeader {
                opcode,
                ..FrameHeader::default()
            };
            let mut theirs = Vec::new();
            header
                .format(length as u64, &mut theirs)
                .expect("a Vec takes it");
            theirs.extend_from_slice(&payload);
            assert_eq!(ours, theirs, "{opcode:?} {length}");
        }
    }
}

#[test]
fn a_close_asked_by_the_handler_stops_handling_and_decoding() {
    let mut c = Codec::default();
    let mut bytes = text("first");
    bytes.extend(text("second"));
    let stop = violation(close_code::POLICY, "enough");
    let mut seen = Vec::new();
    let close = c.feed(&mut bytes, MAX, |event| {
        seen.push(Owned::from(event));
        Some(stop)
    });
    assert_eq!(close, Some(stop));
    assert_eq!(seen, vec![Owned::Text("first".into())]);
    assert_eq!(feed(&mut c, &text("later")), Ok(vec![]));
    assert_eq!(c.held_bytes(), 0);
}

#[test]
fn nothing_is_decoded_after_a_violation() {
    // Found by fuzzing (fuzz/corpus/ws_codec/after-violation): a text
    // fragment, a frame with a reserved bit (a violation), then the
    // message's last fragment, fed three bytes at a time.
    let input: &[u8] = &[
        1, 131, 1, 2, 3, 4, 96, 96, 96, 46, 128, 1, 2, 3, 4, 128, 131, 1, 2, 3, 4, 101, 103, 101,
    ];
    let mut codec = Codec::default();
    let mut events = Vec::new();
    let mut violated = false;
    for piece in input.chunks(3) {
        let before = events.len();
        if feed_into(&mut codec, piece, &mut events).is_some() {
            violated = true;
        } else if violated {
            assert_eq!(events.len(), before, "decoded after the violation");
        }
    }
    assert!(violated);
    assert!(events.is_empty());
    assert_eq!(codec.held_bytes(), 0);
}

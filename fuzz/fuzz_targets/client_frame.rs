//! Client frames (what a WebSocket client sends) from arbitrary bytes: never
//! a panic, and a frame that parses survives a round trip unchanged.
#![no_main]

use gochat_proto::frames::ClientFrame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = serde_json::from_slice::<ClientFrame>(data) {
        let again = serde_json::to_vec(&frame).expect("a parsed frame serialises");
        let back: ClientFrame = serde_json::from_slice(&again).expect("and parses again");
        assert_eq!(back, frame);
    }
});

//! The WebSocket frame decoder on arbitrary bytes, fed in pieces whose size
//! the first byte chooses (frames split across reads are the normal case):
//! it must never panic, and after a violation it must decode nothing more.
#![no_main]

use gochat_edge::ws::codec::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut codec = Codec::default();
    let mut failed = false;
    for piece in rest.chunks(step) {
        let mut events = 0;
        let result = codec.feed(&mut piece.to_vec(), 4096, |_| {
            events += 1;
            None
        });
        assert!(!failed || events == 0, "decoded after a violation");
        if result.is_some() {
            failed = true;
        }
    }
});

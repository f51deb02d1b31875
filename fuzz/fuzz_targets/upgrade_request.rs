//! The HTTP upgrade request parser on arbitrary bytes: it must never panic,
//! and what it accepts must fit in what it was given.
#![no_main]

use gochat_edge::ws::handshake;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((_, used))) = handshake::parse(data, "/ws") {
        assert!(used <= data.len());
    }
});

//! Downstream record keys (what a gateway core obeys) from arbitrary bytes:
//! never a panic, and a key that decodes encodes to a key that decodes to
//! the same thing.
#![no_main]

use gochat_proto::kafka::DownstreamKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(key) = DownstreamKey::decode(data) {
        assert_eq!(DownstreamKey::decode(key.encode().as_bytes()), Some(key));
    }
});

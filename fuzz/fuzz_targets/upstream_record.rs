//! Upstream records (what logic consumes) from arbitrary bytes: never a
//! panic, and a record that parses survives a round trip unchanged.
#![no_main]

use gochat_proto::kafka::UpstreamRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = serde_json::from_slice::<UpstreamRecord>(data) {
        let again = serde_json::to_vec(&record).expect("a parsed record serialises");
        let back: UpstreamRecord = serde_json::from_slice(&again).expect("and parses again");
        assert_eq!(back, record);
    }
});

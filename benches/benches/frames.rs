//! JSON encode/decode of the client frames and Kafka values on the hot paths.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gochat_proto::frames::{AckFrame, ClientFrame, MessageFrame, MessageType, ServerFrame};
use gochat_proto::ids::Id;
use gochat_proto::kafka::UpstreamRecord;
use std::hint::black_box;

const SEND: &str = r#"{"type":"send","client_msg_id":"c-1","to_user_id":"42","message_type":"text","content":"hello there, how are you doing today?","metadata":{},"mentions":[]}"#;
const UPSTREAM: &str = r#"{"version":"1.0","from_user_id":"41","device_id":"web","gateway_id":"gw1","core":1,"conn_id":77,"timestamp":1640995200000,"type":"send","client_msg_id":"c-1","to_user_id":"42","message_type":"text","content":"hello there, how are you doing today?","metadata":{},"mentions":[]}"#;

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frames");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_send", |b| {
        b.iter(|| serde_json::from_str::<ClientFrame>(black_box(SEND)))
    });
    group.bench_function("decode_upstream_record", |b| {
        b.iter(|| serde_json::from_str::<UpstreamRecord>(black_box(UPSTREAM)))
    });
    let message = ServerFrame::Message(MessageFrame {
        message_id: Id(7_000_000_000_001),
        conversation_id: "0f6c7f0b4f7c5d9a1f3b2c1d0e9f8a7b".into(),
        seq_id: 12345,
        from_user_id: Id(41),
        to_user_id: Some(Id(42)),
        group_id: None,
        message_type: MessageType::Text,
        content: "hello there, how are you doing today?".into(),
        metadata: serde_json::json!({}),
        mentions: vec![],
        client_msg_id: Some("c-1".into()),
        timestamp: 1_732_608_000_000,
        edited_at: None,
        recalled: false,
    });
    group.bench_function("encode_message", |b| {
        b.iter(|| black_box(&message).to_json())
    });
    let ack = ServerFrame::Ack(AckFrame {
        client_msg_id: "c-1".into(),
        message_id: Id(7_000_000_000_001),
        conversation_id: "0f6c7f0b4f7c5d9a1f3b2c1d0e9f8a7b".into(),
        seq_id: 12345,
        timestamp: 1_732_608_000_000,
    });
    group.bench_function("encode_ack", |b| b.iter(|| black_box(&ack).to_json()));
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);

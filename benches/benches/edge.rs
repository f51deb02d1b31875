//! The edge's per-frame work: decoding masked client frames, and the downstream
//! routing step (parse the record key, frame the payload for each connection).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gochat_edge::ws::codec::{Codec, encode_text};
use gochat_proto::kafka::DownstreamKey;
use std::hint::black_box;

const SEND: &[u8] = br#"{"type":"send","client_msg_id":"c-1","to_user_id":"42","message_type":"text","content":"hello there, how are you doing today?","metadata":{},"mentions":[]}"#;
const MESSAGE: &[u8] = br#"{"type":"message","message_id":"7000000000001","conversation_id":"0f6c7f0b4f7c5d9a1f3b2c1d0e9f8a7b","seq_id":12345,"from_user_id":"41","to_user_id":"42","message_type":"text","content":"hello there, how are you doing today?","metadata":{},"mentions":[],"timestamp":1732608000000}"#;

fn masked(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x81, 0xfe];
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn edge(c: &mut Criterion) {
    let mut group = c.benchmark_group("edge");
    group.throughput(Throughput::Elements(1));
    let frame = masked(SEND);
    let mut codec = Codec::default();
    // The codec unmasks in place: each iteration decodes a fresh copy of
    // the bytes, as each read brings fresh bytes (the copy is measured too).
    let mut read = Vec::with_capacity(16 * frame.len());
    group.bench_function("decode_masked_send_frame", |b| {
        b.iter(|| {
            read.clear();
            read.extend_from_slice(black_box(&frame));
            codec.feed(&mut read, 64 * 1024, |event| {
                black_box(event);
                None
            })
        })
    });
    // Sixteen frames in one read, as a busy client's socket delivers them.
    let burst: Vec<u8> = (0..16).flat_map(|_| frame.clone()).collect();
    group.throughput(Throughput::Elements(16));
    group.bench_function("decode_16_frames_in_one_read", |b| {
        b.iter(|| {
            read.clear();
            read.extend_from_slice(black_box(&burst));
            codec.feed(&mut read, 64 * 1024, |event| {
                black_box(event);
                None
            })
        })
    });
    // The routing step for one downstream record to 8 connections on a core.
    let key = DownstreamKey::to((1u64..=8).map(|i| (i << 24) | i).collect()).encode();
    let mut out = Vec::with_capacity(8 * 400);
    group.throughput(Throughput::Elements(8));
    group.bench_function("route_record_to_8_connections", |b| {
        b.iter(|| {
            out.clear();
            {
                let Some(DownstreamKey::Conns { conns, .. }) =
                    DownstreamKey::decode(black_box(key.as_bytes()))
                else {
                    return;
                };
                for _ in &conns {
                    encode_text(black_box(MESSAGE), &mut out);
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, edge);
criterion_main!(benches);

//! A core's spans, made only when tracing is on (`tracing.otlp_endpoint`):
//! one per sampled client frame passed upstream (`edge.upstream`, the root
//! of the message's trace, its `traceparent` carried in the upstream
//! record's headers) and one per traced downstream record (`edge.deliver`,
//! a child of logic's span, over the writes into the connections'
//! outboxes). The context is passed by hand: a monoio core has no ambient
//! context across its tasks, and nothing here awaits while a span is open.

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use gochat_proto::kafka::DownstreamKey;
use gochat_proto::trace::TraceParent;

use super::Core;
use super::conn::Conn;

/// Starts the span of a client frame (sampled or not, as the tracer's
/// sampler decides); its `traceparent` is [`TraceParent::of`] the context.
pub(super) fn upstream(
    tracer: &BoxedTracer,
    core: &Core,
    conn: &Conn,
    frame: &'static str,
) -> Context {
    let span = tracer
        .span_builder("edge.upstream")
        .with_kind(SpanKind::Producer)
        .with_attributes([
            KeyValue::new("gochat.gateway", core.shared.config.gateway_id.clone()),
            KeyValue::new("gochat.core", i64::from(core.index)),
            KeyValue::new("gochat.conn", conn.id.to_string()),
            KeyValue::new("enduser.id", conn.user.to_string()),
            KeyValue::new("gochat.frame", frame),
        ])
        .start(tracer);
    Context::new().with_span(span)
}

/// Ends a frame's span once its record is queued (or refused).
pub(super) fn queued(span: Context, refused: Option<&str>) {
    let span = span.span();
    if let Some(why) = refused {
        span.set_status(Status::error(why.to_owned()));
    }
    span.end();
}

/// Runs `deliver` inside the span of a traced downstream record.
pub(super) fn deliver(
    tracer: &BoxedTracer,
    core: &Core,
    key: &DownstreamKey,
    trace: &TraceParent,
    deliver: impl FnOnce(),
) {
    let mut span = tracer
        .span_builder("edge.deliver")
        .with_kind(SpanKind::Consumer)
        .with_attributes([
            KeyValue::new("gochat.gateway", core.shared.config.gateway_id.clone()),
            KeyValue::new("gochat.core", i64::from(core.index)),
            KeyValue::new("gochat.key", key.encode()),
        ])
        .start_with_context(tracer, &trace.context());
    deliver();
    span.end();
}

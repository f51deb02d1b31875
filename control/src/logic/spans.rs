//! Logic's spans: one per traced client frame it consumes (`logic.send`,
//! `logic.read`, ...), a child of the gateway's `edge.upstream` span. The
//! span's context travels with the send ([`super::Send::trace`]): the group
//! commit runs under the first traced send's context (so the repo calls it
//! makes over gRPC carry it), and each message's downstream and task
//! records carry their own send's.
//!
//! Without an installed exporter the global tracer makes non-recording
//! spans that still carry their parent's ids, so a process that does not
//! export passes a trace on unchanged.

use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};

use gochat_proto::ids::Id;
use gochat_proto::trace::TraceParent;

/// Starts the span of a consumed frame under the gateway's.
pub(crate) fn consumed(parent: &TraceParent, frame: &'static str, from: Id) -> Context {
    let parent = parent.context();
    let tracer = global::tracer("gochat-logic");
    let span = tracer
        .span_builder(format!("logic.{frame}"))
        .with_kind(SpanKind::Consumer)
        .with_attributes([KeyValue::new("enduser.id", from.to_string())])
        .start_with_context(&tracer, &parent);
    parent.with_span(span)
}

/// Ends a frame's span, as refused when `refused` says why.
pub(crate) fn end(cx: &Context, refused: Option<&str>) {
    let span = cx.span();
    if let Some(why) = refused {
        span.set_status(Status::error(why.to_owned()));
    }
    span.end();
}

/// The `trace_id` log lines of this traced work carry.
pub(crate) fn log_span(cx: &Context) -> tracing::Span {
    let trace_id = cx.span().span_context().trace_id();
    tracing::info_span!("traced", trace_id = %trace_id)
}

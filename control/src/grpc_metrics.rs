//! gRPC latency for `/metrics`: one tower service wrapped around the gRPC
//! server's routes and around the repo client's channel, recording
//! `gochat_grpc_seconds{side, method}` (side `server` or `client`, method
//! the call's path) and counting calls that failed below gRPC (the
//! connection, not a status) in `gochat_grpc_transport_errors_total`.
//! It also carries traces over gRPC: a call made under a traced context
//! sends its `traceparent` as metadata, and a call served with one runs
//! inside a server span that continues it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use gochat_proto::trace::{self, TraceParent};
use opentelemetry::context::FutureExt;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{KeyValue, global};
use tonic::codegen::http;
use tower::Service;

/// Times every call through `inner`.
#[derive(Debug, Clone)]
pub struct Timed<S> {
    inner: S,
    side: &'static str,
}

impl<S> Timed<S> {
    /// Calls this process serves.
    pub fn server(inner: S) -> Self {
        Self {
            inner,
            side: "server",
        }
    }

    /// Calls this process makes.
    pub fn client(inner: S) -> Self {
        Self {
            inner,
            side: "client",
        }
    }
}

impl<S, B, R> Service<http::Request<B>> for Timed<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let side = self.side;
        let started = Instant::now();
        let span = if side == "client" {
            pass_trace_on(&mut request);
            None
        } else {
            served_span(&request, &method)
        };
        let Some(span) = span else {
            let call = self.inner.call(request);
            return Box::pin(async move {
                let result = call.await;
                record(side, method, started, result.is_err());
                result
            });
        };
        let call = {
            let _entered = span.clone().attach();
            self.inner.call(request)
        };
        Box::pin(async move {
            let result = call.with_context(span.clone()).await;
            let failed = result.is_err();
            if failed {
                span.span().set_status(Status::error("transport error"));
            }
            span.span().end();
            record(side, method, started, failed);
            result
        })
    }
}

/// A call this process makes carries the trace of the context it is made
/// under, as gRPC metadata (`traceparent`).
fn pass_trace_on<B>(request: &mut http::Request<B>) {
    let Some(trace) = TraceParent::current() else {
        return;
    };
    if let Ok(value) = http::HeaderValue::from_str(trace.as_str()) {
        request.headers_mut().insert(trace::HEADER, value);
    }
}

/// The span of a traced call this process serves (a child of the caller's),
/// entered while the service runs; `None` for an untraced call.
fn served_span<B>(request: &http::Request<B>, method: &str) -> Option<opentelemetry::Context> {
    let parent = request
        .headers()
        .get(trace::HEADER)
        .and_then(|v| TraceParent::parse(v.as_bytes()))?
        .context();
    let tracer = global::tracer("gochat-grpc");
    let span = tracer
        .span_builder(method.trim_start_matches('/').to_owned())
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("rpc.system", "grpc")])
        .start_with_context(&tracer, &parent);
    Some(parent.with_span(span))
}

fn record(side: &'static str, method: String, started: Instant, failed: bool) {
    if failed {
        metrics::counter!("gochat_grpc_transport_errors_total", "side" => side, "method" => method.clone())
            .increment(1);
    }
    metrics::histogram!("gochat_grpc_seconds", "side" => side, "method" => method)
        .record(started.elapsed().as_secs_f64());
}

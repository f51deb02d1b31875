//! gRPC latency for `/metrics`: one tower service wrapped around the gRPC
//! server's routes and around the repo client's channel, recording
//! `gochat_grpc_seconds{side, method}` (side `server` or `client`, method
//! the call's path) and counting calls that failed below gRPC (the
//! connection, not a status) in `gochat_grpc_transport_errors_total`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let side = self.side;
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await;
            if result.is_err() {
                metrics::counter!("gochat_grpc_transport_errors_total", "side" => side, "method" => method.clone())
                    .increment(1);
            }
            metrics::histogram!("gochat_grpc_seconds", "side" => side, "method" => method)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}

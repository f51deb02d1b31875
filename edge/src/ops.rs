//! What an operator sees of a gateway: Prometheus metrics and the
//! `/healthz`, `/readyz`, `/metrics` endpoints, served on the `ops` address
//! by a thread of its own (never a worker core).
//!
//! Worker cores count through [`CoreMetrics`], handles registered once per
//! core; what moves per frame is tallied in plain cells and published once
//! a second (the recorder's increment is two atomic read-modify-writes, a
//! measurable share of an echoed frame's user-space time). The
//! recorder is process-wide: in a process that already has one (standalone,
//! where the control plane serves `/metrics`), the gateway's metrics go to
//! it and the gateway serves none of its own.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use metrics::{Counter, Gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The process's recorder, installed by the first caller; `None` when
/// another part of the process installed one first.
///
/// A gateway's time histograms (registry writes, gRPC calls to the control
/// plane, both timed per connect) are bucketed, not the exporter's default
/// summaries: a summary's quantile sketch grows to megabytes over a wide
/// range of latencies (about 300 bytes per connection at 10,000 per
/// gateway, measured), and buckets add up across gateways where quantiles
/// do not.
pub(crate) fn recorder() -> &'static Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(|| {
        gochat_proto::metrics::install(
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
                .ok()?,
        )
    })
}

/// Upper bounds, in seconds, of the histograms' buckets: a registry write
/// or a lookup takes about a millisecond when all is well; the top ones
/// are trouble.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A per-frame count of one core: added to in a cell, published to its
/// counter by [`CoreMetrics::publish`].
pub(crate) struct Tally {
    pending: Cell<u64>,
    counter: Counter,
}

impl Tally {
    fn new(counter: Counter) -> Self {
        Self {
            pending: Cell::new(0),
            counter,
        }
    }

    pub(crate) fn add(&self, n: u64) {
        self.pending.set(self.pending.get() + n);
    }

    fn publish(&self) {
        let n = self.pending.take();
        if n > 0 {
            self.counter.increment(n);
        }
    }
}

/// One worker core's counters.
pub(crate) struct CoreMetrics {
    /// Open connections on the core.
    pub connections: Gauge,
    /// WebSocket frames read.
    pub frames_in: Tally,
    /// WebSocket frames written.
    pub frames_out: Tally,
    /// Bytes read from sockets.
    pub bytes_in: Tally,
    /// Bytes written to sockets.
    pub bytes_out: Tally,
    outbox_high_water: Gauge,
    high_water: Cell<usize>,
    /// The size of a connection's task (its future), as last spawned.
    pub task_bytes: Gauge,
}

impl CoreMetrics {
    pub(crate) fn new(core: u32) -> Self {
        let core = core.to_string();
        let tally =
            |name: &'static str| Tally::new(metrics::counter!(name, "core" => core.clone()));
        Self {
            connections: metrics::gauge!("gochat_edge_connections", "core" => core.clone()),
            frames_in: tally("gochat_edge_frames_in_total"),
            frames_out: tally("gochat_edge_frames_out_total"),
            bytes_in: tally("gochat_edge_bytes_in_total"),
            bytes_out: tally("gochat_edge_bytes_out_total"),
            outbox_high_water: metrics::gauge!("gochat_edge_outbox_high_water_bytes", "core" => core.clone()),
            high_water: Cell::new(0),
            task_bytes: metrics::gauge!("gochat_edge_connection_task_bytes", "core" => core),
        }
    }

    /// Hands the tallies to the recorder: every second from the core's
    /// heartbeat tick, and once more when the core has drained.
    pub(crate) fn publish(&self) {
        for tally in [
            &self.frames_in,
            &self.frames_out,
            &self.bytes_in,
            &self.bytes_out,
        ] {
            tally.publish();
        }
    }

    /// A connection's outbox holds `bytes`: the core's high-water mark.
    pub(crate) fn outbox(&self, bytes: usize) {
        if bytes > self.high_water.get() {
            self.high_water.set(bytes);
            self.outbox_high_water.set(bytes as f64);
        }
    }
}

/// An upgrade ended: `ok`, the HTTP status of a refusal, `timeout` or `gone`.
pub(crate) fn upgrade(outcome: &'static str) {
    metrics::counter!("gochat_edge_upgrades_total", "outcome" => outcome).increment(1);
}

/// The gateway closed a connection with `code` (1013 for a slow reader is
/// also counted on its own).
pub(crate) fn close_sent(code: u16, slow_reader: bool) {
    metrics::counter!("gochat_edge_closes_total", "code" => code.to_string()).increment(1);
    if slow_reader {
        metrics::counter!("gochat_edge_slow_reader_closes_total").increment(1);
    }
}

/// How often readiness is evaluated for `gochat_edge_ready`.
const READY_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Answers `Ok` when the gateway can serve, or why it cannot.
pub type ReadyCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Serves the endpoints on `listener` until the process ends.
pub(crate) fn serve(
    listener: std::net::TcpListener,
    ready: ReadyCheck,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("edge-ops".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    tracing::error!("the ops listener could not be used");
                    return;
                };
                // Readiness as a metric too, for the "no ready gateway" alert.
                let probe = ready.clone();
                tokio::spawn(async move {
                    let gauge = metrics::gauge!("gochat_edge_ready");
                    loop {
                        gauge.set(if probe().await.is_ok() { 1.0 } else { 0.0 });
                        tokio::time::sleep(READY_EVERY).await;
                    }
                });
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let ready = ready.clone();
                    let service = hyper::service::service_fn(move |request| {
                        let ready = ready.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(request, ready).await) }
                    });
                    tokio::spawn(async move {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await;
                    });
                }
            });
        })
}

async fn answer<B>(request: Request<B>, ready: ReadyCheck) -> Response<Full<Bytes>> {
    let (status, body) = match request.uri().path() {
        "/healthz" => (StatusCode::OK, "ok".to_owned()),
        "/readyz" => match ready().await {
            Ok(()) => (StatusCode::OK, "ready".to_owned()),
            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
        },
        "/metrics" => match recorder() {
            Some(handle) => (StatusCode::OK, handle.render()),
            None => (StatusCode::OK, String::new()),
        },
        _ => (StatusCode::NOT_FOUND, "not found".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

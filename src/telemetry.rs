//! The process's logs and traces, set up once from its `[tracing]` section:
//! log lines as text or JSON (a traced span's `trace_id` inside), and, when
//! `tracing.otlp_endpoint` is set, spans exported over OTLP/gRPC in batches
//! (parent-based sampling: a gateway samples `sample_ratio` of its client
//! frames, everything downstream follows its choice).

use anyhow::Context as _;
use gochat_proto::trace::TracingConfig;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

/// Keeps the exporter; [`Telemetry::shutdown`] sends what is still queued.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Logs to stderr as `config` says (filtered by `GOCHAT_LOG`, default
/// `info`). Call once, before anything logs.
pub fn init_logs(config: &TracingConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GOCHAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if config.json_logs {
        logs.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        logs.init();
    }
}

/// Installs the span exporter when `config` names a collector; `service`
/// names the process in the traces (`gochat-edge`, `gochat-control`, ...).
/// Must run inside the tokio runtime, which the exporter's client uses.
pub fn init_traces(config: &TracingConfig, service: String) -> anyhow::Result<Telemetry> {
    if !config.enabled() {
        return Ok(Telemetry { provider: None });
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(config.otlp_endpoint.clone())
        .build()
        .with_context(|| format!("OTLP exporter for {}", config.otlp_endpoint))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    tracing::info!(endpoint = %config.otlp_endpoint, ratio = config.sample_ratio, "exporting traces");
    Ok(Telemetry {
        provider: Some(provider),
    })
}

impl Telemetry {
    /// Exports the spans still queued and stops the exporter (blocking:
    /// call it off the runtime's worker threads or at the very end).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "trace exporter did not shut down cleanly");
        }
    }
}

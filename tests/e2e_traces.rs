//! One trace per message, in the cluster: every process exports its spans
//! over OTLP/gRPC to a collector this test runs (in memory, on port 0), and
//! a 1:1 message sent on one gateway and delivered by the other leaves one
//! trace holding the sending gateway's span, logic's, the repo's (logic in
//! a process of its own, so the repo is reached over gRPC) and the
//! delivering gateway's, each the child of the one before.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AttributeValue;
use serde_json::json;
use support::cluster::cluster_with;
use support::{Rest, Target};

/// A span as the collector got it.
#[derive(Debug, Clone)]
struct Seen {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    gateway: Option<String>,
}

/// An OTLP trace collector that keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Seen>>>);

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            AttributeValue::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut seen = self.0.lock().map_err(|_| tonic::Status::internal("lock"))?;
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| string_attribute(&r.attributes, "service.name"))
                .unwrap_or_default();
            for span in resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                seen.push(Seen {
                    service: service.clone(),
                    gateway: string_attribute(&span.attributes, "gochat.gateway"),
                    name: span.name,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent: span.parent_span_id,
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    /// Serves on a free port of 127.0.0.1; its URL.
    async fn start(&self) -> Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        Ok(url)
    }

    fn spans(&self) -> Vec<Seen> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The span of `trace` named `name` (from `service`, on `gateway` if set).
fn find<'a>(
    spans: &'a [Seen],
    trace: &[u8],
    service: &str,
    name: &str,
    gateway: Option<&str>,
) -> Option<&'a Seen> {
    spans.iter().find(|s| {
        s.trace_id == trace
            && s.service == service
            && s.name == name
            && (gateway.is_none() || s.gateway.as_deref() == gateway)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_leaves_one_trace_across_edge_logic_repo_and_edge() -> Result<()> {
    let collector = Collector::default();
    let endpoint = collector.start().await?;
    let cluster = cluster_with(&[
        // Logic alone in `logic2`, the repo (and task) in `control`.
        ("GOCHAT_CLUSTER_CONTROL_SERVICES", "repo,task"),
        ("GOCHAT_CLUSTER_LOGICS", "2"),
        ("GOCHAT_CLUSTER_CONTROL__TRACING__OTLP_ENDPOINT", &endpoint),
        ("GOCHAT_CLUSTER_EDGE__TRACING__OTLP_ENDPOINT", &endpoint),
        ("GOCHAT_CLUSTER_EDGE__TRACING__SAMPLE_RATIO", "1"),
        ("GOCHAT_CLUSTER_CONTROL__TRACING__JSON_LOGS", "true"),
        ("GOCHAT_LOG", "info,gochat_control::logic=debug"),
    ])
    .await?;
    // The REST API is logic's.
    let target = Target {
        rest: Rest::new(cluster.logics.first().context("no logic process")?.clone()),
        ws: cluster.target.ws.clone(),
        secret: cluster.target.secret.clone(),
        tls: None,
    };
    let alice = target.user("alice").await?;
    let bob = target.user("bob").await?;
    let mut a = target.connect(&alice, 0).await?;
    let mut b = target.connect(&bob, 1).await?;
    a.send(
        json!({"type":"send","client_msg_id":"traced-1","to_user_id":bob.id,"content":"follow me"}),
    )
    .await?;
    a.next_of("ack").await?;
    let message = b.next_of("message").await?;
    assert_eq!(message["content"], "follow me");

    // Spans are exported in batches (every few seconds).
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let spans = collector.spans();
        let found = spans
            .iter()
            .filter(|s| s.name == "edge.upstream" && s.gateway.as_deref() == Some("gw1"))
            .find_map(|upstream| {
                let trace = &upstream.trace_id;
                let logic = find(&spans, trace, "gochat-logic", "logic.send", None)?;
                let store = find(
                    &spans,
                    trace,
                    "gochat-repo+task",
                    "gochat.repo.v1.Repo/StoreMessages",
                    None,
                )?;
                let deliver = find(&spans, trace, "gochat-edge", "edge.deliver", Some("gw2"))?;
                let ack = find(&spans, trace, "gochat-edge", "edge.deliver", Some("gw1"))?;
                Some((upstream, logic, store, deliver, ack))
            });
        if let Some((upstream, logic, store, deliver, ack)) = found {
            assert_eq!(upstream.service, "gochat-edge");
            assert!(upstream.parent.is_empty(), "the gateway starts the trace");
            assert_eq!(
                logic.parent, upstream.span_id,
                "logic continues the gateway's span"
            );
            assert_eq!(
                store.parent, logic.span_id,
                "the repo call is logic's child"
            );
            assert_eq!(
                deliver.parent, logic.span_id,
                "the delivery is logic's child"
            );
            assert_eq!(ack.parent, logic.span_id, "so is the ack's");
            // Logic's JSON log lines of the traced commit name the trace.
            let trace_id: String = upstream
                .trace_id
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let log = std::fs::read_to_string(cluster.dir.join("logic2.log"))?;
            let traced = log
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .any(|line| line["span"]["trace_id"] == trace_id.as_str());
            assert!(
                traced,
                "no JSON log line of logic2 carries trace {trace_id}:\n{log}"
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            let names: Vec<String> = spans
                .iter()
                .map(|s| format!("{}:{}:{:?}", s.service, s.name, s.gateway))
                .collect();
            bail!("no complete trace; spans seen: {names:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

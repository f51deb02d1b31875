//! One trace per message across the tiers: the W3C `traceparent` a traced
//! frame carries from the edge through Kafka record headers, gRPC metadata
//! and back to the delivering edge ([`TraceParent`]), and the `[tracing]`
//! section every binary shares ([`TracingConfig`]).
//!
//! Only sampled spans travel: the edge decides (by `sample_ratio`) when it
//! starts a frame's span, and a record without a `traceparent` is simply not
//! traced further — logic and repo never start traces of their own for it,
//! so an unsampled message costs nothing past the edge's coin toss.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde::{Deserialize, Serialize};

/// The header (Kafka record header, gRPC metadata key) that carries it.
pub const HEADER: &str = "traceparent";

/// A sampled span's W3C `traceparent` value (`00-<trace id>-<span id>-01`),
/// checked when made or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent(String);

impl TraceParent {
    /// The value for `cx`'s span, if it has a sampled one.
    pub fn of(cx: &Context) -> Option<Self> {
        if !cx.span().span_context().is_sampled() {
            return None;
        }
        let mut carrier = OneHeader(None);
        TraceContextPropagator::new().inject_context(cx, &mut carrier);
        carrier.0.map(Self)
    }

    /// The value for the span of the current context (the one a future
    /// runs under), if it is sampled.
    pub fn current() -> Option<Self> {
        Self::of(&Context::current())
    }

    /// A received value; `None` unless it is a valid `traceparent` of a
    /// sampled span.
    pub fn parse(value: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(value).ok()?;
        // The propagator takes ids of any length; the W3C form is fixed.
        let parts: Vec<&str> = text.split('-').collect();
        let shaped = parts.iter().map(|p| p.len()).eq([2, 32, 16, 2])
            && parts
                .iter()
                .all(|p| p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        if !shaped {
            return None;
        }
        let sampled = extract(text).span().span_context().is_sampled();
        sampled.then(|| Self(text.to_owned()))
    }

    /// The one a record carries among its headers (key, value), if valid.
    pub fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) -> Option<Self> {
        headers
            .into_iter()
            .find(|(key, _)| *key == HEADER)
            .and_then(|(_, value)| Self::parse(value?))
    }

    /// A context whose (remote) span is this one: the parent of the spans
    /// that continue the trace here.
    pub fn context(&self) -> Context {
        extract(&self.0)
    }

    /// The trace id (32 hex digits), for log lines.
    pub fn trace_id(&self) -> String {
        self.context().span().span_context().trace_id().to_string()
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn extract(value: &str) -> Context {
    TraceContextPropagator::new().extract(&OneHeader(Some(value.to_owned())))
}

/// A carrier of the `traceparent` header alone (`tracestate` is not kept:
/// nothing of ours writes it).
struct OneHeader(Option<String>);

impl Injector for OneHeader {
    fn set(&mut self, key: &str, value: String) {
        if key == HEADER {
            self.0 = Some(value);
        }
    }
}

impl Extractor for OneHeader {
    fn get(&self, key: &str) -> Option<&str> {
        (key == HEADER).then_some(self.0.as_deref()).flatten()
    }
    fn keys(&self) -> Vec<&str> {
        vec![HEADER]
    }
}

/// `[tracing]`: traces and log format. Off unless an endpoint is set.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// An OTLP/gRPC collector (`http://otel-collector:4317`) the process
    /// exports its spans to; empty (the default): no spans are made.
    pub otlp_endpoint: String,
    /// The share of client frames a gateway traces (0.0 to 1.0); logic,
    /// repo and the delivering gateway follow the gateway's choice.
    pub sample_ratio: f64,
    /// Log lines as JSON objects, one per line (with the `trace_id` of the
    /// traced work they belong to), instead of text.
    pub json_logs: bool,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            sample_ratio: 0.01,
            json_logs: false,
        }
    }
}

impl TracingConfig {
    /// Are spans made and exported?
    pub fn enabled(&self) -> bool {
        !self.otlp_endpoint.is_empty()
    }

    /// Why the section is wrong, if it is.
    pub fn problem(&self) -> Option<String> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Some(format!(
                "tracing.sample_ratio {} is not between 0 and 1",
                self.sample_ratio
            ));
        }
        let endpoint = &self.otlp_endpoint;
        let url = endpoint.starts_with("http://") || endpoint.starts_with("https://");
        if !(endpoint.is_empty() || url) {
            return Some(format!(
                "tracing.otlp_endpoint {endpoint:?} is not an http:// or https:// URL"
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    fn sampled(flags: TraceFlags) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_bytes([7; 16]),
            SpanId::from_bytes([9; 8]),
            flags,
            true,
            TraceState::default(),
        ))
    }

    #[test]
    fn a_sampled_span_round_trips() {
        let parent = TraceParent::of(&sampled(TraceFlags::SAMPLED)).expect("sampled");
        assert_eq!(
            parent.as_str(),
            "00-07070707070707070707070707070707-0909090909090909-01"
        );
        let back = TraceParent::parse(parent.as_str().as_bytes()).expect("valid");
        assert_eq!(back, parent);
        assert_eq!(back.trace_id(), "07070707070707070707070707070707");
        let span = back.context().span().span_context().clone();
        assert_eq!(span.span_id(), SpanId::from_bytes([9; 8]));
        assert!(span.is_remote());
    }

    #[test]
    fn unsampled_and_garbage_do_not_travel() {
        assert_eq!(TraceParent::of(&sampled(TraceFlags::default())), None);
        assert_eq!(TraceParent::of(&Context::new()), None);
        for bad in [
            &b""[..],
            b"00-07070707070707070707070707070707-0909090909090909-00",
            b"00-00000000000000000000000000000000-0909090909090909-01",
            b"00-0707-09-01",
            b"00-07070707070707070707070707070707-0909090909090909-01-extra",
            b"00-0707070707070707070707070707070A-0909090909090909-01",
            b"\xff\xfe",
            b"zz-07070707070707070707070707070707-0909090909090909-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_section_is_checked() {
        assert_eq!(TracingConfig::default().problem(), None);
        assert!(!TracingConfig::default().enabled());
        let ratio = TracingConfig {
            sample_ratio: 1.5,
            ..TracingConfig::default()
        };
        assert!(ratio.problem().is_some());
        let endpoint = TracingConfig {
            otlp_endpoint: "collector:4317".into(),
            ..TracingConfig::default()
        };
        assert!(endpoint.problem().is_some());
    }
}

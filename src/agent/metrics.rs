//! The agent's own Prometheus metrics, served on `--metrics-listen` (any path answers).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub r#type: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: String,
}

pub struct AgentMetrics {
    registry: Registry,
    pub probes: Family<ProbeLabels, Counter>,
    pub probe_duration: Family<TypeLabel, Histogram>,
    pub in_flight: Gauge,
    pub reconnects: Counter,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        let probes = Family::<ProbeLabels, Counter>::default();
        let probe_duration = Family::<TypeLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        let in_flight = Gauge::default();
        let reconnects = Counter::default();
        let mut registry = Registry::with_prefix("netcheck_agent");
        registry.register(
            "probes",
            "Probes run, by check type and outcome",
            probes.clone(),
        );
        registry.register(
            "probe_duration_seconds",
            "Probe duration, by check type",
            probe_duration.clone(),
        );
        registry.register("in_flight", "Probes running now", in_flight.clone());
        registry.register(
            "reconnects",
            "Broker sessions re-established after a loss",
            reconnects.clone(),
        );
        Self {
            registry,
            probes,
            probe_duration,
            in_flight,
            reconnects,
        }
    }
}

impl AgentMetrics {
    pub fn observe(&self, kind: &str, outcome: &str, secs: f64) {
        self.probes
            .get_or_create(&ProbeLabels {
                r#type: kind.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.probe_duration
            .get_or_create(&TypeLabel {
                r#type: kind.into(),
            })
            .observe(secs);
    }

    fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding to a String cannot fail");
        out
    }
}

/// Serves the metrics until the task is dropped.
/// Binds the metrics address before the agent registers, so an address that cannot be had
/// stops the agent rather than leaving it running without the metrics its operator asked for.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "agent metrics listening");
    Ok(listener)
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<AgentMetrics>,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |_req| {
                let body = metrics.render();
                async move {
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .header(
                                "content-type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .body(Full::new(Bytes::from(body)))
                            .expect("static response"),
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

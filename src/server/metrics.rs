//! The server's Prometheus registry and what it counts; `/metrics` (in `health`) renders it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Dependency {
    pub dependency: String,
}

/// Failures talking to PostgreSQL, Redis or the broker, counted wherever they surface
/// (process-wide, so error conversions can count without access to the server state).
pub static DEPENDENCY_ERRORS: std::sync::LazyLock<Family<Dependency, Counter>> =
    std::sync::LazyLock::new(Family::default);

pub fn dependency_error(dependency: &str) {
    DEPENDENCY_ERRORS
        .get_or_create(&Dependency {
            dependency: dependency.into(),
        })
        .inc();
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Status {
    pub status: String,
}

pub struct Metrics {
    registry: Registry,
    pub checks_created: Counter,
    pub checks_finished: Counter,
    /// Checks refused with `overloaded`, and agents' answers given as `agent_busy` at creation.
    pub checks_overloaded: Counter,
    pub agents_busy: Counter,
    /// `/probe` scrapes answered, and those naming a module the server does not have.
    pub probe_scrapes: Counter,
    pub probe_module_unknown: Counter,
    pub results_stored: Counter,
    pub results_duplicate: Counter,
    pub results_timed_out: Counter,
    /// Results not stored, by reason: `unauthenticated`, `malformed`, `forged`, `not_asked`.
    pub results_dropped: Family<Reason, Counter>,
    /// Seconds from check creation to a result being stored.
    pub result_latency: Histogram,
    /// Results per message from agents (they send those that finish while a message
    /// awaits its confirm together).
    pub result_message_size: Histogram,
    /// Results stored per batch (one SQL statement each).
    pub result_batch_size: Histogram,
    /// Seconds one batch of results took to store.
    pub result_batch_seconds: Histogram,
    agents: Family<Status, Gauge>,
    broker_connected: Gauge,
    live_streams: Gauge,
    live_events_subscribed: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("netcheck");
        let m = Metrics {
            checks_created: Counter::default(),
            checks_finished: Counter::default(),
            checks_overloaded: Counter::default(),
            agents_busy: Counter::default(),
            probe_scrapes: Counter::default(),
            probe_module_unknown: Counter::default(),
            results_stored: Counter::default(),
            results_duplicate: Counter::default(),
            results_timed_out: Counter::default(),
            results_dropped: Family::default(),
            result_latency: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            result_message_size: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
            result_batch_size: Histogram::new([
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ]),
            result_batch_seconds: Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            agents: Family::default(),
            broker_connected: Gauge::default(),
            live_streams: Gauge::default(),
            live_events_subscribed: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("checks_created", "Checks created", m.checks_created.clone());
        registry.register(
            "checks_overloaded",
            "Checks refused because the agents or the server were past capacity (503 overloaded)",
            m.checks_overloaded.clone(),
        );
        registry.register(
            "agent_busy_answers",
            "Results answered agent_busy at creation because the agent was past capacity",
            m.agents_busy.clone(),
        );
        registry.register(
            "probe_scrapes",
            "Scrapes of /probe answered",
            m.probe_scrapes.clone(),
        );
        registry.register(
            "probe_module_unknown",
            "Scrapes of /probe naming a module the server does not have",
            m.probe_module_unknown.clone(),
        );
        registry.register(
            "checks_finished",
            "Checks finished",
            m.checks_finished.clone(),
        );
        registry.register(
            "results_stored",
            "Agent results stored",
            m.results_stored.clone(),
        );
        registry.register(
            "results_duplicate",
            "Redelivered results recognised as duplicates",
            m.results_duplicate.clone(),
        );
        registry.register(
            "results_timed_out",
            "Agents marked timeout at a check's deadline",
            m.results_timed_out.clone(),
        );
        registry.register(
            "results_dropped",
            "Results refused, by reason",
            m.results_dropped.clone(),
        );
        registry.register(
            "result_latency_seconds",
            "Time from check creation to a result being stored",
            m.result_latency.clone(),
        );
        registry.register(
            "result_message_size",
            "Results per message received from agents",
            m.result_message_size.clone(),
        );
        registry.register(
            "result_batch_size",
            "Results stored together in one statement",
            m.result_batch_size.clone(),
        );
        registry.register(
            "result_batch_seconds",
            "Time one batch of results took to store",
            m.result_batch_seconds.clone(),
        );
        registry.register("agents", "Agents by status", m.agents.clone());
        registry.register(
            "broker_connected",
            "1 while the server's AMQP session is up",
            m.broker_connected.clone(),
        );
        registry.register(
            "live_streams",
            "Open live-result streams (Server-Sent Events) on this instance",
            m.live_streams.clone(),
        );
        registry.register(
            "live_events_subscribed",
            "1 while this instance's one Redis subscription to live events is up",
            m.live_events_subscribed.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    pub fn dropped(&self, reason: &str) -> u64 {
        self.results_dropped
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .get()
    }

    pub fn drop_result(&self, reason: &str) {
        self.results_dropped
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .inc();
    }
}

/// What the gauges show, read by the `/metrics` handler when it is scraped.
pub struct Snapshot {
    /// Agents online, offline and pending (`None`: unknown now, keep the last values).
    pub agents: Option<[i64; 3]>,
    pub broker_connected: bool,
    pub live_streams: usize,
    pub live_events_subscribed: bool,
}

impl Metrics {
    /// Sets the gauges from `now` and renders everything in the Prometheus text format.
    pub fn render(&self, now: Snapshot) -> Option<String> {
        if let Some(counts) = now.agents {
            for (i, name) in ["online", "offline", "pending"].iter().enumerate() {
                self.agents
                    .get_or_create(&Status {
                        status: name.to_string(),
                    })
                    .set(counts[i]);
            }
        }
        self.broker_connected.set(now.broker_connected as i64);
        self.live_streams.set(now.live_streams as i64);
        self.live_events_subscribed
            .set(now.live_events_subscribed as i64);
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, &self.registry).ok()?;
        Some(body)
    }
}

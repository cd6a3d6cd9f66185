//! The server's own AMQP session: publishes check requests (with confirms) and consumes the
//! results queue. amqprs does not recover by itself, so this loop reconnects with a backoff
//! capped at a second; while it is down, creating a check answers 503. It also tells the
//! sweeper when results could not be received ([`BrokerLink::receiving`]).

use std::sync::Arc;
use std::time::Duration;

use amqprs::channel::{BasicConsumeArguments, BasicQosArguments};
use amqprs::connection::Connection;
use amqprs::BasicProperties;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use super::results_queue;
use crate::amqp::{PublishError, Sink, Watch};
use crate::backoff::Backoff;
use crate::config::AmqpSettings;
use amqprs::channel::Channel;

/// Results handled at the same time (the broker's prefetch window).
pub const RESULT_PREFETCH: u16 = 256;

/// One delivery from the results queue, handed to the collector.
pub struct Delivery {
    pub properties: BasicProperties,
    pub body: Vec<u8>,
    pub tag: u64,
    pub channel: Channel,
    /// Which broker session (connection) it came through; tags count per session.
    pub session: u64,
}

impl Delivery {
    fn new(msg: amqprs::channel::ConsumerMessage, channel: &Channel, session: u64) -> Self {
        Self {
            properties: msg.basic_properties.unwrap_or_default(),
            body: msg.content.unwrap_or_default(),
            tag: msg.deliver.map(|d| d.delivery_tag()).unwrap_or_default(),
            channel: channel.clone(),
            session,
        }
    }
}

/// How long a check request's publish keeps trying across a failover before 503.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(4);
/// Pause before publishing again after a refusal or a lost session.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// How long one broker node may take to accept a connection before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Numbers broker sessions, so deliveries of different sessions are never acked together.
static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub struct BrokerLink {
    publisher: RwLock<Option<Arc<Sink>>>,
    sessions: std::sync::Mutex<SessionTimes>,
    /// The node of the current session (`host:port`), for logs and tests.
    node: std::sync::Mutex<Option<String>>,
    /// Index into `amqp.urls` to try first: the node after the one last lost.
    next_url: std::sync::atomic::AtomicUsize,
    /// A results queue of the former queue type still holding results, consumed beside the
    /// current one until it is empty.
    draining: std::sync::Mutex<Option<String>>,
}

/// When the current session began and when the one before it ended.
struct SessionTimes {
    up_since: Option<std::time::Instant>,
    /// When the last session ended; the process start before the first one.
    lost_at: chrono::DateTime<chrono::Utc>,
    /// Whether a session was ever lost (the current one is a reconnection).
    reconnected: bool,
}

/// Whether results can be received, as the sweeper needs to know it.
pub enum Receiving {
    /// No session: results held back by the broker or by agents cannot arrive.
    No,
    /// A session, up for `up_for`. The one before ended at `lost_at` (for the first session of
    /// the process, `lost_at` is its start and `reconnected` is false).
    Since {
        up_for: Duration,
        lost_at: chrono::DateTime<chrono::Utc>,
        reconnected: bool,
    },
}

impl Default for BrokerLink {
    fn default() -> Self {
        Self {
            publisher: RwLock::default(),
            sessions: std::sync::Mutex::new(SessionTimes {
                up_since: None,
                lost_at: chrono::Utc::now(),
                reconnected: false,
            }),
            node: std::sync::Mutex::default(),
            next_url: std::sync::atomic::AtomicUsize::new(0),
            draining: std::sync::Mutex::default(),
        }
    }
}

/// Waits between reconnection attempts: from 100 ms to at most 1 s, so the session is back
/// within about a second of the broker.
fn reconnect_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(1))
}

impl BrokerLink {
    /// Whether results can be received now, and since when.
    pub fn receiving(&self) -> Receiving {
        let s = self.sessions.lock().expect("sessions lock");
        match s.up_since {
            None => Receiving::No,
            Some(t) => Receiving::Since {
                up_for: t.elapsed(),
                lost_at: s.lost_at,
                reconnected: s.reconnected,
            },
        }
    }

    fn session_up(&self) {
        self.sessions.lock().expect("sessions lock").up_since = Some(std::time::Instant::now());
    }

    fn session_lost(&self) {
        let mut s = self.sessions.lock().expect("sessions lock");
        if s.up_since.take().is_some() {
            s.lost_at = chrono::Utc::now();
            s.reconnected = true;
        }
    }

    /// The broker node of the current session (`host:port`), `None` while disconnected.
    pub fn node(&self) -> Option<String> {
        self.node.lock().expect("node lock").clone()
    }

    /// The results queue of the former queue type that is still to be drained, if any.
    pub fn draining(&self) -> Option<String> {
        self.draining.lock().expect("draining lock").clone()
    }

    /// Sets the queue to drain; a new one is consumed from the next session on.
    pub fn set_draining(&self, queue: Option<String>) {
        *self.draining.lock().expect("draining lock") = queue;
    }

    pub async fn is_connected(&self) -> bool {
        self.publisher.read().await.is_some()
    }

    /// Whether a session is up within `wait` (at once when it is): a failover between a
    /// cluster's nodes takes a fraction of a second, which a request can wait out.
    pub async fn wait_connected(&self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.is_connected().await {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Publishes with a publisher confirm; `Err` when the broker is unreachable or refused it.
    /// A publish that failed with its session (the node went away) or was refused while a
    /// quorum queue changed leaders is tried again on the next session for up to
    /// [`PUBLISH_PATIENCE`]: the message may then arrive twice, which agents and the results
    /// store take as once.
    pub async fn publish(
        &self,
        props: BasicProperties,
        body: Vec<u8>,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), PublishError> {
        let deadline = tokio::time::Instant::now() + PUBLISH_PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !self.wait_connected(left).await {
                return Err(PublishError::Closed);
            }
            let Some(publisher) = self.publisher.read().await.clone() else {
                continue;
            };
            let result = publisher
                .publish(
                    props.clone(),
                    body.clone(),
                    exchange,
                    routing_key,
                    Duration::from_secs(5),
                )
                .await;
            match result {
                Err(PublishError::Closed | PublishError::Io(_) | PublishError::Nacked)
                    if tokio::time::Instant::now() + RETRY_PAUSE < deadline =>
                {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                other => return other,
            }
        }
    }

    /// Keeps a session up until `shutdown`; every result delivery goes to `results` (at most
    /// [`RESULT_PREFETCH`] are unacknowledged at a time, which bounds the channel).
    pub async fn run(
        self: Arc<Self>,
        settings: AmqpSettings,
        results: UnboundedSender<Delivery>,
        shutdown: CancellationToken,
    ) {
        let mut backoff = reconnect_backoff();
        loop {
            let started = std::time::Instant::now();
            let reason = self.session(&settings, &results, &shutdown).await;
            *self.publisher.write().await = None;
            *self.node.lock().expect("node lock") = None;
            if shutdown.is_cancelled() {
                return;
            }
            self.session_lost();
            crate::server::metrics::dependency_error("broker");
            let wait = backoff.after_session(started.elapsed());
            tracing::warn!(%reason, retry_in_ms = wait.as_millis() as u64, "broker session lost");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Connects to the first node that answers, starting after the one last lost, so a
    /// dead node costs one refused connection (or one connect timeout) per reconnection.
    async fn connect(&self, settings: &AmqpSettings) -> Result<Connection, String> {
        use std::sync::atomic::Ordering;
        let urls = settings.server_urls();
        let start = self.next_url.load(Ordering::Relaxed) % urls.len();
        let mut failures = Vec::new();
        for k in 0..urls.len() {
            let i = (start + k) % urls.len();
            let mut args = match crate::amqp::open_arguments(urls[i], settings.ca_file.as_deref()) {
                Ok(a) => a,
                Err(e) => return Err(format!("amqp.urls / amqp.ca_file: {e:#}")),
            };
            args.virtual_host(&settings.vhost)
                .heartbeat(20)
                .connection_name("netcheck-server");
            let node = crate::amqp::node_of(urls[i]);
            match tokio::time::timeout(CONNECT_TIMEOUT, Connection::open(&args)).await {
                Ok(Ok(conn)) => {
                    // The next reconnection starts with the node after this one.
                    self.next_url.store(i + 1, Ordering::Relaxed);
                    *self.node.lock().expect("node lock") = Some(node);
                    return Ok(conn);
                }
                Ok(Err(e)) => failures.push(format!("{node}: {e}")),
                Err(_) => failures.push(format!("{node}: no answer within {CONNECT_TIMEOUT:?}")),
            }
        }
        Err(format!("cannot connect: {}", failures.join("; ")))
    }

    async fn session(
        &self,
        settings: &AmqpSettings,
        results: &UnboundedSender<Delivery>,
        shutdown: &CancellationToken,
    ) -> String {
        let conn = tokio::select! {
            _ = shutdown.cancelled() => return "shut down".into(),
            c = self.connect(settings) => match c {
                Ok(c) => c,
                Err(e) => return e,
            },
        };
        let (watch, mut closed) = Watch::new();
        let setup = async {
            conn.register_callback(watch.clone()).await?;
            // Check requests go out on a channel of the sink's own (replaced when the broker
            // closes it or nacks on it); results come in on this one.
            let publisher = Sink::new(conn.clone());
            let consume = conn.open_channel(None).await?;
            consume.register_callback(watch.clone()).await?;
            consume
                .basic_qos(BasicQosArguments::new(0, RESULT_PREFETCH, false))
                .await?;
            let (_, rx) = consume
                .basic_consume_rx(
                    BasicConsumeArguments::new(
                        results_queue(settings.queue_type),
                        "netcheck-server",
                    )
                    .manual_ack(true)
                    .finish(),
                )
                .await?;
            // The same channel, so delivery tags (and acks) of both queues are one series.
            let drain = match self.draining() {
                Some(queue) => Some(
                    consume
                        .basic_consume_rx(
                            BasicConsumeArguments::new(&queue, crate::amqp::DRAIN_CONSUMER_TAG)
                                .manual_ack(true)
                                .finish(),
                        )
                        .await?
                        .1,
                ),
                None => None,
            };
            Ok::<_, amqprs::error::Error>((publisher, consume, rx, drain))
        };
        let (publisher, consume, mut deliveries, mut drain) = match setup.await {
            Ok(v) => v,
            Err(e) => {
                let _ = conn.close().await;
                return format!("session set-up failed: {e}");
            }
        };
        *self.publisher.write().await = Some(Arc::new(publisher));
        self.session_up();
        let session = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(node = ?self.node(), "broker session established");
        let watcher = conn.clone();
        let io_failure = watcher.listen_network_io_failure();
        tokio::pin!(io_failure);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    // Unacked results go back to the queue for the other instances.
                    let _ = conn.close().await;
                    return "shut down".into();
                }
                _ = &mut io_failure => return "network failure".into(),
                Some(reason) = closed.recv() => return reason,
                d = async { drain.as_mut().expect("guarded").recv().await }, if drain.is_some() => match d {
                    Some(msg) => {
                        if results.send(Delivery::new(msg, &consume, session)).is_err() {
                            return "results collector stopped".into();
                        }
                    }
                    // The drained queue was deleted (empty): carry on with the current one.
                    None => drain = None,
                },
                d = deliveries.recv() => match d {
                    Some(msg) => {
                        if results.send(Delivery::new(msg, &consume, session)).is_err() {
                            return "results collector stopped".into();
                        }
                    }
                    None => return "results consumer ended".into(),
                },
            }
        }
    }
}

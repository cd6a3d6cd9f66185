//! The server's own AMQP session: publishes check requests (with confirms) and consumes the
//! results queue. amqprs does not recover by itself, so this loop reconnects with a backoff
//! capped at a second; while it is down, creating a check answers 503. It also tells the
//! sweeper when results could not be received ([`BrokerLink::receiving`]).

use std::sync::Arc;
use std::time::Duration;

use amqprs::channel::{BasicConsumeArguments, BasicQosArguments};
use amqprs::connection::Connection;
use amqprs::BasicProperties;
use secrecy::ExposeSecret;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use super::RESULTS_QUEUE;
use crate::amqp::{PublishError, Publisher, Watch};
use crate::config::AmqpSettings;

/// Results handled at the same time (the broker's prefetch window).
pub const RESULT_PREFETCH: u16 = 256;

/// One delivery from the results queue, handed to the collector.
pub struct Delivery {
    pub properties: BasicProperties,
    pub body: Vec<u8>,
    pub tag: u64,
    pub channel: amqprs::channel::Channel,
    /// Which broker session (connection) it came through; tags count per session.
    pub session: u64,
}

/// Numbers broker sessions, so deliveries of different sessions are never acked together.
static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub struct BrokerLink {
    publisher: RwLock<Option<Arc<Publisher>>>,
    sessions: std::sync::Mutex<SessionTimes>,
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
        }
    }
}

/// Backoff between reconnection attempts: doubling from 100 ms to at most 1 s, with jitter,
/// so the session is back within about a second of the broker.
fn reconnect_wait(attempt: u32) -> Duration {
    use rand::RngExt;
    let cap = (100u64 << attempt.min(4)).min(1000);
    Duration::from_millis(rand::rng().random_range(cap / 2..=cap))
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

    pub async fn is_connected(&self) -> bool {
        self.publisher.read().await.is_some()
    }

    /// Publishes with a publisher confirm; `Err` when the broker is unreachable or refused it.
    pub async fn publish(
        &self,
        props: BasicProperties,
        body: Vec<u8>,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), PublishError> {
        let publisher = self
            .publisher
            .read()
            .await
            .clone()
            .ok_or(PublishError::Closed)?;
        publisher
            .publish(props, body, exchange, routing_key, Duration::from_secs(5))
            .await
    }

    /// Keeps a session up until `shutdown`; every result delivery goes to `results` (at most
    /// [`RESULT_PREFETCH`] are unacknowledged at a time, which bounds the channel).
    pub async fn run(
        self: Arc<Self>,
        settings: AmqpSettings,
        results: UnboundedSender<Delivery>,
        shutdown: CancellationToken,
    ) {
        let mut attempt = 0u32;
        loop {
            let started = std::time::Instant::now();
            let reason = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.session(&settings, &results) => r,
            };
            *self.publisher.write().await = None;
            self.session_lost();
            crate::server::metrics::dependency_error("broker");
            if started.elapsed() > Duration::from_secs(30) {
                attempt = 0;
            }
            let wait = reconnect_wait(attempt);
            attempt += 1;
            tracing::warn!(%reason, retry_in_ms = wait.as_millis() as u64, "broker session lost");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn session(
        &self,
        settings: &AmqpSettings,
        results: &UnboundedSender<Delivery>,
    ) -> String {
        let mut args = match crate::amqp::open_arguments(
            settings.url.expose_secret(),
            settings.ca_file.as_deref(),
        ) {
            Ok(a) => a,
            Err(e) => return format!("amqp.url / amqp.ca_file: {e:#}"),
        };
        args.virtual_host(&settings.vhost)
            .heartbeat(20)
            .connection_name("netcheck-server");
        let conn = match Connection::open(&args).await {
            Ok(c) => c,
            Err(e) => return format!("cannot connect: {e}"),
        };
        let (watch, mut closed) = Watch::new();
        let setup = async {
            conn.register_callback(watch.clone()).await?;
            let pub_channel = conn.open_channel(None).await?;
            pub_channel.register_callback(watch.clone()).await?;
            let publisher = Publisher::new(pub_channel, &watch).await?;
            let consume = conn.open_channel(None).await?;
            consume.register_callback(watch.clone()).await?;
            consume
                .basic_qos(BasicQosArguments::new(0, RESULT_PREFETCH, false))
                .await?;
            let (_, rx) = consume
                .basic_consume_rx(
                    BasicConsumeArguments::new(RESULTS_QUEUE, "netcheck-server")
                        .manual_ack(true)
                        .finish(),
                )
                .await?;
            Ok::<_, amqprs::error::Error>((publisher, consume, rx))
        };
        let (publisher, consume, mut deliveries) = match setup.await {
            Ok(v) => v,
            Err(e) => {
                let _ = conn.close().await;
                return format!("session set-up failed: {e}");
            }
        };
        *self.publisher.write().await = Some(Arc::new(publisher));
        self.session_up();
        let session = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!("broker session established");
        let watcher = conn.clone();
        let io_failure = watcher.listen_network_io_failure();
        tokio::pin!(io_failure);
        loop {
            tokio::select! {
                _ = &mut io_failure => return "network failure".into(),
                Some(reason) = closed.recv() => return reason,
                d = deliveries.recv() => match d {
                    Some(msg) => {
                        let delivery = Delivery {
                            properties: msg.basic_properties.unwrap_or_default(),
                            body: msg.content.unwrap_or_default(),
                            tag: msg.deliver.map(|d| d.delivery_tag()).unwrap_or_default(),
                            channel: consume.clone(),
                            session,
                        };
                        if results.send(delivery).is_err() {
                            return "results collector stopped".into();
                        }
                    }
                    None => return "results consumer ended".into(),
                },
            }
        }
    }
}

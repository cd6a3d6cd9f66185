//! AMQP plumbing shared by server and agent: connecting, noticing when the broker closes
//! things (amqprs has no automatic recovery, so callers reconnect), and publishing with
//! publisher confirms awaited per message.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amqprs::callbacks::{ChannelCallback, ConnectionCallback};
use amqprs::channel::{BasicPublishArguments, Channel, ConfirmSelectArguments};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{Ack, BasicProperties, Cancel, Close, CloseChannel, Nack, Return};
use tokio::sync::{mpsc, oneshot};

/// Connection arguments from an `amqp://` or `amqps://` URL. For `amqps` the broker's
/// certificate is verified against `ca_file` when given (else the Mozilla roots), and a bad CA
/// file is an error here rather than a panic inside amqprs.
pub fn open_arguments(
    url: &str,
    ca_file: Option<&Path>,
) -> anyhow::Result<OpenConnectionArguments> {
    let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("invalid AMQP URL: {e}"))?;
    let tls = match parsed.scheme() {
        "amqp" => None,
        "amqps" => {
            let host = parsed
                .host_str()
                .ok_or_else(|| anyhow::anyhow!("the AMQP URL has no host"))?;
            Some(crate::tls::amqp_adaptor(host, ca_file)?)
        }
        other => anyhow::bail!("unsupported AMQP URL scheme {other:?} (amqp or amqps)"),
    };
    let mut args = OpenConnectionArguments::try_from(url)
        .map_err(|e| anyhow::anyhow!("invalid AMQP URL: {e}"))?;
    if let Some(tls) = tls {
        args.tls_adaptor(tls);
    }
    Ok(args)
}

/// Consumer tag of the server's consumer on a results queue being drained: its deletion
/// (once empty) cancels that consumer, which is expected and does not end the session.
pub const DRAIN_CONSUMER_TAG: &str = "netcheck-server-drain";

/// `host:port` of a broker URL, for logs: never the credentials.
pub fn node_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}:{}",
            u.host_str().unwrap_or("?"),
            u.port()
                .unwrap_or(if u.scheme() == "amqps" { 5671 } else { 5672 })
        ),
        Err(_) => "(invalid URL)".into(),
    }
}

type Waiters = Arc<Mutex<BTreeMap<u64, oneshot::Sender<bool>>>>;

/// Receives the broker's asynchronous notices: closes are forwarded as reasons on `closed`,
/// publisher acks/nacks resolve the matching [`Publisher`] waiters.
#[derive(Clone)]
pub struct Watch {
    closed: mpsc::UnboundedSender<String>,
    waiters: Waiters,
}

impl Watch {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                closed: tx,
                waiters: Arc::default(),
            },
            rx,
        )
    }

    fn settle(&self, tag: u64, multiple: bool, ok: bool) {
        let mut w = self.waiters.lock().expect("waiters lock");
        let tags: Vec<u64> = if multiple {
            w.range(..=tag).map(|(t, _)| *t).collect()
        } else {
            vec![tag]
        };
        for t in tags {
            if let Some(tx) = w.remove(&t) {
                let _ = tx.send(ok);
            }
        }
    }
}

#[async_trait::async_trait]
impl ConnectionCallback for Watch {
    async fn close(&mut self, _: &Connection, close: Close) -> Result<(), amqprs::error::Error> {
        let _ = self
            .closed
            .send(format!("connection closed by broker: {close}"));
        Ok(())
    }
    async fn blocked(&mut self, _: &Connection, reason: String) {
        tracing::warn!(%reason, "broker blocked the connection");
    }
    async fn unblocked(&mut self, _: &Connection) {
        tracing::info!("broker unblocked the connection");
    }
    async fn secret_updated(&mut self, _: &Connection) {}
}

#[async_trait::async_trait]
impl ChannelCallback for Watch {
    async fn close(
        &mut self,
        _: &Channel,
        close: CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        // Publishes awaiting a confirm on this channel will not get one: they fail now
        // (dropped senders) rather than at their timeout.
        self.waiters.lock().expect("waiters lock").clear();
        let _ = self
            .closed
            .send(format!("channel closed by broker: {close}"));
        Ok(())
    }
    async fn cancel(&mut self, _: &Channel, cancel: Cancel) -> Result<(), amqprs::error::Error> {
        if cancel.consumer_tag() == DRAIN_CONSUMER_TAG {
            return Ok(());
        }
        let _ = self
            .closed
            .send("consumer cancelled by broker (queue deleted?)".into());
        Ok(())
    }
    async fn flow(&mut self, _: &Channel, active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _: &Channel, ack: Ack) {
        self.settle(ack.delivery_tag(), ack.mutiple(), true);
    }
    async fn publish_nack(&mut self, _: &Channel, nack: Nack) {
        self.settle(nack.delivery_tag(), nack.multiple(), false);
    }
    async fn publish_return(&mut self, _: &Channel, _: Return, _: BasicProperties, _: Vec<u8>) {}
}

/// Why a confirmed publish did not go through.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("publish failed: {0}")]
    Io(#[from] amqprs::error::Error),
    #[error("broker refused the message (nack)")]
    Nacked,
    #[error("no publisher confirm within {0:?}")]
    Timeout(Duration),
    #[error("channel closed before the confirm arrived")]
    Closed,
}

/// A channel in confirm mode. Publishes are serialised so delivery tags match the order the
/// broker sees; confirms are awaited concurrently.
pub struct Publisher {
    channel: Channel,
    waiters: Waiters,
    next_tag: tokio::sync::Mutex<u64>,
}

impl Publisher {
    /// Puts `channel` in confirm mode; `watch` must be the callback registered on it.
    pub async fn new(channel: Channel, watch: &Watch) -> Result<Self, amqprs::error::Error> {
        channel
            .confirm_select(ConfirmSelectArguments::default())
            .await?;
        Ok(Self {
            channel,
            waiters: watch.waiters.clone(),
            next_tag: tokio::sync::Mutex::new(1),
        })
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publishes and waits until the broker has taken responsibility for the message.
    pub async fn publish(
        &self,
        props: BasicProperties,
        body: Vec<u8>,
        exchange: &str,
        routing_key: &str,
        timeout: Duration,
    ) -> Result<(), PublishError> {
        let rx = {
            let mut next = self.next_tag.lock().await;
            let (tx, rx) = oneshot::channel();
            self.waiters.lock().expect("waiters lock").insert(*next, tx);
            if let Err(e) = self
                .channel
                .basic_publish(
                    props,
                    body,
                    BasicPublishArguments::new(exchange, routing_key),
                )
                .await
            {
                self.waiters.lock().expect("waiters lock").remove(&*next);
                return Err(e.into());
            }
            *next += 1;
            rx
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(PublishError::Nacked),
            Ok(Err(_)) => Err(PublishError::Closed),
            Err(_) => Err(PublishError::Timeout(timeout)),
        }
    }
}

/// Publishes on a confirm-mode channel of its own, opened again after the broker closed it
/// (e.g. refusing a message) or nacked a message on it, so neither ends the session. A nack
/// retires the channel because a quorum queue client keeps a stale leader per channel: after
/// a cluster node dies, a channel opened before the new leader was known is refused until it
/// is replaced (RabbitMQ 3.10; measured in docs/benchmarks.md).
pub struct Sink {
    conn: Connection,
    current: tokio::sync::Mutex<Option<Arc<Publisher>>>,
}

impl Sink {
    pub fn new(conn: Connection) -> Sink {
        Sink {
            conn,
            current: tokio::sync::Mutex::new(None),
        }
    }

    async fn publisher(&self) -> Result<Arc<Publisher>, PublishError> {
        let mut current = self.current.lock().await;
        if let Some(p) = current.as_ref().filter(|p| p.channel().is_open()) {
            return Ok(p.clone());
        }
        let channel = self.conn.open_channel(None).await?;
        // This channel's closes are not the session's end: they only make the next publish
        // open a new channel (the broker logs why it closed it).
        let (watch, mut closes) = Watch::new();
        channel.register_callback(watch.clone()).await?;
        tokio::spawn(async move {
            while let Some(reason) = closes.recv().await {
                tracing::warn!(%reason, "publish channel closed; the next publish opens another");
            }
        });
        let p = Arc::new(Publisher::new(channel, &watch).await?);
        *current = Some(p.clone());
        Ok(p)
    }

    /// Publishes and waits for the broker's confirm.
    pub async fn publish(
        &self,
        props: BasicProperties,
        body: Vec<u8>,
        exchange: &str,
        routing_key: &str,
        timeout: Duration,
    ) -> Result<(), PublishError> {
        let publisher = self.publisher().await?;
        let result = publisher
            .publish(props, body, exchange, routing_key, timeout)
            .await;
        if matches!(result, Err(PublishError::Nacked)) {
            let mut current = self.current.lock().await;
            if current.as_ref().is_some_and(|p| Arc::ptr_eq(p, &publisher)) {
                *current = None;
                let channel = publisher.channel().clone();
                tokio::spawn(async move {
                    let _ = channel.close().await;
                });
            }
        }
        result
    }

    /// Whether the connection under the channel is still open.
    pub fn is_open(&self) -> bool {
        self.conn.is_open()
    }
}

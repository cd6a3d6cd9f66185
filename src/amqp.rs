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
    async fn cancel(&mut self, _: &Channel, _: Cancel) -> Result<(), amqprs::error::Error> {
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

//! One broker session: connect with the credentials of one registration, consume the agent's
//! queue, send heartbeats, and report how the session ended.

use std::time::{Duration, Instant};

use amqprs::callbacks::{ChannelCallback, ConnectionCallback};
use amqprs::channel::{BasicConsumeArguments, BasicQosArguments, Channel, ConfirmSelectArguments};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{Ack, BasicProperties, Cancel, Close, CloseChannel, Nack, Return};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::AgentArgs;
use crate::proto::agent::{Heartbeat, RegisterResponse};

pub enum End {
    Shutdown,
    Revoked,
    Lost(String),
}

/// Forwards the broker's asynchronous "closed" notices into the session loop.
struct Watch(mpsc::UnboundedSender<String>);

#[async_trait::async_trait]
impl ConnectionCallback for Watch {
    async fn close(&mut self, _: &Connection, close: Close) -> Result<(), amqprs::error::Error> {
        let _ = self.0.send(format!("connection closed by broker: {close}"));
        Ok(())
    }
    async fn blocked(&mut self, _: &Connection, reason: String) {
        tracing::warn!(%reason, "broker blocked the connection");
    }
    async fn unblocked(&mut self, _: &Connection) {}
    async fn secret_updated(&mut self, _: &Connection) {}
}

#[async_trait::async_trait]
impl ChannelCallback for Watch {
    async fn close(
        &mut self,
        _: &Channel,
        close: CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        let _ = self.0.send(format!("channel closed by broker: {close}"));
        Ok(())
    }
    async fn cancel(&mut self, _: &Channel, _: Cancel) -> Result<(), amqprs::error::Error> {
        let _ = self
            .0
            .send("consumer cancelled by broker (queue deleted?)".into());
        Ok(())
    }
    async fn flow(&mut self, _: &Channel, active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _: &Channel, _: Ack) {}
    async fn publish_nack(&mut self, _: &Channel, _: Nack) {}
    async fn publish_return(&mut self, _: &Channel, _: Return, _: BasicProperties, _: Vec<u8>) {}
}

pub async fn run(
    http: &reqwest::Client,
    args: &AgentArgs,
    reg: &RegisterResponse,
    started: Instant,
    shutdown: CancellationToken,
) -> End {
    let creds = &reg.amqp;
    let mut open =
        OpenConnectionArguments::new(&creds.host, creds.port, &creds.username, &creds.password);
    open.virtual_host(&creds.vhost)
        .heartbeat(20)
        .connection_name(&format!("netcheck-agent {}", args.hostname()));
    if creds.tls {
        match amqprs::tls::TlsAdaptor::without_client_auth(None, creds.host.clone()) {
            Ok(tls) => {
                open.tls_adaptor(tls);
            }
            Err(e) => return End::Lost(format!("TLS set-up failed: {e}")),
        }
    }
    let conn = match Connection::open(&open).await {
        Ok(c) => c,
        Err(e) => {
            return End::Lost(format!(
                "cannot connect to broker {}:{}: {e}",
                creds.host, creds.port
            ))
        }
    };
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let setup = async {
        conn.register_callback(Watch(events_tx.clone())).await?;
        let channel = conn.open_channel(None).await?;
        channel.register_callback(Watch(events_tx.clone())).await?;
        channel
            .basic_qos(BasicQosArguments::new(0, args.concurrency, false))
            .await?;
        channel
            .confirm_select(ConfirmSelectArguments::default())
            .await?;
        let (_tag, rx) = channel
            .basic_consume_rx(
                BasicConsumeArguments::new(&creds.queue, "")
                    .manual_ack(true)
                    .finish(),
            )
            .await?;
        Ok::<_, amqprs::error::Error>((channel, rx))
    };
    let (channel, mut deliveries) = match setup.await {
        Ok(v) => v,
        Err(e) => {
            let _ = conn.close().await;
            return End::Lost(format!("broker session set-up failed: {e}"));
        }
    };
    tracing::info!(queue = %creds.queue, "consuming check requests");

    let session_end = CancellationToken::new();
    let heartbeats = tokio::spawn(heartbeat_loop(
        http.clone(),
        args.token.clone(),
        reg.clone(),
        started,
        session_end.clone(),
    ));
    let watcher = conn.clone();
    let io_failure = watcher.listen_network_io_failure();
    tokio::pin!(io_failure);

    let end = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break End::Shutdown,
            _ = session_end.cancelled() => break End::Revoked,
            _ = &mut io_failure => break End::Lost("network failure talking to the broker".into()),
            Some(reason) = events.recv() => break End::Lost(reason),
            delivery = deliveries.recv() => match delivery {
                Some(msg) => {
                    let tag = msg.deliver.map(|d| d.delivery_tag()).unwrap_or_default();
                    super::handle_delivery(&channel, &reg.amqp, msg.basic_properties.unwrap_or_default(), msg.content.unwrap_or_default(), tag).await;
                }
                None => break End::Lost("consumer stream ended".into()),
            },
        }
    };
    session_end.cancel();
    heartbeats.abort();
    if matches!(end, End::Shutdown) {
        let _ = channel.close().await;
        let _ = conn.close().await;
    }
    end
}

/// Posts a heartbeat every interval. A 401 means the agent was deleted: it cancels `end`.
async fn heartbeat_loop(
    http: reqwest::Client,
    token: String,
    reg: RegisterResponse,
    started: Instant,
    end: CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(reg.heartbeat.interval_secs.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = end.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let beat = Heartbeat {
            agent_id: reg.agent_id,
            uptime_secs: started.elapsed().as_secs(),
            in_flight: 0,
            probes_total: None,
        };
        match http
            .post(&reg.heartbeat.url)
            .bearer_auth(&token)
            .json(&beat)
            .send()
            .await
        {
            Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED => {
                tracing::error!("heartbeat refused: agent token revoked");
                end.cancel();
                return;
            }
            Ok(r) if !r.status().is_success() => {
                tracing::warn!(status = %r.status(), "heartbeat not accepted")
            }
            Ok(_) => tracing::debug!("heartbeat sent"),
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
    }
}

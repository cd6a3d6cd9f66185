//! One broker session: connect with the credentials of one registration, consume the agent's
//! queue, send heartbeats, and report how the session ended.

use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use amqprs::channel::{BasicAckArguments, BasicConsumeArguments, BasicQosArguments};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::BasicProperties;
use tokio_util::sync::CancellationToken;

use super::probe::Prober;
use super::AgentArgs;
use crate::amqp::{Publisher, Watch};
use crate::proto::agent::{Heartbeat, RegisterResponse};
use crate::proto::check::CheckRequest;

/// Counters the heartbeat reports.
#[derive(Default)]
pub struct Stats {
    pub in_flight: AtomicU64,
    pub total: AtomicU64,
    pub metrics: Arc<super::metrics::AgentMetrics>,
}

pub enum End {
    Shutdown,
    Revoked,
    Lost(String),
}

pub async fn run(
    http: &reqwest::Client,
    args: &AgentArgs,
    reg: &RegisterResponse,
    started: Instant,
    prober: Arc<Prober>,
    stats: Arc<Stats>,
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
    let (watch, mut events) = Watch::new();
    let setup = async {
        conn.register_callback(watch.clone()).await?;
        let channel = conn.open_channel(None).await?;
        channel.register_callback(watch.clone()).await?;
        channel
            .basic_qos(BasicQosArguments::new(0, args.concurrency, false))
            .await?;
        let publisher = Publisher::new(channel, &watch).await?;
        let (_tag, rx) = publisher
            .channel()
            .basic_consume_rx(
                BasicConsumeArguments::new(&creds.queue, "")
                    .manual_ack(true)
                    .finish(),
            )
            .await?;
        Ok::<_, amqprs::error::Error>((Arc::new(publisher), rx))
    };
    let (publisher, mut deliveries) = match setup.await {
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
        stats.clone(),
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
                    handle(&publisher, reg, &prober, &stats, msg.content.unwrap_or_default(), tag);
                }
                None => break End::Lost("consumer stream ended".into()),
            },
        }
    };
    session_end.cancel();
    heartbeats.abort();
    if matches!(end, End::Shutdown) {
        // Let running probes publish their results (bounded), then leave.
        let drain = async {
            while stats.in_flight.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
        let _ = conn.close().await;
    }
    end
}

/// Starts the probe for one delivery. The request is acked only after its result is confirmed
/// by the broker, so a crash mid-probe leads to redelivery, never to a lost result.
fn handle(
    publisher: &Arc<Publisher>,
    reg: &RegisterResponse,
    prober: &Arc<Prober>,
    stats: &Arc<Stats>,
    body: Vec<u8>,
    tag: u64,
) {
    let ack = |publisher: Arc<Publisher>| async move {
        let _ = publisher
            .channel()
            .basic_ack(BasicAckArguments::new(tag, false))
            .await;
    };
    let request: CheckRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "dropping a malformed check request");
            tokio::spawn(ack(publisher.clone()));
            return;
        }
    };
    let agent_id = reg.agent_id;
    if !request.agents.contains(&agent_id) {
        tracing::debug!(check_id = %request.check_id, "check not meant for this agent");
        tokio::spawn(ack(publisher.clone()));
        return;
    }
    if request.expires_at <= chrono::Utc::now() {
        tracing::info!(check_id = %request.check_id, "dropping an expired check request");
        tokio::spawn(ack(publisher.clone()));
        return;
    }
    let (publisher, prober, stats) = (publisher.clone(), prober.clone(), stats.clone());
    let user = reg.amqp.username.clone();
    let exchange = reg.amqp.results_exchange.clone();
    stats.in_flight.fetch_add(1, Ordering::Relaxed);
    stats.metrics.in_flight.inc();
    tokio::spawn(async move {
        let result = prober.run(&request, agent_id).await;
        stats.metrics.observe(
            request.spec.check_type().as_str(),
            result.status.as_str(),
            result.duration_ms / 1000.0,
        );
        let body = serde_json::to_vec(&result).expect("results serialise");
        let props = BasicProperties::default()
            .with_persistence(true)
            .with_content_type("application/json")
            .with_user_id(&user)
            .with_message_id(&format!("{}:{}", result.check_id, agent_id))
            .with_timestamp(chrono::Utc::now().timestamp() as u64)
            .finish();
        match publisher
            .publish(props, body, &exchange, "", Duration::from_secs(10))
            .await
        {
            Ok(()) => {
                let _ = publisher
                    .channel()
                    .basic_ack(BasicAckArguments::new(tag, false))
                    .await;
                tracing::debug!(check_id = %result.check_id, status = result.status.as_str(), "result published");
            }
            // Unacked, the request is redelivered on the next session and run again.
            Err(e) => {
                tracing::warn!(check_id = %result.check_id, error = %e, "could not publish result")
            }
        }
        stats.total.fetch_add(1, Ordering::Relaxed);
        stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        stats.metrics.in_flight.dec();
    });
}

/// Posts a heartbeat every interval. A 401 means the agent was deleted: it cancels `end`.
async fn heartbeat_loop(
    http: reqwest::Client,
    token: String,
    reg: RegisterResponse,
    started: Instant,
    stats: Arc<Stats>,
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
            in_flight: stats.in_flight.load(Ordering::Relaxed),
            probes_total: Some(stats.total.load(Ordering::Relaxed)),
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

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
use crate::policy::Policy;
use crate::proto::agent::{Heartbeat, RegisterResponse};
use crate::proto::check::{CheckRequest, CheckResult};

/// Counters the heartbeat reports.
#[derive(Default)]
pub struct Stats {
    pub in_flight: AtomicU64,
    pub total: AtomicU64,
    pub metrics: Arc<super::metrics::AgentMetrics>,
    /// Results whose publish failed (broker gone); sent at the start of the next session.
    /// Their requests stay unacked: when the broker still holds one (the connection dropped,
    /// the broker did not restart) it is redelivered and answered from here instead of being
    /// probed twice; requests are transient, so after a broker restart only the outbox is left.
    pub outbox: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, CheckResult>>,
    /// Checks answered recently, so a redelivered request is acked rather than probed again.
    pub answered: std::sync::Mutex<Answered>,
}

/// Checks answered within the last [`ANSWERED_FOR`], forgotten oldest first: O(1) per answer
/// however many are remembered (an agent doing 1 000 probes/s remembers 120 000).
#[derive(Default)]
pub struct Answered {
    ids: std::collections::HashSet<uuid::Uuid>,
    order: std::collections::VecDeque<(Instant, uuid::Uuid)>,
}

impl Answered {
    pub fn insert(&mut self, check_id: uuid::Uuid) {
        self.insert_at(check_id, Instant::now());
    }

    fn insert_at(&mut self, check_id: uuid::Uuid, now: Instant) {
        while let Some(&(at, old)) = self.order.front() {
            if now.duration_since(at) < ANSWERED_FOR {
                break;
            }
            self.order.pop_front();
            self.ids.remove(&old);
        }
        if self.ids.insert(check_id) {
            self.order.push_back((now, check_id));
        }
    }

    pub fn contains(&self, check_id: &uuid::Uuid) -> bool {
        self.ids.contains(check_id)
    }
}

/// How long an answered check is remembered. A request is valid for seconds (the server's
/// `checks.grace_ms`) and an expired one is dropped anyway; two minutes cover clock skew. A
/// request redelivered later still does no harm: the server stores one answer per agent.
const ANSWERED_FOR: Duration = Duration::from_secs(120);

/// Most results kept for a later session.
const OUTBOX_MAX: usize = 10_000;

fn result_props(user: &str, result: &CheckResult) -> BasicProperties {
    BasicProperties::default()
        .with_persistence(true)
        .with_content_type("application/json")
        .with_user_id(user)
        .with_message_id(&format!("{}:{}", result.check_id, result.agent_id))
        .with_timestamp(chrono::Utc::now().timestamp() as u64)
        .finish()
}

/// Publishes what earlier sessions could not.
async fn flush_outbox(publisher: &Publisher, reg: &RegisterResponse, stats: &Stats) {
    let pending: Vec<CheckResult> = stats
        .outbox
        .lock()
        .expect("outbox lock")
        .values()
        .cloned()
        .collect();
    for result in pending {
        let body = serde_json::to_vec(&result).expect("results serialise");
        let props = result_props(&reg.amqp.username, &result);
        if publisher
            .publish(
                props,
                body,
                &reg.amqp.results_exchange,
                "",
                Duration::from_secs(10),
            )
            .await
            .is_ok()
        {
            stats
                .outbox
                .lock()
                .expect("outbox lock")
                .remove(&result.check_id);
            stats
                .answered
                .lock()
                .expect("answered lock")
                .insert(result.check_id);
            tracing::info!(check_id = %result.check_id, "delivered a result kept from a lost session");
        }
    }
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
    let policy = Arc::new(Policy::narrowed(
        Policy::from_strings(&reg.policy.allowed_networks),
        args.allowed_networks.as_deref(),
    ));
    tracing::info!(allowed_networks = ?policy.allowed, "target policy from the server");
    let mut open =
        OpenConnectionArguments::new(&creds.host, creds.port, &creds.username, &creds.password);
    open.virtual_host(&creds.vhost)
        .heartbeat(20)
        .connection_name(&format!("netcheck-agent {}", args.hostname()));
    if creds.tls {
        match crate::tls::amqp_adaptor(&creds.host, args.ca_file.as_deref()) {
            Ok(tls) => {
                open.tls_adaptor(tls);
            }
            Err(e) => return End::Lost(format!("TLS set-up failed: {e:#}")),
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
    flush_outbox(&publisher, reg, &stats).await;

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
                    handle(&publisher, reg, &policy, &prober, &stats, msg.content.unwrap_or_default(), tag);
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
    policy: &Arc<Policy>,
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
    let kept = stats
        .outbox
        .lock()
        .expect("outbox lock")
        .remove(&request.check_id);
    if let Some(result) = kept {
        // A redelivery of a request already answered while the broker was away.
        let (publisher, stats, user, exchange) = (
            publisher.clone(),
            stats.clone(),
            reg.amqp.username.clone(),
            reg.amqp.results_exchange.clone(),
        );
        tokio::spawn(async move {
            publish_result(&publisher, &stats, &user, &exchange, result, tag).await
        });
        return;
    }
    if stats
        .answered
        .lock()
        .expect("answered lock")
        .contains(&request.check_id)
    {
        tracing::debug!(check_id = %request.check_id, "redelivered request already answered");
        tokio::spawn(ack(publisher.clone()));
        return;
    }
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
    let (publisher, prober, stats, policy) = (
        publisher.clone(),
        prober.clone(),
        stats.clone(),
        policy.clone(),
    );
    let user = reg.amqp.username.clone();
    let exchange = reg.amqp.results_exchange.clone();
    stats.in_flight.fetch_add(1, Ordering::Relaxed);
    stats.metrics.in_flight.inc();
    tokio::spawn(async move {
        let result = prober.run(&request, agent_id, &policy).await;
        stats.metrics.observe(
            request.spec.check_type().as_str(),
            result.status.as_str(),
            result.duration_ms / 1000.0,
        );
        // Acked once confirmed; kept in the outbox when the broker is away, since a request
        // is transient and may not be redelivered after a broker restart.
        publish_result(&publisher, &stats, &user, &exchange, result, tag).await;
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

/// Publishes a result (confirmed), then acks its request. When the broker is gone the result
/// waits in the outbox for the next session.
async fn publish_result(
    publisher: &Publisher,
    stats: &Stats,
    user: &str,
    exchange: &str,
    result: CheckResult,
    tag: u64,
) {
    let body = serde_json::to_vec(&result).expect("results serialise");
    match publisher
        .publish(
            result_props(user, &result),
            body,
            exchange,
            "",
            Duration::from_secs(10),
        )
        .await
    {
        Ok(()) => {
            let _ = publisher
                .channel()
                .basic_ack(BasicAckArguments::new(tag, false))
                .await;
            tracing::debug!(check_id = %result.check_id, status = result.status.as_str(), "result published");
            stats
                .answered
                .lock()
                .expect("answered lock")
                .insert(result.check_id);
        }
        Err(e) => {
            tracing::warn!(check_id = %result.check_id, error = %e, "could not publish result; keeping it for the next session");
            let mut outbox = stats.outbox.lock().expect("outbox lock");
            if outbox.len() < OUTBOX_MAX {
                outbox.insert(result.check_id, result);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answered_checks_are_forgotten_oldest_first_after_the_window() {
        let mut a = Answered::default();
        let t0 = Instant::now();
        let (x, y, z) = (
            uuid::Uuid::now_v7(),
            uuid::Uuid::now_v7(),
            uuid::Uuid::now_v7(),
        );
        a.insert_at(x, t0);
        a.insert_at(x, t0 + Duration::from_secs(1));
        a.insert_at(y, t0 + Duration::from_secs(60));
        assert!(a.contains(&x) && a.contains(&y));
        assert_eq!(a.order.len(), 2, "a repeated answer is remembered once");
        a.insert_at(z, t0 + ANSWERED_FOR);
        assert!(!a.contains(&x), "older than the window: forgotten");
        assert!(a.contains(&y) && a.contains(&z));
        a.insert_at(z, t0 + ANSWERED_FOR + Duration::from_secs(61));
        assert!(!a.contains(&y));
        assert_eq!((a.ids.len(), a.order.len()), (1, 1));
    }
}

//! One broker session: connect with the credentials of one registration, consume the agent's
//! queue, send heartbeats, and report how the session ended.

use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use amqprs::channel::{BasicConsumeArguments, BasicQosArguments, Channel};
use amqprs::connection::{Connection, OpenConnectionArguments};
use tokio_util::sync::CancellationToken;

use super::acks::Acks;
use super::coalesce::ResultsOut;
use super::probe::Prober;
use super::results::{self, Outbox};
use super::AgentArgs;
use crate::amqp::Sink;
use crate::amqp::{PublishError, Watch};
use crate::client::api::Api;
use crate::policy::Policy;
use netcheck_proto::agent::{BrokerAddress, Heartbeat, RegisterResponse};
use netcheck_proto::check::CheckRequest;
use netcheck_proto::result::{CheckResult, ProbeError, ProbeErrorCode, ResultStatus};

/// Counters the heartbeat reports.
#[derive(Default)]
pub struct Stats {
    pub in_flight: AtomicU64,
    pub total: AtomicU64,
    pub metrics: Arc<super::metrics::AgentMetrics>,
    /// Results whose publish failed, sent again (a bounded number of times) once the next
    /// session consumes. Their requests stay unacked: when the broker still holds one (the
    /// connection dropped, the broker did not restart) it is redelivered and answered from here
    /// instead of being probed twice; requests are transient, so after a broker restart only
    /// the outbox is left.
    pub outbox: Outbox,
    /// Checks answered recently, so a redelivered request is acked rather than probed again.
    pub answered: std::sync::Mutex<Answered>,
    /// The broker node whose session was lost last: tried last next time, so a dead node of
    /// a cluster costs no time while the others are up.
    pub lost_node: std::sync::Mutex<Option<BrokerAddress>>,
}

/// How long one broker node may take to accept a connection before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Opens a connection to the first of the registration's broker addresses that answers.
async fn connect(
    args: &AgentArgs,
    reg: &RegisterResponse,
    stats: &Stats,
) -> Result<(Connection, BrokerAddress), String> {
    let creds = &reg.amqp;
    let mut addresses = creds.addresses();
    if let Some(lost) = stats.lost_node.lock().expect("lost node lock").as_ref() {
        // A stable sort: the order the server gave, with the lost node moved to the end.
        addresses.sort_by_key(|a| a == lost);
    }
    let mut failures = Vec::new();
    for address in addresses {
        let mut open = OpenConnectionArguments::new(
            &address.host,
            address.port,
            &creds.username,
            &creds.password,
        );
        open.virtual_host(&creds.vhost)
            .heartbeat(20)
            .connection_name(&format!("netcheck-agent {}", args.hostname()));
        if address.tls {
            match crate::tls::amqp_adaptor(&address.host, args.ca_file.as_deref()) {
                Ok(tls) => {
                    open.tls_adaptor(tls);
                }
                Err(e) => return Err(format!("TLS set-up failed: {e:#}")),
            }
        }
        let node = format!("{}:{}", address.host, address.port);
        match tokio::time::timeout(CONNECT_TIMEOUT, Connection::open(&open)).await {
            Ok(Ok(conn)) => return Ok((conn, address)),
            Ok(Err(e)) => failures.push(format!("{node}: {e}")),
            Err(_) => failures.push(format!("{node}: no answer within {CONNECT_TIMEOUT:?}")),
        }
    }
    Err(format!(
        "cannot connect to the broker: {}",
        failures.join("; ")
    ))
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
        self.prune(now);
        if self.ids.insert(check_id) {
            self.order.push_back((now, check_id));
        }
    }

    fn prune(&mut self, now: Instant) {
        while let Some(&(at, old)) = self.order.front() {
            if now.duration_since(at) < ANSWERED_FOR {
                break;
            }
            self.order.pop_front();
            self.ids.remove(&old);
        }
    }

    pub fn contains(&self, check_id: &uuid::Uuid) -> bool {
        self.ids.contains(check_id)
    }

    /// Forgets what is older than [`ANSWERED_FOR`] without waiting for the next answer, and
    /// lets the set shrink once a burst's answers are gone; whether anything was forgotten.
    fn forget_expired(&mut self, now: Instant) -> bool {
        let before = self.order.len();
        self.prune(now);
        if self.ids.len() < self.ids.capacity() / 4 {
            self.ids.shrink_to_fit();
            self.order.shrink_to_fit();
        }
        self.order.len() != before
    }
}

/// How often a standalone agent looks whether it went idle.
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// In a standalone agent, once it has been quiet (no probe started or running) for a whole
/// [`IDLE_CHECK`]: forgets expired answers and, the first time (after start-up) and whenever
/// work was done or answers forgotten since the last time, gives memory back to the system,
/// so an agent returns near its idle size after a burst. Never under steady load: code pages
/// given back would only be faulted in again.
pub async fn settle_when_idle(stats: Arc<Stats>) {
    let mut settled_at = None;
    let mut last = stats.total.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(IDLE_CHECK).await;
        let done = stats.total.load(Ordering::Relaxed);
        let quiet = done == last && stats.in_flight.load(Ordering::Relaxed) == 0;
        last = done;
        if !quiet {
            continue;
        }
        let forgot = stats
            .answered
            .lock()
            .expect("answered lock")
            .forget_expired(Instant::now());
        if forgot || settled_at != Some(done) {
            super::memory::give_back();
            settled_at = Some(done);
        }
    }
}

/// How long an answered check is remembered. A request is valid for seconds (the server's
/// `checks.grace_ms`) and an expired one is dropped anyway; two minutes cover clock skew. A
/// request redelivered later still does no harm: the server stores one answer per agent.
const ANSWERED_FOR: Duration = Duration::from_secs(120);

/// How often the host's own addresses are read again.
const OWN_ADDRESSES_EVERY: Duration = Duration::from_secs(60);

/// Where a session's results go: their publisher, and the consumer's channel and its acks.
#[derive(Clone)]
struct Out {
    results: Arc<ResultsOut>,
    consumer: Channel,
    acks: Arc<Acks>,
}

impl Out {
    /// The request is done with: acked with the next batch.
    fn ack(&self, tag: u64) {
        self.acks.finished(tag);
    }
}

/// Publishes what earlier sessions could not, behind the consumer (never ahead of new work).
async fn flush_outbox(out: Out, stats: Arc<Stats>) {
    for (result, attempts) in stats.outbox.drain() {
        tracing::info!(check_id = %result.check_id, "sending a result kept from a lost session");
        publish_result(&out, &stats, result, attempts, None).await;
    }
}

pub enum End {
    Shutdown,
    Revoked,
    /// The session could not be set up (no node accepted the connection, or the consumer
    /// could not start): the agent registers again, which also repairs its broker user and queue.
    Failed(String),
    /// A session that was consuming ended (its node went away, the connection broke): the
    /// same credentials work on every node of a cluster, so the others are tried first.
    Lost(String),
}

pub async fn run(
    api: &Api,
    args: &AgentArgs,
    reg: &RegisterResponse,
    started: Instant,
    prober: Arc<Prober>,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) -> End {
    let creds = &reg.amqp;
    let base = Policy::narrowed(
        Policy::from_strings(&reg.policy.allowed_networks),
        args.allowed_networks.as_deref(),
    );
    tracing::info!(allowed_networks = ?base.allowed, "target policy from the server");
    // The host's own addresses are refused too; interfaces come and go, so they are re-read.
    let own_addresses = {
        let seen: Vec<std::net::IpAddr> = reg
            .policy
            .self_addresses
            .iter()
            .map(String::as_str)
            .chain(crate::policy::CLOUD_ENDPOINTS)
            .filter_map(|a| a.parse().ok())
            .collect();
        move || {
            let mut own = crate::policy::interface_addresses();
            own.extend(seen.iter().copied());
            own
        }
    };
    let policy = Arc::new(std::sync::RwLock::new(Arc::new(
        base.clone().with_own(own_addresses()),
    )));
    let (conn, node) = match connect(args, reg, &stats).await {
        Ok(c) => c,
        Err(e) => return End::Failed(e),
    };
    let (watch, mut events) = Watch::new();
    let setup = async {
        conn.register_callback(watch.clone()).await?;
        let channel = conn.open_channel(None).await?;
        channel.register_callback(watch.clone()).await?;
        channel
            .basic_qos(BasicQosArguments::new(0, args.concurrency, false))
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
    let (consumer, mut deliveries) = match setup.await {
        Ok(v) => v,
        Err(e) => {
            let _ = conn.close().await;
            return End::Failed(format!("broker session set-up failed: {e}"));
        }
    };
    tracing::info!(queue = %creds.queue, node = %format!("{}:{}", node.host, node.port), "consuming check requests");
    let acks = Arc::new(Acks::new(args.concurrency));
    let acking = {
        let (acks, consumer) = (acks.clone(), consumer.clone());
        tokio::spawn(async move { acks.run(consumer).await })
    };
    let out = Out {
        results: Arc::new(ResultsOut::new(
            Arc::new(Sink::new(conn.clone())),
            reg.amqp.username.clone(),
            reg.amqp.results_exchange.clone(),
            reg.amqp.results_per_message,
        )),
        consumer,
        acks,
    };
    tokio::spawn(flush_outbox(out.clone(), stats.clone()));

    let refresh = {
        let policy = policy.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(OWN_ADDRESSES_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let fresh = Arc::new(base.clone().with_own(own_addresses()));
                *policy.write().expect("policy lock") = fresh;
            }
        })
    };
    let session_end = CancellationToken::new();
    let heartbeats = tokio::spawn(heartbeat_loop(
        api.clone(),
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
                // A consumer's messages always come with their delivery (and so their tag).
                Some(msg) => if let Some(deliver) = msg.deliver {
                    let tag = deliver.delivery_tag();
                    out.acks.delivered(tag);
                    let policy = policy.read().expect("policy lock").clone();
                    handle(&out, reg, &policy, &prober, &stats, msg.content.unwrap_or_default(), tag);
                },
                None => break End::Lost("consumer stream ended".into()),
            },
        }
    };
    if matches!(end, End::Lost(_)) {
        *stats.lost_node.lock().expect("lost node lock") = Some(node);
    }
    session_end.cancel();
    heartbeats.abort();
    refresh.abort();
    acking.abort();
    if matches!(end, End::Shutdown) {
        // Let running probes publish their results (bounded), ack them, then leave.
        let drain = async {
            while stats.in_flight.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
        out.acks.flush(&out.consumer).await;
        let _ = conn.close().await;
    }
    end
}

/// Starts the probe for one delivery. The request is acked only after its result is confirmed
/// by the broker, so a crash mid-probe leads to redelivery, never to a lost result.
fn handle(
    out: &Out,
    reg: &RegisterResponse,
    policy: &Arc<Policy>,
    prober: &Arc<Prober>,
    stats: &Arc<Stats>,
    body: Vec<u8>,
    tag: u64,
) {
    let request: CheckRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "dropping a malformed check request");
            out.ack(tag);
            return;
        }
    };
    let agent_id = reg.agent_id;
    if let Some((result, attempts)) = stats.outbox.take(&request.check_id) {
        // A redelivery of a request already answered while the broker was away.
        let (out, stats) = (out.clone(), stats.clone());
        tokio::spawn(
            async move { publish_result(&out, &stats, result, attempts, Some(tag)).await },
        );
        return;
    }
    if stats
        .answered
        .lock()
        .expect("answered lock")
        .contains(&request.check_id)
    {
        tracing::debug!(check_id = %request.check_id, "redelivered request already answered");
        out.ack(tag);
        return;
    }
    if !request.agents.contains(&agent_id) {
        tracing::debug!(check_id = %request.check_id, "check not meant for this agent");
        out.ack(tag);
        return;
    }
    let now = chrono::Utc::now();
    if request.expires_at <= now {
        // Too late to start: say so at once rather than let the check's deadline pass.
        let late = (now - request.expires_at).num_milliseconds();
        tracing::info!(check_id = %request.check_id, late_ms = late, "check request taken after its start-by time; answering agent_busy");
        let result = CheckResult {
            protocol_version: netcheck_proto::PROTOCOL_VERSION,
            check_id: request.check_id,
            agent_id,
            status: ResultStatus::Failed,
            error: Some(ProbeError::new(
                ProbeErrorCode::AgentBusy,
                format!("the agent took the request {late} ms after the time it had to start by (it was busy or away), so it did not run it"),
            )),
            started_at: now,
            duration_ms: 0.0,
            data: None,
        };
        let (out, stats) = (out.clone(), stats.clone());
        tokio::spawn(async move { publish_result(&out, &stats, result, 0, Some(tag)).await });
        return;
    }
    let (out, prober, stats, policy) = (out.clone(), prober.clone(), stats.clone(), policy.clone());
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
        publish_result(&out, &stats, result, 0, Some(tag)).await;
        stats.total.fetch_add(1, Ordering::Relaxed);
        stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        stats.metrics.in_flight.dec();
    });
}

/// Posts a heartbeat every interval. A 401 means the agent was deleted: it cancels `end`.
async fn heartbeat_loop(
    api: Api,
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
        match api.heartbeat(&reg.heartbeat.url, &beat).await {
            Ok(()) => tracing::debug!("heartbeat sent"),
            Err(e) if e.status() == Some(reqwest::StatusCode::UNAUTHORIZED) => {
                tracing::error!("heartbeat refused: agent token revoked");
                end.cancel();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat not accepted"),
        }
    }
}

/// Publishes a result (confirmed, at most [`results::MAX_RESULT_BYTES`]), then acks its request (when
/// it came from this session). A failed publish keeps the result in the outbox for another
/// attempt, up to [`results::MAX_ATTEMPTS`].
async fn publish_result(
    out: &Out,
    stats: &Stats,
    result: CheckResult,
    attempts: u32,
    tag: Option<u64>,
) {
    let (result, body) = results::encode(result);
    // A refusal or a missing confirm while the session lives (a quorum queue electing a new
    // leader, a full results queue) is tried again here after a pause: nothing else would
    // send the result before its check's deadline. The store takes a result twice as once.
    let mut pause = Duration::from_millis(250);
    loop {
        let id = format!("{}:{}", result.check_id, result.agent_id);
        match out.results.publish(id, body.clone()).await {
            Ok(()) => {
                if let Some(tag) = tag {
                    out.ack(tag);
                }
                tracing::debug!(check_id = %result.check_id, status = result.status.as_str(), "result published");
                stats
                    .answered
                    .lock()
                    .expect("answered lock")
                    .insert(result.check_id);
                return;
            }
            Err(e)
                if matches!(*e, PublishError::Nacked | PublishError::Timeout(_))
                    && pause <= IN_SESSION_RETRY_UP_TO
                    && out.consumer.is_open() =>
            {
                tracing::warn!(check_id = %result.check_id, error = %e, retry_in_ms = pause.as_millis() as u64, "result not confirmed; publishing it again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => return stats.outbox.keep(result, attempts + 1, &e),
        }
    }
}

/// Longest pause between publishes of one result within a session (250 ms doubling: four
/// more tries over about 4 s).
const IN_SESSION_RETRY_UP_TO: Duration = Duration::from_secs(2);

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

    #[test]
    fn a_bursts_answers_are_forgotten_without_a_new_answer_and_the_set_shrinks() {
        let mut a = Answered::default();
        let t0 = Instant::now();
        for _ in 0..10_000 {
            a.insert_at(uuid::Uuid::now_v7(), t0);
        }
        let late = uuid::Uuid::now_v7();
        a.insert_at(late, t0 + Duration::from_secs(60));
        let grown = a.ids.capacity();
        assert!(
            !a.forget_expired(t0 + Duration::from_secs(90)),
            "still in the window"
        );
        assert!(
            a.forget_expired(t0 + ANSWERED_FOR),
            "the burst is forgotten"
        );
        assert!(a.contains(&late) && a.ids.len() == 1);
        assert!(
            a.ids.capacity() < grown / 100,
            "{} of {grown}",
            a.ids.capacity()
        );
        assert!(
            !a.forget_expired(t0 + ANSWERED_FOR),
            "nothing more to forget"
        );
    }
}

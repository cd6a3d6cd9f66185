//! Probes: each turns a check request into a result, under a deadline, re-checking every
//! address it is about to contact against the target policy.

mod dns;
mod expect;
mod http;
mod icmp;
mod pace;
mod ping;
mod resolve;
mod tcp;
mod trace;

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::policy::Policy;
use netcheck_proto::check::{CheckRequest, CheckSpec};
use netcheck_proto::result::ProbeErrorCode;
use netcheck_proto::result::{CheckResult, ProbeError, ResultData, ResultStatus};
use netcheck_proto::PROTOCOL_VERSION;

/// What a probe produces: its facts, and an error when the target failed.
pub struct Outcome {
    pub data: ResultData,
    pub error: Option<ProbeError>,
}

/// Runs probes; one per agent, shared by all in-flight checks.
pub struct Prober {
    targets: resolve::TargetResolver,
    /// The agent's own DNS server (`--resolver`), asked by `dns` checks that name none.
    resolver: Option<std::net::SocketAddr>,
    pinger: ping::Pinger,
    tls: http::TlsConfigs,
}

impl Prober {
    /// `resolver` (ip or ip:port) replaces the system's resolvers for target names.
    pub fn new(resolver: Option<&str>) -> anyhow::Result<Self> {
        Ok(Self {
            targets: resolve::TargetResolver::new(resolver)?,
            resolver: resolver.and_then(dns::parse_resolver),
            pinger: ping::Pinger::default(),
            tls: http::TlsConfigs::new()?,
        })
    }

    /// Whether raw/datagram ICMP sockets can be opened (ICMP needs root, CAP_NET_RAW or
    /// `net.ipv4.ping_group_range`).
    pub fn icmp_available(&self) -> Result<(), String> {
        self.pinger.available()
    }

    /// Runs the request's probe under the agent's own target `policy` and builds the result
    /// message. A target the policy refuses is answered `target_refused` before any packet.
    pub async fn run(
        &self,
        req: &CheckRequest,
        agent_id: uuid::Uuid,
        policy: &Policy,
    ) -> CheckResult {
        let started_at = Utc::now();
        let start = Instant::now();
        // The server's deadline for this check, with a margin so the result still arrives.
        let budget = Duration::from_millis(req.spec.budget_ms() + 500);
        let deadline = tokio::time::Instant::now() + budget;
        let outcome = tokio::time::timeout_at(deadline, self.dispatch(req, policy)).await;
        let (status, error, data, body) = match outcome {
            Ok((Outcome { data, error: None }, body)) => (ResultStatus::Ok, None, Some(data), body),
            Ok((
                Outcome {
                    data,
                    error: Some(e),
                },
                body,
            )) => (ResultStatus::Failed, Some(e), Some(data), body),
            Err(_) => (
                ResultStatus::Failed,
                Some(ProbeError::new(
                    ProbeErrorCode::Timeout,
                    "the probe ran out of time",
                )),
                None,
                Vec::new(),
            ),
        };
        let (mut data, judged) = expect::judge_by(&req.spec, data, body, deadline).await;
        let (assertions, unevaluable) = match judged {
            Ok(a) => (a, None),
            Err(expect::Unevaluable(why)) => (Vec::new(), Some(why)),
        };
        // A probe that failed keeps its own error (it says more); one that worked fails on
        // the first expectation it does not meet, or when they could not be judged in time.
        let (status, error) = match assertions.iter().find(|a| !a.ok) {
            _ if status != ResultStatus::Ok => (status, error),
            _ if unevaluable.is_some() => (
                ResultStatus::Failed,
                unevaluable.map(|why| ProbeError::new(ProbeErrorCode::ExpectationUnevaluable, why)),
            ),
            Some(first) => (
                ResultStatus::Failed,
                Some(ProbeError::new(
                    ProbeErrorCode::ExpectationFailed,
                    format!("{}: {}", first.name, first.detail),
                )),
            ),
            _ => (status, error),
        };
        if let Some(d) = data.as_mut() {
            *d.assertions_mut() = assertions;
        }
        CheckResult {
            protocol_version: PROTOCOL_VERSION,
            check_id: req.check_id,
            agent_id,
            status,
            error,
            started_at,
            duration_ms: ms(start.elapsed()),
            data,
        }
    }

    /// The probe's outcome, and the start of the response body when expectations need it.
    async fn dispatch(&self, req: &CheckRequest, policy: &Policy) -> (Outcome, Vec<u8>) {
        match &req.spec {
            CheckSpec::Ping(o) => (
                ping::run(&self.targets, &self.pinger, &req.target, o, policy).await,
                Vec::new(),
            ),
            CheckSpec::Tcp(o) => (
                tcp::run(&self.targets, &req.target, o, policy).await,
                Vec::new(),
            ),
            CheckSpec::Http(o) => http::run(&self.targets, &self.tls, &req.target, o, policy).await,
            CheckSpec::Dns(o) => (
                dns::run(&req.target, o, policy, self.resolver).await,
                Vec::new(),
            ),
            CheckSpec::Traceroute(o) => (
                trace::traceroute(&self.targets, &req.target, o, policy).await,
                Vec::new(),
            ),
            CheckSpec::Mtr(o) => (
                trace::mtr(&self.targets, &req.target, o, policy).await,
                Vec::new(),
            ),
        }
    }
}

/// Milliseconds with microsecond precision.
pub fn ms(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

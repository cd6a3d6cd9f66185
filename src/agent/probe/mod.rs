//! Probes: each turns a check request into a result, under a deadline, re-checking every
//! address it is about to contact against the target policy.

mod dns;
mod http;
mod icmp;
mod ping;
mod tcp;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::Utc;
use hickory_resolver::TokioResolver;

use crate::policy::{parse_ip_loose, Policy};
use crate::proto::check::{
    CheckRequest, CheckResult, CheckSpec, IpVersion, ProbeError, ResultData, ResultStatus,
};
use crate::proto::PROTOCOL_VERSION;

/// What a probe produces: its facts, and an error when the target failed.
pub struct Outcome {
    pub data: ResultData,
    pub error: Option<ProbeError>,
}

/// Runs probes; one per agent, shared by all in-flight checks.
pub struct Prober {
    resolver: TokioResolver,
    pinger: ping::Pinger,
    tls: http::TlsConfigs,
}

impl Prober {
    /// `resolver` (ip or ip:port) replaces the system's resolvers for target names.
    pub fn new(resolver: Option<&str>) -> anyhow::Result<Self> {
        let builder = match resolver {
            Some(r) => {
                let addr = dns::parse_resolver(r)
                    .ok_or_else(|| anyhow::anyhow!("--resolver: '{r}' is not ip or ip:port"))?;
                let mut ns = hickory_resolver::config::NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                let config =
                    hickory_resolver::config::ResolverConfig::from_parts(None, vec![], vec![ns]);
                TokioResolver::builder_with_config(
                    config,
                    hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| anyhow::anyhow!("reading the system resolver configuration: {e}"))?,
        };
        let resolver = builder
            .build()
            .map_err(|e| anyhow::anyhow!("building the resolver: {e}"))?;
        Ok(Self {
            resolver,
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
        let outcome = tokio::time::timeout(budget, self.dispatch(req, policy)).await;
        let (status, error, data) = match outcome {
            Ok(Outcome { data, error: None }) => (ResultStatus::Ok, None, Some(data)),
            Ok(Outcome {
                data,
                error: Some(e),
            }) => (ResultStatus::Failed, Some(e), Some(data)),
            Err(_) => (
                ResultStatus::Failed,
                Some(ProbeError::new("timeout", "the probe ran out of time")),
                None,
            ),
        };
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

    async fn dispatch(&self, req: &CheckRequest, policy: &Policy) -> Outcome {
        match &req.spec {
            CheckSpec::Ping(o) => ping::run(self, &req.target, o, policy).await,
            CheckSpec::Tcp(o) => tcp::run(self, &req.target, o, policy).await,
            CheckSpec::Http(o) => http::run(self, &req.target, o, policy).await,
            CheckSpec::Dns(o) => dns::run(&req.target, o, policy).await,
        }
    }

    /// Resolves `host` to one address of the wanted family that the policy allows.
    /// Returns the address and how long resolution took (`None` for IP literals).
    pub async fn resolve(
        &self,
        host: &str,
        version: Option<IpVersion>,
        policy: &Policy,
    ) -> Result<(IpAddr, Option<Duration>), ProbeError> {
        let wanted = |ip: &IpAddr| match version {
            Some(IpVersion::V4) => ip.is_ipv4(),
            Some(IpVersion::V6) => ip.is_ipv6(),
            None => true,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Some(ip) = parse_ip_loose(host) {
            if !wanted(&ip) {
                return Err(ProbeError::new(
                    "dns",
                    format!(
                        "{ip} is not an IPv{} address",
                        if ip.is_ipv4() { 6 } else { 4 }
                    ),
                ));
            }
            policy
                .check(ip)
                .map_err(|r| ProbeError::new("target_refused", r.to_string()))?;
            return Ok((ip, None));
        }
        if let Err(msg) = policy.check_host(host) {
            return Err(ProbeError::new("target_refused", msg));
        }
        let start = Instant::now();
        let lookup = self
            .resolver
            .lookup_ip(host)
            .await
            .map_err(|e| ProbeError::new("dns", format!("could not resolve {host}: {e}")))?;
        let took = start.elapsed();
        let candidates: Vec<IpAddr> = lookup.iter().filter(|ip| wanted(ip)).collect();
        if candidates.is_empty() {
            return Err(ProbeError::new(
                "dns",
                format!(
                    "{host} has no {} address",
                    match version {
                        Some(IpVersion::V4) => "IPv4",
                        Some(IpVersion::V6) => "IPv6",
                        None => "IP",
                    }
                ),
            ));
        }
        let mut refusal = None;
        for ip in candidates {
            match policy.check(ip) {
                Ok(()) => return Ok((ip, Some(took))),
                Err(r) => refusal = Some(r),
            }
        }
        let r = refusal.expect("at least one candidate");
        Err(ProbeError::new(
            "target_refused",
            format!("{host} resolves to {r}"),
        ))
    }
}

/// Milliseconds with microsecond precision.
pub fn ms(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

//! Turning a check's target into the one address a probe contacts: an IP literal as it is, a
//! name through the agent's resolver, and either way only an address the agent's target policy
//! allows (the DNS-rebinding defence). Probes get this handle, not the whole prober.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;

use super::dns;
use crate::policy::{parse_ip_loose, Policy};
use netcheck_proto::check::IpVersion;
use netcheck_proto::result::ProbeError;
use netcheck_proto::result::ProbeErrorCode;

/// Resolves targets; one per agent, shared by all in-flight checks.
pub struct TargetResolver {
    resolver: TokioResolver,
}

impl TargetResolver {
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
        Ok(Self { resolver })
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
                    ProbeErrorCode::Dns,
                    format!(
                        "{ip} is not an IPv{} address",
                        if ip.is_ipv4() { 6 } else { 4 }
                    ),
                ));
            }
            policy
                .check(ip)
                .map_err(|r| ProbeError::new(ProbeErrorCode::TargetRefused, r.to_string()))?;
            return Ok((ip, None));
        }
        if let Err(msg) = policy.check_host(host) {
            return Err(ProbeError::new(ProbeErrorCode::TargetRefused, msg));
        }
        let start = Instant::now();
        let lookup = self.resolver.lookup_ip(host).await.map_err(|e| {
            ProbeError::new(ProbeErrorCode::Dns, crate::names::resolve_failure(host, &e))
        })?;
        let took = start.elapsed();
        let candidates: Vec<IpAddr> = lookup.iter().filter(|ip| wanted(ip)).collect();
        if candidates.is_empty() {
            return Err(ProbeError::new(
                ProbeErrorCode::Dns,
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
            ProbeErrorCode::TargetRefused,
            format!("{host} resolves to {r}"),
        ))
    }
}

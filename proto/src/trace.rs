//! `traceroute` and `mtr`: their options and results (the agent runs them with trippy-core,
//! the server fills in where each hop is).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::check::{ip_version_serde, CheckSpec, IpVersion};
use super::expect::{Assertion, TraceExpect};
use super::limits;

/// How a trace's probes travel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TraceProtocol {
    /// ICMP echo requests.
    #[default]
    Icmp,
    /// UDP datagrams to `port`; the target's port-unreachable ends the trace.
    Udp,
    /// TCP SYNs to `port`; the target's SYN-ACK or RST ends the trace.
    Tcp,
}

impl TraceProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceProtocol::Icmp => "icmp",
            TraceProtocol::Udp => "udp",
            TraceProtocol::Tcp => "tcp",
        }
    }
}

/// `traceroute` options: each TTL up to the target or `max_hops` is probed `queries` times,
/// all TTLs in parallel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TracerouteOptions {
    pub protocol: TraceProtocol,
    /// Destination port for `udp` (default 33434) and `tcp` (default 80).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Highest TTL tried.
    pub max_hops: u8,
    /// Milliseconds to wait for the answers of one round.
    pub timeout_ms: u32,
    #[serde(with = "ip_version_serde", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u8>)]
    pub ip_version: Option<IpVersion>,
    /// What the result must show to be `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<TraceExpect>,
}

impl Default for TracerouteOptions {
    fn default() -> Self {
        Self {
            protocol: TraceProtocol::Icmp,
            port: None,
            max_hops: limits::TRACE_MAX_HOPS.default_u8(),
            timeout_ms: limits::TRACE_TIMEOUT_MS.default_u32(),
            ip_version: None,
            expect: None,
        }
    }
}

/// `mtr` options: as `traceroute`, with `packets` rounds whose statistics are kept per hop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MtrOptions {
    pub protocol: TraceProtocol,
    /// Destination port for `udp` (default 33434) and `tcp` (default 80).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Highest TTL tried.
    pub max_hops: u8,
    /// Milliseconds to wait for the answers of one round.
    pub timeout_ms: u32,
    /// Probes per hop.
    pub packets: u8,
    /// Milliseconds between the starts of two rounds, as mtr's `-i`. Routers answer
    /// about one time-exceeded a second per source after a short burst, so rounds faster than
    /// that read their rate limit as loss. (Left out when it is the default, so agents older
    /// than the option still run default mtrs.)
    #[serde(skip_serializing_if = "is_default_interval")]
    pub interval_ms: u32,
    #[serde(with = "ip_version_serde", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u8>)]
    pub ip_version: Option<IpVersion>,
    /// What the result must show to be `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<TraceExpect>,
}

impl Default for MtrOptions {
    fn default() -> Self {
        Self {
            protocol: TraceProtocol::Icmp,
            port: None,
            max_hops: limits::TRACE_MAX_HOPS.default_u8(),
            timeout_ms: limits::TRACE_TIMEOUT_MS.default_u32(),
            packets: limits::MTR_PACKETS.default_u8(),
            interval_ms: MTR_INTERVAL_MS,
            ip_version: None,
            expect: None,
        }
    }
}

/// Probes per hop of a `traceroute` (as Debian's `traceroute -q 3`).
pub const TRACE_QUERIES: usize = 3;

/// An mtr's default time between rounds: mtr's own `-i 1`, what routers' ICMP limiters allow.
pub const MTR_INTERVAL_MS: u32 = limits::MTR_INTERVAL.default_u32();

fn is_default_interval(ms: &u32) -> bool {
    *ms == MTR_INTERVAL_MS
}

/// Longest an agent holds a traceroute back so that traces started together do not exceed
/// what nearby routers answer; part of the traceroute's time budget.
pub const TRACE_PACE_WAIT_MS: u64 = 5000;

/// Where a hop is, when the server knows (GeoIP and ASN of its address).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HopPlace {
    pub country_code: Option<String>,
    pub city: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// One TTL of a `traceroute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TraceHop {
    pub ttl: u8,
    /// The address that answered (`null`: no answer at this TTL, shown as `*`).
    pub address: Option<String>,
    /// Round trips of the answers, in milliseconds.
    pub rtt_ms: Vec<f64>,
    /// Some queries went unanswered while the agent was sending toward this hop faster than
    /// routers answer (a burst of about 6, then 1 a second), or ran other traces at the same
    /// time: the silence may be the router's ICMP rate limit rather than loss.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rate_limited: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<HopPlace>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TracerouteResult {
    pub resolved_address: Option<String>,
    pub protocol: TraceProtocol,
    /// Whether the target itself answered.
    pub reached: bool,
    /// One entry per TTL, from 1 up to the target or `max_hops`.
    pub hops: Vec<TraceHop>,
    /// The verdict on each expectation in `options.expect` (empty without expectations).
    #[serde(default)]
    pub assertions: Vec<Assertion>,
}

/// Round-trip statistics of one hop, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HopRtt {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub stdev: f64,
}

/// One TTL of an `mtr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MtrHop {
    pub ttl: u8,
    pub address: Option<String>,
    pub sent: u32,
    pub received: u32,
    pub loss_pct: f64,
    pub rtt_ms: Option<HopRtt>,
    /// Part of the loss coincides with the agent sending toward this hop faster than routers
    /// answer (a short `interval_ms`, or other traces at the same time): it may be the router's
    /// ICMP rate limit rather than the network.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rate_limited: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<HopPlace>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MtrResult {
    pub resolved_address: Option<String>,
    pub protocol: TraceProtocol,
    pub reached: bool,
    pub hops: Vec<MtrHop>,
    /// The verdict on each expectation in `options.expect` (empty without expectations).
    #[serde(default)]
    pub assertions: Vec<Assertion>,
}

impl CheckSpec {
    /// A trace's protocol (`None` for the other types).
    pub fn trace_protocol(&self) -> Option<TraceProtocol> {
        match self {
            CheckSpec::Traceroute(o) => Some(o.protocol),
            CheckSpec::Mtr(o) => Some(o.protocol),
            _ => None,
        }
    }

    /// What an agent must be able to do to run it (`None`: every agent can).
    pub fn required_capability(&self) -> Option<crate::agent::Capability> {
        use crate::agent::Capability;
        let protocol = match self {
            CheckSpec::Traceroute(o) => o.protocol,
            CheckSpec::Mtr(o) => o.protocol,
            _ => return None,
        };
        Some(match protocol {
            TraceProtocol::Icmp => Capability::TraceIcmp,
            TraceProtocol::Udp => Capability::TraceUdp,
            TraceProtocol::Tcp => Capability::TraceTcp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_interval_stays_off_the_wire_for_older_agents() {
        let default = serde_json::to_value(MtrOptions::default()).unwrap();
        assert!(default.get("interval_ms").is_none(), "{default}");
        let back: MtrOptions = serde_json::from_value(default).unwrap();
        assert_eq!(back.interval_ms, MTR_INTERVAL_MS);
        let paced = MtrOptions {
            interval_ms: 250,
            ..Default::default()
        };
        assert_eq!(serde_json::to_value(paced).unwrap()["interval_ms"], 250);
    }
}

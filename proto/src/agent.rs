//! Agent enrollment and liveness: `POST /api/v1/agent/register` and the heartbeat.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Probe kinds an agent can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Icmp,
    Tcp,
    Http,
    Dns,
    /// `traceroute`/`mtr` with ICMP echo (raw sockets: root or CAP_NET_RAW).
    TraceIcmp,
    /// `traceroute`/`mtr` with UDP.
    TraceUdp,
    /// `traceroute`/`mtr` with TCP SYN.
    TraceTcp,
}

/// Body of `POST /api/v1/agent/register` (the agent token goes in `Authorization: Bearer`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    pub hostname: String,
    pub version: String,
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub protocol_version: Option<u32>,
    /// Operating system and architecture, e.g. `linux/x86_64`.
    #[serde(default)]
    pub platform: Option<String>,
}

/// Answer to a registration: fresh broker credentials and how to stay alive.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisterResponse {
    pub agent_id: Uuid,
    pub amqp: AmqpCredentials,
    pub heartbeat: HeartbeatConfig,
    pub protocol_version: u32,
    /// The target policy the agent enforces. It arrives here, over HTTPS from the server, and
    /// never in a check message. (Older servers send none: then only public targets.)
    #[serde(default)]
    pub policy: TargetPolicy,
}

/// What an agent may send packets to beyond the public internet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TargetPolicy {
    /// Networks (CIDR) allowed although the default policy refuses them (private ranges, …).
    pub allowed_networks: Vec<String>,
    /// The agent's own public address as the server saw it at registration: the agent refuses
    /// it (services firewalled only at the edge answer there) unless an allowed network names
    /// exactly that address.
    #[serde(default)]
    pub self_addresses: Vec<String>,
}

/// Broker access of one agent session. The password is new at every registration.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AmqpCredentials {
    /// The first of `urls` (older agents use `host`, `port` and `tls`, which describe it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Every broker node (`amqp://host:port/vhost`, no credentials), in the order this agent
    /// should try them: rotated per agent so a fleet spreads over a cluster's nodes. Empty
    /// from older servers: then `host`, `port` and `tls` are the one address.
    #[serde(default)]
    pub urls: Vec<String>,
    pub host: String,
    pub port: u16,
    pub vhost: String,
    pub username: String,
    pub password: String,
    pub tls: bool,
    /// The agent's own queue of check requests.
    pub queue: String,
    /// Where results are published.
    pub results_exchange: String,
    /// Most results the server takes in one message, as a JSON array of results (a message
    /// holding one result is the result itself). Agents publish the results that finish
    /// while a message waits for its confirm together. Older servers send none: one.
    #[serde(default = "one")]
    pub results_per_message: u32,
}

fn one() -> u32 {
    1
}

impl std::fmt::Debug for AmqpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpCredentials")
            .field("urls", &self.urls)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("vhost", &self.vhost)
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .field("tls", &self.tls)
            .field("queue", &self.queue)
            .field("results_exchange", &self.results_exchange)
            .field("results_per_message", &self.results_per_message)
            .finish()
    }
}

/// One broker address an agent can connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl AmqpCredentials {
    /// The addresses to try, in order: `urls` when the server sent them (unparsable entries
    /// are skipped), else the one `host`/`port`/`tls`.
    pub fn addresses(&self) -> Vec<BrokerAddress> {
        let parsed: Vec<BrokerAddress> = self
            .urls
            .iter()
            .filter_map(|u| BrokerAddress::parse(u))
            .collect();
        if parsed.is_empty() {
            vec![BrokerAddress {
                host: self.host.clone(),
                port: self.port,
                tls: self.tls,
            }]
        } else {
            parsed
        }
    }
}

impl BrokerAddress {
    /// From `amqp://host[:port][/vhost]` or `amqps://…`; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        let u = url::Url::parse(raw).ok()?;
        let tls = match u.scheme() {
            "amqp" => false,
            "amqps" => true,
            _ => return None,
        };
        let host = u.host_str()?.trim_start_matches('[').trim_end_matches(']');
        Some(Self {
            host: host.to_string(),
            port: u.port().unwrap_or(if tls { 5671 } else { 5672 }),
            tls,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatConfig {
    /// Absolute URL to POST heartbeats to.
    pub url: String,
    pub interval_secs: u64,
}

/// Body of a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Heartbeat {
    pub agent_id: Uuid,
    pub uptime_secs: u64,
    /// Probes running right now.
    pub in_flight: u64,
    /// Probes run since the agent started.
    #[serde(default)]
    pub probes_total: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = AmqpCredentials {
            url: None,
            urls: Vec::new(),
            host: "h".into(),
            port: 5672,
            vhost: "v".into(),
            username: "u".into(),
            password: "hunter2".into(),
            tls: false,
            queue: "q".into(),
            results_exchange: "x".into(),
            results_per_message: 1,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn older_agents_without_optional_fields_still_parse() {
        let r: RegisterRequest =
            serde_json::from_str(r#"{"hostname":"h","version":"0.1.0","capabilities":["tcp"]}"#)
                .unwrap();
        assert_eq!(r.capabilities, vec![Capability::Tcp]);
        let h: Heartbeat = serde_json::from_str(
            r#"{"agent_id":"00000000-0000-0000-0000-000000000000","uptime_secs":1,"in_flight":0}"#,
        )
        .unwrap();
        assert_eq!(h.probes_total, None);
    }
}

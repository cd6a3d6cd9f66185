//! Agents as administrators manage them and as check creation lists them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::FixedLocation;
use crate::agent::Capability;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Created, never registered.
    Pending,
    /// A heartbeat arrived within three intervals.
    Online,
    /// Registered once, silent for longer than three intervals.
    Offline,
}

impl AgentStatus {
    /// The status at `at` of an agent registered at `registered_at` (if ever) and last seen
    /// at `last_seen`: online while the last heartbeat is at most three intervals old.
    pub fn of(
        registered_at: Option<DateTime<Utc>>,
        last_seen: Option<DateTime<Utc>>,
        interval_secs: u64,
        at: DateTime<Utc>,
    ) -> Self {
        match (registered_at, last_seen) {
            (None, _) => Self::Pending,
            (Some(_), Some(seen))
                if (at - seen).num_milliseconds() <= 3 * 1000 * interval_secs as i64 =>
            {
                Self::Online
            }
            _ => Self::Offline,
        }
    }
}

/// Where an agent is: set by hand (`fixed`), or measured from its address (GeoIP and ASN data).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Location {
    /// ISO 3166-1 alpha-2 code.
    pub country_code: Option<String>,
    pub city: Option<String>,
    /// Unknown for a fixed place given without coordinates.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Autonomous system number of the agent's network.
    pub asn: Option<u32>,
    /// The organisation holding that network.
    pub network: Option<String>,
    /// Set by an administrator rather than measured.
    #[serde(default)]
    pub fixed: bool,
}

/// An agent as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    pub id: Uuid,
    pub name: String,
    pub region: Option<String>,
    pub labels: Vec<String>,
    pub status: AgentStatus,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub version: Option<String>,
    pub hostname: Option<String>,
    pub public_ip: Option<String>,
    pub location: Option<Location>,
    pub capabilities: Vec<Capability>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// A place set by hand (for agents GeoIP cannot place); `null` returns the agent to its
    /// measured place; left out, the place is unchanged.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<FixedLocation>, nullable)]
    pub location: Option<Option<FixedLocation>>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedAgent {
    pub agent: Agent,
    /// Shown only here; give it to `netcheck agent --token`.
    pub token: String,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentToken {
    pub token: String,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`, via `default`).
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_is_online_for_three_heartbeat_intervals_after_it_was_last_seen() {
        let at = Utc::now();
        let ago = |s: i64| Some(at - chrono::Duration::seconds(s));
        assert_eq!(AgentStatus::of(None, ago(1), 10, at), AgentStatus::Pending);
        assert_eq!(AgentStatus::of(ago(60), None, 10, at), AgentStatus::Offline);
        assert_eq!(
            AgentStatus::of(ago(60), ago(30), 10, at),
            AgentStatus::Online
        );
        assert_eq!(
            AgentStatus::of(ago(60), ago(31), 10, at),
            AgentStatus::Offline
        );
        assert_eq!(AgentStatus::of(ago(60), ago(0), 1, at), AgentStatus::Online);
    }
}

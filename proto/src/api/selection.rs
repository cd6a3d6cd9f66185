//! Choosing the agents that run a check (and, later, a monitor's runs): by id or name, by
//! place, network and label, like an earlier check, with a cap.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Largest `limit` of a selection or of one of its locations, and the most agents one check
/// may name.
pub const MAX_SELECTION_LIMIT: u32 = 500;

/// How a check chooses its agents: at most one of `agents`, `locations` and
/// `same_agents_as`, optionally capped by `limit`. Given nothing, every online agent runs it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentSelection {
    /// Agent ids or names (names match in any letter case). Named agents that are offline get
    /// an `offline` result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<String>>,
    /// Places, networks and labels; each entry picks up to its `limit` online agents that match
    /// every field it gives, and the union runs the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<Vec<LocationFilter>>,
    /// The agents of an earlier check the caller may see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_agents_as: Option<Uuid>,
    /// Caps the number of agents (1..500). Alone, it picks that many online agents spread over
    /// as many countries, then cities and networks, as possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

impl AgentSelection {
    /// Whether nothing was chosen (every online agent runs the check).
    pub fn is_everyone(&self) -> bool {
        *self == Self::default()
    }
}

/// One entry of `locations`: the online agents whose attributes equal every field given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationFilter {
    /// ISO 3166-1 alpha-2 country code, any letter case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The agent's region, as set by its administrator (any letter case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// City name, any letter case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Autonomous system number of the agent's network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// A label the agent carries (exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// How many agents this entry contributes at most (1..500, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

impl std::str::FromStr for LocationFilter {
    type Err = String;

    /// Reads the CLI's form: `key:value` pairs joined by commas, e.g. `country:DE`,
    /// `label:dc1,asn:3320` or `country:US,limit:2`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut f = LocationFilter::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once(':').ok_or_else(|| {
                format!("'{part}': expected key:value (country, region, city, asn, label, limit)")
            })?;
            let value = value.trim().to_string();
            let number = |v: &str| {
                v.parse::<u32>()
                    .map_err(|_| format!("'{part}': {key} must be a number"))
            };
            match key.trim() {
                "country" => f.country = Some(value),
                "region" => f.region = Some(value),
                "city" => f.city = Some(value),
                "asn" => f.asn = Some(number(value.trim_start_matches("AS"))?),
                "label" => f.label = Some(value),
                "limit" => f.limit = Some(number(&value)?),
                other => {
                    return Err(format!(
                        "unknown key '{other}' (country, region, city, asn, label, limit)"
                    ))
                }
            }
        }
        if f == LocationFilter::default() {
            return Err(
                "empty location: give at least one of country, region, city, asn, label".into(),
            );
        }
        Ok(f)
    }
}

/// A place set by hand for an agent whose address GeoIP cannot place (private networks).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FixedLocation {
    /// ISO 3166-1 alpha-2 country code.
    pub country_code: String,
    #[serde(default)]
    pub city: Option<String>,
    /// Latitude in degrees (-90..90); with `lon`, places the agent on the map.
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude in degrees (-180..180).
    #[serde(default)]
    pub lon: Option<f64>,
    /// The network's autonomous system number, when the ASN data cannot tell it.
    #[serde(default)]
    pub asn: Option<u32>,
    /// The organisation holding that network.
    #[serde(default)]
    pub network: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_locations_read_every_key() {
        let f: LocationFilter = "country:de, label:dc1,asn:AS3320,limit:2".parse().unwrap();
        assert_eq!(f.country.as_deref(), Some("de"));
        assert_eq!(f.label.as_deref(), Some("dc1"));
        assert_eq!(f.asn, Some(3320));
        assert_eq!(f.limit, Some(2));
        assert!("planet:mars".parse::<LocationFilter>().is_err());
        assert!("country".parse::<LocationFilter>().is_err());
        assert!("asn:x".parse::<LocationFilter>().is_err());
        assert!("".parse::<LocationFilter>().is_err());
    }
}

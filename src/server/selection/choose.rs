//! Turning an [`AgentSelection`] into the agents that run a check: validation (422s that name
//! the field), then matching against one read of the agent table (a [`Fleet`]).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::fleet::Fleet;
use super::spread::Spread;
use crate::server::error::{ApiError, ApiResult};
use netcheck_proto::api::ErrorCode;
use netcheck_proto::api::{AgentSelection, MAX_SELECTION_LIMIT};

/// The agents chosen, as indices into the fleet.
#[derive(Debug, Default)]
pub struct Choice {
    pub online: Vec<usize>,
    /// Named (by id, name or an earlier check) but offline: they get an `offline` result.
    pub offline: Vec<usize>,
    /// Some named agents are offline: a newer read of the table might find them back.
    /// (Places with fewer agents than asked are not re-read for: that is their normal state.)
    pub short: bool,
}

/// Why a read of the table chose no one.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Named agents that do not exist.
    Unknown(Vec<String>),
    /// The selection matches no (online) agent.
    NoMatch,
    /// Nothing was narrowed down, and no agent is online.
    NoneOnline,
}

impl Refusal {
    pub fn into_error(self) -> ApiError {
        match self {
            Refusal::Unknown(names) => {
                ApiError::invalid_field("agents", format!("unknown agent(s): {}", names.join(", ")))
            }
            Refusal::NoMatch => ApiError::new(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::NoMatchingAgents,
                "no online agent matches the selection",
            ),
            Refusal::NoneOnline => ApiError::conflict(
                ErrorCode::NoAgentsOnline,
                "no agent is online to run this check",
            ),
        }
    }
}

fn limit_ok(field: &str, v: Option<u32>) -> ApiResult<()> {
    match v {
        Some(n) if n == 0 || n > MAX_SELECTION_LIMIT => Err(ApiError::invalid_field(
            field,
            format!("{field} must be between 1 and {MAX_SELECTION_LIMIT}"),
        )),
        _ => Ok(()),
    }
}

/// Checks the selection's shape before any agent is read.
pub fn validate(sel: &AgentSelection) -> ApiResult<()> {
    let ways = [
        sel.agents.is_some(),
        sel.locations.is_some(),
        sel.same_agents_as.is_some(),
    ];
    if ways.iter().filter(|w| **w).count() > 1 {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidSelection,
            "choose agents one way: agents, locations or same_agents_as (limit combines with any)",
        ));
    }
    limit_ok("limit", sel.limit)?;
    let max = MAX_SELECTION_LIMIT as usize;
    if let Some(names) = &sel.agents {
        if names.is_empty() || names.len() > max {
            return Err(ApiError::invalid_field(
                "agents",
                format!("name 1 to {max} agents, or leave it out for all"),
            ));
        }
        if names.iter().any(|n| n.trim().is_empty() || n.len() > 64) {
            return Err(ApiError::invalid_field(
                "agents",
                "each agent is an id or a name",
            ));
        }
    }
    if let Some(locations) = &sel.locations {
        if locations.is_empty() || locations.len() > max {
            return Err(ApiError::invalid_field(
                "locations",
                format!("give 1 to {max} locations, or leave it out for all"),
            ));
        }
        for (i, l) in locations.iter().enumerate() {
            let field = |name: &str| format!("locations[{i}].{name}");
            if l.country.is_none()
                && l.region.is_none()
                && l.city.is_none()
                && l.asn.is_none()
                && l.label.is_none()
            {
                return Err(ApiError::invalid_field(
                    &format!("locations[{i}]"),
                    "a location gives at least one of country, region, city, asn, label",
                ));
            }
            if let Some(c) = &l.country {
                if c.len() != 2 || !c.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(ApiError::invalid_field(
                        &field("country"),
                        "country is an ISO 3166 alpha-2 code, e.g. DE",
                    ));
                }
            }
            for (name, v) in [
                ("region", &l.region),
                ("city", &l.city),
                ("label", &l.label),
            ] {
                if v.as_ref().is_some_and(|v| v.is_empty() || v.len() > 128) {
                    return Err(ApiError::invalid_field(
                        &field(name),
                        format!("{name} must be 1-128 characters"),
                    ));
                }
            }
            limit_ok(&field("limit"), l.limit)?;
        }
    }
    Ok(())
}

/// Chooses from one read of the table. `earlier` holds the agents of the check named by
/// `same_agents_as`; `seed` rotates the pick among equally good agents.
pub fn choose(
    fleet: &Fleet,
    sel: &AgentSelection,
    earlier: Option<&[Uuid]>,
    interval_secs: u64,
    seed: u64,
) -> Result<Choice, Refusal> {
    let places = fleet.places();
    let online = |i: usize| fleet.online(i, interval_secs);
    let limit = sel.limit.map(|l| l as usize);
    let mut spread = Spread::default();

    // Named agents (by id or name, or those of an earlier check): online ones run the check,
    // offline ones are reported as such.
    let named: Option<Vec<usize>> = if let Some(names) = &sel.agents {
        let mut unknown = Vec::new();
        let mut found = Vec::new();
        for n in names {
            match fleet.find(n.trim()) {
                Some(i) => found.push(i),
                None => unknown.push(n.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(Refusal::Unknown(unknown));
        }
        Some(found)
    } else {
        // Agents deleted since the earlier check are left out.
        earlier.map(|ids| ids.iter().filter_map(|id| fleet.by_id(*id)).collect())
    };
    if let Some(mut named) = named {
        let mut seen = HashSet::new();
        named.retain(|i| seen.insert(*i));
        if named.is_empty() {
            return Err(Refusal::NoMatch);
        }
        let (up, down): (Vec<usize>, Vec<usize>) = named.into_iter().partition(|&i| online(i));
        let mut choice = Choice::default();
        match limit {
            Some(l) => {
                choice.online = spread.pick(places, &up, l, seed);
                choice.offline = down.into_iter().take(l - choice.online.len()).collect();
            }
            None => (choice.online, choice.offline) = (up, down),
        }
        choice.short = !choice.offline.is_empty();
        return Ok(choice);
    }

    let up: Vec<usize> = (0..fleet.len()).filter(|&i| online(i)).collect();
    if let Some(locations) = &sel.locations {
        let mut taken = HashSet::new();
        let mut union = Vec::new();
        for l in locations {
            let candidates: Vec<usize> = up
                .iter()
                .copied()
                .filter(|&i| !taken.contains(&i) && fleet.matches(i, l))
                .collect();
            let want = l.limit.unwrap_or(1) as usize;
            let picked = spread.pick(places, &candidates, want, seed);
            taken.extend(picked.iter().copied());
            union.extend(picked);
        }
        if union.is_empty() {
            return Err(Refusal::NoMatch);
        }
        if let Some(l) = limit.filter(|&l| l < union.len()) {
            // The cap chooses among everything the entries found, spread afresh.
            union = Spread::default().pick(places, &union, l, seed);
        }
        return Ok(Choice {
            online: union,
            offline: Vec::new(),
            short: false,
        });
    }

    if up.is_empty() {
        return Err(Refusal::NoneOnline);
    }
    let online = match limit {
        Some(l) => spread.pick(places, &up, l, seed),
        None => up,
    };
    Ok(Choice {
        online,
        offline: Vec::new(),
        short: false,
    })
}

/// When the cached table was read before the request and the choice might differ on a newer
/// read, the caller reads again once.
pub fn worth_rereading(
    outcome: &Result<Choice, Refusal>,
    read_at: DateTime<Utc>,
    asked_at: DateTime<Utc>,
) -> bool {
    read_at < asked_at
        && match outcome {
            Ok(c) => c.short || c.online.is_empty(),
            Err(_) => true,
        }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use netcheck_proto::api::agents::Location;
    use netcheck_proto::api::LocationFilter;

    use super::*;
    use crate::server::selection::Member;

    const INTERVAL: u64 = 10;

    /// A fleet read now: `(name, country, online)` per agent.
    fn fleet(agents: &[(&str, &str, bool)]) -> Fleet {
        let now = Utc::now();
        Fleet::new(
            now,
            agents
                .iter()
                .map(|&(name, country, online)| Member {
                    id: Uuid::new_v4(),
                    name: name.into(),
                    location: Some(Location {
                        country_code: Some(country.into()),
                        city: None,
                        lat: None,
                        lon: None,
                        asn: None,
                        network: None,
                        fixed: true,
                    }),
                    registered_at: Some(now - Duration::hours(1)),
                    last_seen_at: Some(now - Duration::seconds(if online { 1 } else { 600 })),
                    ..Member::default()
                })
                .collect::<Vec<_>>()
                .into_iter(),
        )
    }

    fn names(f: &Fleet, idx: &[usize]) -> Vec<Uuid> {
        idx.iter().map(|&i| f.id(i)).collect()
    }

    fn pick(f: &Fleet, sel: AgentSelection) -> Result<Choice, Refusal> {
        choose(f, &sel, None, INTERVAL, 7)
    }

    #[test]
    fn everyone_online_runs_an_open_selection() {
        let f = fleet(&[("a", "DE", true), ("b", "FR", false), ("c", "US", true)]);
        let c = pick(&f, AgentSelection::default()).unwrap();
        assert_eq!(c.online, vec![0, 2]);
        assert!(c.offline.is_empty() && !c.short);
        let all_down = fleet(&[("a", "DE", false)]);
        assert_eq!(
            pick(&all_down, AgentSelection::default()).unwrap_err(),
            Refusal::NoneOnline
        );
    }

    #[test]
    fn named_agents_match_in_any_case_and_offline_ones_are_reported() {
        let f = fleet(&[("fra-1", "DE", true), ("nyc-1", "US", false)]);
        let sel = AgentSelection {
            agents: Some(vec!["FRA-1".into(), "nyc-1".into(), "fra-1".into()]),
            ..Default::default()
        };
        let c = pick(&f, sel).unwrap();
        assert_eq!(c.online, vec![0], "named twice, chosen once");
        assert_eq!(c.offline, vec![1]);
        assert!(c.short, "a newer read might find the offline one back");
        let sel = AgentSelection {
            agents: Some(vec!["fra-1".into(), "nowhere".into()]),
            ..Default::default()
        };
        assert_eq!(
            pick(&f, sel).unwrap_err(),
            Refusal::Unknown(vec!["nowhere".into()])
        );
    }

    #[test]
    fn an_earlier_checks_agents_are_chosen_without_those_deleted_since() {
        let f = fleet(&[("a", "DE", true), ("b", "FR", true), ("c", "US", true)]);
        let earlier = [f.id(2), Uuid::new_v4()];
        let c = choose(&f, &AgentSelection::default(), Some(&earlier), INTERVAL, 1).unwrap();
        assert_eq!(names(&f, &c.online), vec![f.id(2)]);
        let gone = [Uuid::new_v4()];
        assert_eq!(
            choose(&f, &AgentSelection::default(), Some(&gone), INTERVAL, 1).unwrap_err(),
            Refusal::NoMatch
        );
    }

    #[test]
    fn locations_take_their_own_count_each_and_the_cap_spreads_over_countries() {
        let f = fleet(&[
            ("de-1", "DE", true),
            ("de-2", "DE", true),
            ("de-3", "DE", false),
            ("fr-1", "FR", true),
            ("us-1", "US", true),
        ]);
        let loc = |country: &str, limit: u32| LocationFilter {
            country: Some(country.into()),
            limit: Some(limit),
            ..Default::default()
        };
        let sel = AgentSelection {
            locations: Some(vec![loc("de", 5), loc("US", 1)]),
            ..Default::default()
        };
        let mut c = pick(&f, sel).unwrap().online;
        c.sort();
        assert_eq!(c, vec![0, 1, 4], "online agents only, any letter case");

        let sel = AgentSelection {
            locations: Some(vec![loc("DE", 2), loc("FR", 1), loc("US", 1)]),
            limit: Some(3),
            ..Default::default()
        };
        let c = pick(&f, sel).unwrap().online;
        let mut countries: Vec<usize> = c
            .iter()
            .map(|&i| usize::from(i >= 3) + usize::from(i >= 4))
            .collect();
        countries.sort();
        assert_eq!(countries, vec![0, 1, 2], "three places, not two Germans");

        let sel = AgentSelection {
            locations: Some(vec![loc("JP", 1)]),
            ..Default::default()
        };
        assert_eq!(pick(&f, sel).unwrap_err(), Refusal::NoMatch);
    }

    #[test]
    fn a_limit_on_named_agents_prefers_online_ones() {
        let f = fleet(&[("a", "DE", false), ("b", "FR", true), ("c", "US", true)]);
        let sel = AgentSelection {
            agents: Some(vec!["a".into(), "b".into(), "c".into()]),
            limit: Some(2),
            ..Default::default()
        };
        let c = pick(&f, sel).unwrap();
        let mut online = c.online.clone();
        online.sort();
        assert_eq!(online, vec![1, 2]);
        assert!(c.offline.is_empty() && !c.short);
    }
}

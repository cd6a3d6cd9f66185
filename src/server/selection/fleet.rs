//! The agents indexed for choosing among them: ids and names, whether each is online, the
//! attributes a location filter compares, and each agent's place as small integers for
//! [`Spread`](super::spread::Spread). Built once per read of the agent table (the server's
//! `agents::Directory`), not per check.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::spread::{Interner, Place};
use netcheck_proto::api::agents::{AgentStatus, Location};
use netcheck_proto::api::LocationFilter;

/// What choosing needs to know of one agent.
#[derive(Debug, Clone, Default)]
pub struct Member {
    pub id: Uuid,
    pub name: String,
    pub region: Option<String>,
    pub labels: Vec<String>,
    /// The fixed or measured place (see `agents::location_of`).
    pub location: Option<Location>,
    pub registered_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// One member as indexed: its id, when it was seen, and what a location filter compares,
/// normalised once.
struct Indexed {
    id: Uuid,
    registered_at: Option<DateTime<Utc>>,
    last_seen_at: Option<DateTime<Utc>>,
    /// Upper case.
    country: Option<String>,
    region: Option<String>,
    city: Option<String>,
    asn: Option<u32>,
    labels: Vec<String>,
}

pub struct Fleet {
    /// When the members were read; their status is judged as of then.
    read_at: DateTime<Utc>,
    members: Vec<Indexed>,
    /// Each member's place, apart because [`Spread`](super::spread::Spread) reads them as one
    /// slice.
    places: Vec<Place>,
    by_id: HashMap<Uuid, usize>,
    /// Lower-case names.
    by_name: HashMap<String, usize>,
}

impl Fleet {
    /// Indexes `agents` as read at `read_at` (their positions are the indices used everywhere
    /// here).
    pub fn new(read_at: DateTime<Utc>, agents: impl ExactSizeIterator<Item = Member>) -> Self {
        let (mut countries, mut cities, mut asns) = (
            Interner::default(),
            Interner::default(),
            Interner::default(),
        );
        let mut fleet = Fleet {
            read_at,
            members: Vec::with_capacity(agents.len()),
            places: Vec::with_capacity(agents.len()),
            by_id: HashMap::with_capacity(agents.len()),
            by_name: HashMap::with_capacity(agents.len()),
        };
        for (i, m) in agents.enumerate() {
            let loc = m.location;
            let country = loc
                .as_ref()
                .and_then(|l| l.country_code.as_deref())
                .map(str::to_ascii_uppercase);
            let city = loc.as_ref().and_then(|l| l.city.clone());
            let asn = loc.as_ref().and_then(|l| l.asn);
            let city_key = city
                .as_ref()
                .map(|c| format!("{}/{}", country.as_deref().unwrap_or(""), c.to_lowercase()));
            fleet.places.push(Place {
                country: countries.id(country.as_deref()),
                city: cities.id(city_key.as_deref()),
                asn: asns.id(asn.map(|a| a.to_string()).as_deref()),
                key: m.id.as_u128() as u64,
            });
            fleet.members.push(Indexed {
                id: m.id,
                registered_at: m.registered_at,
                last_seen_at: m.last_seen_at,
                country,
                region: m.region,
                city,
                asn,
                labels: m.labels,
            });
            fleet.by_id.insert(m.id, i);
            fleet.by_name.insert(m.name.to_lowercase(), i);
        }
        fleet
    }

    pub fn places(&self) -> &[Place] {
        &self.places
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn read_at(&self) -> DateTime<Utc> {
        self.read_at
    }

    /// The id of agent `i`.
    pub fn id(&self, i: usize) -> Uuid {
        self.members[i].id
    }

    /// Whether agent `i` was online when the fleet was read.
    pub fn online(&self, i: usize, interval_secs: u64) -> bool {
        let m = &self.members[i];
        AgentStatus::of(m.registered_at, m.last_seen_at, interval_secs, self.read_at)
            == AgentStatus::Online
    }

    /// The agent an id or a name (any letter case) refers to.
    pub fn find(&self, id_or_name: &str) -> Option<usize> {
        match id_or_name.parse::<Uuid>() {
            Ok(id) => self.by_id.get(&id).copied(),
            Err(_) => self.by_name.get(&id_or_name.to_lowercase()).copied(),
        }
    }

    pub fn by_id(&self, id: Uuid) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// Whether agent `i` has every attribute the filter gives.
    pub fn matches(&self, i: usize, f: &LocationFilter) -> bool {
        let a = &self.members[i];
        let same = |want: &Option<String>, have: &Option<String>| match want {
            None => true,
            Some(w) => have
                .as_ref()
                .is_some_and(|h| h.eq_ignore_ascii_case(w.trim())),
        };
        same(&f.country, &a.country)
            && same(&f.region, &a.region)
            && same(&f.city, &a.city)
            && f.asn.is_none_or(|want| a.asn == Some(want))
            && f.label
                .as_ref()
                .is_none_or(|l| a.labels.iter().any(|x| x == l))
    }
}

//! The agent table indexed for choosing agents: ids and names, the attributes a location
//! filter compares, and each agent's place as small integers for [`Spread`]. Built once per
//! read of the table (see [`super::Directory`]), not per check.

use std::collections::HashMap;

use uuid::Uuid;

use super::spread::{Interner, Place};
use super::Model;
use crate::proto::api::agents::Location;
use crate::proto::api::LocationFilter;

/// What a location filter compares, normalised once.
struct Attrs {
    /// Upper case.
    country: Option<String>,
    region: Option<String>,
    city: Option<String>,
    asn: Option<u32>,
    labels: Vec<String>,
}

pub struct Fleet {
    attrs: Vec<Attrs>,
    places: Vec<Place>,
    by_id: HashMap<Uuid, usize>,
    /// Lower-case names.
    by_name: HashMap<String, usize>,
}

impl Fleet {
    /// Indexes `agents` (positions in the slice are the indices used everywhere here).
    pub fn new(agents: &[Model]) -> Self {
        let (mut countries, mut cities, mut asns) = (
            Interner::default(),
            Interner::default(),
            Interner::default(),
        );
        let mut fleet = Fleet {
            attrs: Vec::with_capacity(agents.len()),
            places: Vec::with_capacity(agents.len()),
            by_id: HashMap::with_capacity(agents.len()),
            by_name: HashMap::with_capacity(agents.len()),
        };
        for (i, m) in agents.iter().enumerate() {
            let loc = Location::of(m);
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
            fleet.attrs.push(Attrs {
                country,
                region: m.region.clone(),
                city,
                asn,
                labels: serde_json::from_value(m.labels.clone()).unwrap_or_default(),
            });
            fleet.by_id.insert(m.id, i);
            fleet.by_name.insert(m.name.to_lowercase(), i);
        }
        fleet
    }

    pub fn places(&self) -> &[Place] {
        &self.places
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
        let a = &self.attrs[i];
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

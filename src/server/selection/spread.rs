//! Picking agents among equals so that a check sees as many places as it can: different
//! countries first, then different cities and networks (ASNs). Pure functions over small
//! integer ids, so the spreading can be tested on many random fleets.

use std::collections::HashMap;

/// Where an agent is, as small integers (`u32::MAX`: unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub country: u32,
    /// Unique across countries (a city id belongs to one country).
    pub city: u32,
    pub asn: u32,
    /// Stable per agent (e.g. bits of its id); mixed with the seed to rotate among equals.
    pub key: u64,
}

/// Interns attribute values into the small ids a [`Place`] holds.
#[derive(Default)]
pub struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    pub fn id(&mut self, value: Option<&str>) -> u32 {
        let Some(v) = value else { return u32::MAX };
        let next = self.ids.len() as u32;
        *self.ids.entry(v.to_string()).or_insert(next)
    }
}

/// How often each id has been picked; ids are dense (interned), so a vector holds them.
#[derive(Default)]
struct Counts(Vec<u32>);

impl Counts {
    fn get(&self, id: u32) -> u32 {
        // Unknown (`u32::MAX`) sits at index 0; known ids shift by one.
        self.0
            .get(id.wrapping_add(1) as usize)
            .copied()
            .unwrap_or(0)
    }

    fn add(&mut self, id: u32) {
        let i = id.wrapping_add(1) as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, 0);
        }
        self.0[i] += 1;
    }
}

/// Counts of what has been picked so far, shared by the entries of one selection so that a
/// later entry also prefers places an earlier one did not take.
#[derive(Default)]
pub struct Spread {
    countries: Counts,
    cities: Counts,
    asns: Counts,
}

/// Agents with the same (country, city, network), as (rank, index), best rank last.
type Cell = ((u32, u32, u32), Vec<(u64, usize)>);

/// SplitMix64: a cheap, well-mixed hash of the seed and the agent's key.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Spread {
    /// Picks up to `k` of `candidates` (indices into `places`), each step taking the agent
    /// whose country has been picked least, then its city, then its network; ties go to a
    /// rotation given by `seed`. Returns the picked indices in pick order.
    pub fn pick(
        &mut self,
        places: &[Place],
        candidates: &[usize],
        k: usize,
        seed: u64,
    ) -> Vec<usize> {
        // Agents in the same country, city and network are interchangeable but for their
        // rank: group them into cells (each cell's agents by rank, best last), so each step
        // compares cells, not agents. Real fleets have far fewer cells than agents.
        let mut cells: HashMap<(u32, u32, u32), Vec<(u64, usize)>> = HashMap::new();
        for &i in candidates {
            let p = &places[i];
            cells
                .entry((p.country, p.city, p.asn))
                .or_default()
                .push((mix(p.key ^ seed), i));
        }
        let mut cells: Vec<Cell> = cells
            .into_iter()
            .map(|(place, mut agents)| {
                agents.sort_unstable_by(|a, b| b.cmp(a));
                (place, agents)
            })
            .collect();
        let mut picked = Vec::with_capacity(k.min(candidates.len()));
        while picked.len() < k && !cells.is_empty() {
            let score = |((country, city, asn), agents): &Cell| {
                (
                    self.countries.get(*country),
                    self.cities.get(*city),
                    self.asns.get(*asn),
                    agents.last().map(|a| a.0),
                )
            };
            let (best, _) = cells
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| score(c))
                .expect("cells is not empty");
            let ((country, city, asn), agents) = &mut cells[best];
            let (_, i) = agents.pop().expect("cells are never empty");
            self.countries.add(*country);
            self.cities.add(*city);
            self.asns.add(*asn);
            if agents.is_empty() {
                cells.swap_remove(best);
            }
            picked.push(i);
        }
        picked
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn fleet() -> impl Strategy<Value = Vec<Place>> {
        // Few countries, cities and networks, so that equal places are common.
        prop::collection::vec((0u32..6, 0u32..4, 0u32..5, any::<u64>()), 0..120).prop_map(|v| {
            v.into_iter()
                .map(|(country, city, asn, key)| Place {
                    country,
                    city: country * 10 + city,
                    asn,
                    key,
                })
                .collect()
        })
    }

    fn distinct(places: &[Place], picked: &[usize], f: impl Fn(&Place) -> u32) -> usize {
        picked
            .iter()
            .map(|&i| f(&places[i]))
            .collect::<HashSet<_>>()
            .len()
    }

    proptest! {
        #[test]
        fn picks_k_distinct_candidates(places in fleet(), k in 0usize..150, seed: u64) {
            let all: Vec<usize> = (0..places.len()).collect();
            let picked = Spread::default().pick(&places, &all, k, seed);
            prop_assert_eq!(picked.len(), k.min(places.len()));
            prop_assert_eq!(picked.iter().collect::<HashSet<_>>().len(), picked.len());
        }

        #[test]
        fn covers_as_many_countries_as_it_can(places in fleet(), k in 1usize..20, seed: u64) {
            let all: Vec<usize> = (0..places.len()).collect();
            let picked = Spread::default().pick(&places, &all, k, seed);
            let countries = distinct(&places, &all, |p| p.country);
            prop_assert_eq!(distinct(&places, &picked, |p| p.country), countries.min(k));
        }

        #[test]
        fn within_one_country_covers_as_many_cities_as_it_can(
            places in fleet(), k in 1usize..10, seed: u64
        ) {
            // Only the agents of country 0: cities then decide.
            let de: Vec<usize> = (0..places.len()).filter(|&i| places[i].country == 0).collect();
            let picked = Spread::default().pick(&places, &de, k, seed);
            let cities = distinct(&places, &de, |p| p.city);
            prop_assert_eq!(distinct(&places, &picked, |p| p.city), cities.min(k));
        }

        #[test]
        fn countries_stay_balanced(places in fleet(), k in 1usize..120, seed: u64) {
            // No country gets a second agent while another that has more left got fewer.
            let all: Vec<usize> = (0..places.len()).collect();
            let picked = Spread::default().pick(&places, &all, k, seed);
            let mut have: HashMap<u32, usize> = HashMap::new();
            let mut total: HashMap<u32, usize> = HashMap::new();
            for &i in &picked { *have.entry(places[i].country).or_default() += 1; }
            for p in &places { *total.entry(p.country).or_default() += 1; }
            for (c, n) in &have {
                for (d, m) in &total {
                    let got = have.get(d).copied().unwrap_or(0);
                    // `d` had agents to spare but ended more than one behind `c`.
                    prop_assert!(!(got < *m && got + 1 < *n), "country {c}: {n}, country {d}: {got} of {m}");
                }
            }
        }

        #[test]
        fn the_same_seed_picks_the_same(places in fleet(), k in 1usize..10, seed: u64) {
            let all: Vec<usize> = (0..places.len()).collect();
            prop_assert_eq!(
                Spread::default().pick(&places, &all, k, seed),
                Spread::default().pick(&places, &all, k, seed)
            );
        }
    }

    #[test]
    fn rotates_among_equals() {
        // Ten agents in one place: different seeds pick different ones.
        let places: Vec<Place> = (0..10)
            .map(|key| Place {
                country: 0,
                city: 0,
                asn: 0,
                key,
            })
            .collect();
        let all: Vec<usize> = (0..10).collect();
        let firsts: HashSet<usize> = (0..50u64)
            .map(|seed| Spread::default().pick(&places, &all, 1, seed)[0])
            .collect();
        assert!(firsts.len() > 5, "picked only {firsts:?}");
    }

    #[test]
    fn a_later_entry_prefers_places_an_earlier_one_left() {
        // Two DE agents in Berlin and Munich; the first entry took Berlin, so the second
        // (asking for any German agent) takes Munich even though both are candidates.
        let places = [
            Place {
                country: 0,
                city: 1,
                asn: 7,
                key: 1,
            },
            Place {
                country: 0,
                city: 2,
                asn: 8,
                key: 2,
            },
        ];
        let mut spread = Spread::default();
        assert_eq!(spread.pick(&places, &[0], 1, 9), vec![0]);
        assert_eq!(spread.pick(&places, &[1, 0], 1, 9), vec![1]);
    }
}

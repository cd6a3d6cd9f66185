//! Where an address is and which network announces it: the offline DB-IP Lite city database
//! (CC BY 4.0, https://db-ip.com) and the ip-location-db ASN tables. Places agents on the map,
//! answers host lookups, and gives trace hops their network and place.

pub mod asn;

use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::config::GeoIpSettings;
use crate::policy::special_range;
use asn::{AsnTable, Network};
use netcheck_proto::api::lookup::Geo;
use netcheck_proto::result::ResultData;

/// Record layout of the ip-location-db DB-IP city MMDB files.
#[derive(Deserialize)]
struct Record {
    country_code: Option<String>,
    city: Option<String>,
    latitude: Option<f32>,
    longitude: Option<f32>,
}

/// The databases store single-precision coordinates; keep the digits they mean.
fn coordinate(v: f32) -> f64 {
    (v as f64 * 1e5).round() / 1e5
}

struct Databases {
    v4: Option<maxminddb::Reader<Vec<u8>>>,
    v6: Option<maxminddb::Reader<Vec<u8>>>,
    asn: Option<AsnTable>,
}

/// The GeoIP databases (about 130 MB) and the ASN table (about 11 MB), loaded on first use off
/// the async executor.
pub struct GeoIp {
    settings: GeoIpSettings,
    dbs: OnceCell<Arc<Databases>>,
}

impl GeoIp {
    pub fn new(settings: GeoIpSettings) -> Self {
        Self {
            settings,
            dbs: OnceCell::new(),
        }
    }

    async fn databases(&self) -> Arc<Databases> {
        self.dbs
            .get_or_init(|| async {
                let s = self.settings.clone();
                tokio::task::spawn_blocking(move || {
                    let open = |p: &std::path::Path| match maxminddb::Reader::open_readfile(p) {
                        Ok(r) => Some(r),
                        Err(e) => {
                            tracing::warn!(path = %p.display(), error = %e, "GeoIP database unavailable; run scripts/geoip.sh");
                            None
                        }
                    };
                    let asn = match AsnTable::open(&s.asn_ipv4_db, &s.asn_ipv6_db) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            tracing::warn!(error = %e, "ASN data unavailable; run scripts/geoip.sh");
                            None
                        }
                    };
                    Arc::new(Databases { v4: open(&s.ipv4_db), v6: open(&s.ipv6_db), asn })
                })
                .await
                .expect("loading GeoIP databases")
            })
            .await
            .clone()
    }

    /// Location of a public address; `None` for reserved ranges and unknown addresses.
    pub async fn locate(&self, ip: IpAddr) -> Option<Geo> {
        if special_range(ip).is_some() {
            return None;
        }
        let dbs = self.databases().await;
        let reader = match ip {
            IpAddr::V4(_) => dbs.v4.as_ref()?,
            IpAddr::V6(_) => dbs.v6.as_ref()?,
        };
        let rec: Record = reader.lookup(ip).ok()?.decode().ok()??;
        let network = dbs.asn.as_ref().and_then(|t| t.lookup(ip));
        let country_code = rec.country_code.filter(|c| !c.is_empty());
        Some(Geo {
            country: country_code
                .as_deref()
                .and_then(|c| isocountry::CountryCode::for_alpha2(c).ok())
                .map(|c| c.name().to_string()),
            country_code,
            city: rec.city.filter(|c| !c.is_empty()),
            lat: coordinate(rec.latitude?),
            lon: coordinate(rec.longitude?),
            asn: network.as_ref().map(|n| n.asn),
            network: network.map(|n| n.name),
        })
    }

    /// The network announcing a public address; `None` for reserved ranges and unknown ones.
    pub async fn network(&self, ip: IpAddr) -> Option<Network> {
        if special_range(ip).is_some() {
            return None;
        }
        self.databases().await.asn.as_ref()?.lookup(ip)
    }

    /// Gives each hop of a trace its network (ASN) and place, from the server's tables: agents
    /// do not carry those databases. Reserved addresses (private routers) stay without.
    pub async fn locate_hops(&self, data: &mut ResultData) {
        use netcheck_proto::trace::HopPlace;
        let place = |g: &Geo| HopPlace {
            country_code: g.country_code.clone(),
            city: g.city.clone(),
            lat: Some(g.lat),
            lon: Some(g.lon),
        };
        match data {
            ResultData::Traceroute(r) => {
                for h in &mut r.hops {
                    if let Some(g) = self.locate_str(h.address.as_deref()).await {
                        (h.asn, h.network, h.geo) = (g.asn, g.network.clone(), Some(place(&g)));
                    }
                }
            }
            ResultData::Mtr(r) => {
                for h in &mut r.hops {
                    if let Some(g) = self.locate_str(h.address.as_deref()).await {
                        (h.asn, h.network, h.geo) = (g.asn, g.network.clone(), Some(place(&g)));
                    }
                }
            }
            _ => {}
        }
    }

    async fn locate_str(&self, address: Option<&str>) -> Option<Geo> {
        self.locate(address?.parse().ok()?).await
    }
}

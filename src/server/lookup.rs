//! Host lookup: a host's addresses (A and AAAA) with their location from the offline DB-IP
//! Lite city database (CC BY 4.0, https://db-ip.com). The same lookup places agents on the map.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use hickory_resolver::TokioResolver;
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::asn::{AsnTable, Network};
use super::auth::AuthUser;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::AppState;
use crate::config::GeoIpSettings;
use crate::policy::{parse_ip_loose, special_range};
use crate::proto::api::lookup::{Address, Geo, Lookup};
use crate::server::error::ErrorCode;

pub const ATTRIBUTION: &str = "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0; \
     ASN data by ip-location-db (DB-IP, RouteViews, RIRs), CC BY 4.0";

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
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/lookup/{host}", web::get().to(lookup));
}

/// Resolves a host name to its addresses (both families).
pub async fn resolve(resolver: &TokioResolver, host: &str) -> Result<Vec<IpAddr>, String> {
    let host = host.trim().trim_end_matches('.');
    if let Some(ip) = parse_ip_loose(host) {
        return Ok(vec![ip]);
    }
    let found = resolver
        .lookup_ip(host)
        .await
        .map_err(|e| crate::names::resolve_failure(host, &e))?;
    let mut ips: Vec<IpAddr> = found.iter().collect();
    ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    ips.dedup();
    Ok(ips)
}

#[utoipa::path(operation_id = "lookup", get, path = "/api/v1/lookup/{host}", tag = "lookup",
    responses((status = 200, body = Lookup), (status = 404, body = ErrorBody, description = "the name does not resolve"),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn lookup(
    state: web::Data<AppState>,
    _user: AuthUser,
    host: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let host = host.into_inner();
    if host.is_empty()
        || host.len() > 253
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(ApiError::invalid_field(
            "host",
            "host must be a host name or an IP address",
        ));
    }
    if let Some(ip) = parse_ip_loose(&host) {
        state
            .policy
            .check(ip)
            .map_err(|r| ApiError::forbidden_target("host", r.to_string()))?;
    }
    let ips = resolve(&state.resolver, &host).await.map_err(|e| {
        ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            ErrorCode::NotResolvable,
            e,
        )
    })?;
    // The server's resolver may know internal names: their addresses are not shown.
    let (ips, refused): (Vec<IpAddr>, Vec<IpAddr>) = ips
        .into_iter()
        .partition(|ip| state.policy.check(*ip).is_ok());
    let mut addresses = Vec::with_capacity(ips.len());
    for ip in ips {
        addresses.push(Address {
            ip: ip.to_string(),
            version: if ip.is_ipv4() { 4 } else { 6 },
            geo: state.geoip.locate(ip).await,
        });
    }
    Ok(HttpResponse::Ok().json(Lookup {
        host,
        addresses,
        withheld: refused.len() as u32,
        attribution: ATTRIBUTION.into(),
    }))
}

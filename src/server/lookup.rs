//! Host lookup: a host's addresses (A and AAAA) with their location and network
//! ([`super::geo`]).

use std::net::IpAddr;

use actix_web::{web, HttpResponse};
use hickory_resolver::TokioResolver;

use super::auth::AuthUser;
use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::policy::parse_ip_loose;
use netcheck_proto::api::lookup::{Address, Lookup};
use netcheck_proto::api::ErrorBody;
use netcheck_proto::api::ErrorCode;

pub const ATTRIBUTION: &str = "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0; \
     ASN data by ip-location-db (DB-IP, RouteViews, RIRs), CC BY 4.0";

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

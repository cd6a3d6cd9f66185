//! Share links: a check shown without login at `/s/{token}` until the link expires or is
//! withdrawn. Only a SHA-256 of each token is stored; the shared view names agents by name,
//! region, country and city only (no ids, host names or addresses).

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::entity::prelude::*;
use sha2::{Digest, Sha256};

use super::model::check_view;
use crate::server::auth::AuthUser;
use crate::server::db::checks::result;
use crate::server::db::shares;
use crate::server::error::{ApiError, ApiResult};
use crate::server::AppState;
use netcheck_proto::api::checks::{CheckResultView, CheckView};
use netcheck_proto::api::share::{
    ShareLink, ShareRequest, SharedAgent, SharedCheck, SharedPlace, SharedResult,
};
use netcheck_proto::api::ErrorBody;
use netcheck_proto::check::CheckSpec;
use netcheck_proto::result::ResultData;

/// Longest a link may live, in days.
pub const MAX_SHARE_DAYS: i64 = 365;

/// Stands for an address in a special-purpose range on a shared page.
const PRIVATE: &str = "(private address)";

fn is_private(ip: std::net::IpAddr) -> bool {
    crate::policy::special_range(ip).is_some()
}

/// `text` with every address in a special-purpose range (the agent's own network, say)
/// replaced by [`PRIVATE`].
fn redact_addresses(text: &str) -> String {
    static CANDIDATE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*").expect("a valid pattern")
    });
    CANDIDATE
        .replace_all(text, |c: &regex::Captures| {
            let token = &c[0];
            let bare = token.trim_end_matches('.');
            let rest = &token[bare.len()..];
            if bare.parse::<std::net::IpAddr>().is_ok_and(is_private) {
                format!("{PRIVATE}{rest}")
            } else if let Ok(sa) = bare.parse::<std::net::SocketAddr>() {
                if is_private(sa.ip()) {
                    format!("{PRIVATE}:{}{rest}", sa.port())
                } else {
                    token.to_string()
                }
            } else {
                token.to_string()
            }
        })
        .into_owned()
}

fn shared_result(r: CheckResultView, own_resolver: bool) -> SharedResult {
    let mut data = r.data;
    // A trace's first routers are the agent's own network.
    let hide = |address: &mut Option<String>| {
        if address
            .as_deref()
            .and_then(|a| a.parse::<std::net::IpAddr>().ok())
            .is_some_and(is_private)
        {
            *address = Some(PRIVATE.into());
        }
    };
    match &mut data {
        // The agent's system resolver is an address in the agent's network.
        Some(ResultData::Dns(d)) if !own_resolver => d.resolver = None,
        Some(ResultData::Traceroute(t)) => t.hops.iter_mut().for_each(|h| hide(&mut h.address)),
        Some(ResultData::Mtr(t)) => t.hops.iter_mut().for_each(|h| hide(&mut h.address)),
        // Cookies are a server's to give.
        Some(ResultData::Http(h)) => {
            h.headers.remove("set-cookie");
        }
        _ => {}
    }
    let error = r.error.map(|mut e| {
        e.message = redact_addresses(&e.message);
        e
    });
    SharedResult {
        agent: SharedAgent {
            name: r.agent.name,
            region: r.agent.region,
            location: r.agent.location.map(|l| SharedPlace {
                country_code: l.country_code,
                city: l.city,
            }),
        },
        status: r.status,
        error,
        started_at: r.started_at,
        duration_ms: r.duration_ms,
        data,
    }
}

/// What a share link shows of `view`: HTTP header values hidden, the agents' own resolvers
/// not named.
fn shared_check(view: CheckView, expires_at: DateTime<Utc>) -> SharedCheck {
    let mut spec = view.spec;
    if let CheckSpec::Http(o) = &mut spec {
        for v in o.headers.values_mut() {
            *v = "(hidden)".into();
        }
    }
    let own_resolver = matches!(&spec, CheckSpec::Dns(o) if o.resolver.is_some());
    SharedCheck {
        id: view.id,
        spec,
        target: view.target,
        status: view.status,
        created_at: view.created_at,
        finished_at: view.finished_at,
        results: view
            .results
            .into_iter()
            .map(|r| shared_result(r, own_resolver))
            .collect(),
        expires_at,
    }
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[utoipa::path(operation_id = "share_check", post, path = "/api/v1/checks/{id}/share", tag = "checks",
    request_body(content = Option<ShareRequest>, description = "optional; an empty body means 30 days"),
    description = "A link that shows the check without login. A new link replaces the check's previous one.",
    responses((status = 201, body = ShareLink), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn share(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let request: ShareRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ShareRequest::default()
    } else {
        crate::server::extract::decode(&body)?
    };
    let days = request.expires_in_days.unwrap_or(30);
    if !(1..=MAX_SHARE_DAYS).contains(&days) {
        return Err(ApiError::invalid_field(
            "expires_in_days",
            format!("expires_in_days must be between 1 and {MAX_SHARE_DAYS}"),
        ));
    }
    let c = super::load_visible(&state, &user.0, *id).await?;
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let now = Utc::now();
    let expires_at = now + chrono::Duration::days(days);
    shares::save(&state.db, c.id, hash(&token), user.0.id, now, expires_at).await?;
    tracing::info!(check_id = %c.id, days, "check shared");
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(ShareLink {
            url: format!(
                "{}/s/{token}",
                crate::server::extract::public_base(&state.settings, &req)
            ),
            token,
            expires_at,
        }))
}

#[utoipa::path(operation_id = "unshare_check", delete, path = "/api/v1/checks/{id}/share", tag = "checks",
    responses((status = 204, description = "The link no longer works"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn unshare(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let c = super::load_visible(&state, &user.0, *id).await?;
    if !shares::remove(&state.db, c.id).await? {
        return Err(ApiError::not_found("share link"));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(operation_id = "get_shared_check", get, path = "/api/v1/shared/{token}", tag = "checks",
    description = "No login needed. Unknown, withdrawn and expired links all answer 404.",
    responses((status = 200, body = SharedCheck), (status = 404, body = ErrorBody)), security(()))]
pub async fn shared(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let not_found = || ApiError::not_found("shared check");
    if token.len() > 128 {
        return Err(not_found());
    }
    let (check_id, expires_at) = shares::live(&state.db, hash(&token))
        .await?
        .ok_or_else(not_found)?;
    let c = crate::server::db::checks::check::Entity::find_by_id(check_id)
        .one(&state.db)
        .await?
        .ok_or_else(not_found)?;
    let results = result::Entity::find()
        .filter(result::Column::CheckId.eq(c.id))
        .all(&state.db)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Robots-Tag", "noindex"))
        .json(shared_check(check_view(c, results)?, expires_at)))
}

#[cfg(test)]
mod tests {
    use super::redact_addresses;

    #[test]
    fn special_range_addresses_are_redacted_and_public_ones_kept() {
        assert_eq!(
            redact_addresses("no answer from 10.0.0.53:53 within 5000 ms"),
            "no answer from (private address):53 within 5000 ms"
        );
        assert_eq!(
            redact_addresses("8.8.8.8 refused; fd00::1 and 192.168.1.1."),
            "8.8.8.8 refused; (private address) and (private address)."
        );
        assert_eq!(redact_addresses("took 12.5 ms"), "took 12.5 ms");
    }
}

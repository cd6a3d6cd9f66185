//! Webhooks: events are written to an outbox in the same transaction as the state change, and
//! a delivery loop POSTs them, signed with the monitor's secret, in order per monitor and URL,
//! retrying with backoff for 24 hours. Several server instances may deliver at once: a row is
//! locked while it is sent.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chrono::Utc;
use hmac::{KeyInit, Mac};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, Statement, TransactionTrait};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::policy::{parse_ip_loose, Policy};
use crate::proto::api::monitors::WebhookEvent;
use crate::server::error::ApiError;
use crate::server::AppState;

/// Retries stop this long after the event was made.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Longest wait between two attempts.
const MAX_BACKOFF_SECS: f64 = 600.0;
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// `sha256=<hex>` of the HMAC-SHA256 of `body` keyed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The policy webhook addresses must pass: the target policy plus `notify.allowed_networks`.
pub fn policy(state: &AppState) -> Policy {
    let mut allowed = state.settings.checks.allowed_networks.clone();
    allowed.extend(state.settings.notify.allowed_networks.iter().cloned());
    Policy::new(allowed)
}

/// Resolves the URL's host and checks every address against the policy; the addresses.
pub async fn resolve_allowed(state: &AppState, url: &url::Url) -> Result<Vec<SocketAddr>, String> {
    let host = url.host_str().ok_or("the URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(443);
    let ips: Vec<IpAddr> = match parse_ip_loose(host) {
        Some(ip) => vec![ip],
        None => crate::server::lookup::resolve(&state.resolver, host).await?,
    };
    if ips.is_empty() {
        return Err(format!("{host} has no addresses"));
    }
    let policy = policy(state);
    for ip in &ips {
        policy.check(*ip).map_err(|r| r.to_string())?;
    }
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// Checks a webhook URL when a monitor is saved: http(s), no credentials, and an address the
/// policy allows. (Delivery checks the addresses again: DNS may change.)
pub async fn check_url(state: &AppState, field: &str, raw: &str) -> Result<(), ApiError> {
    let bad = |msg: String| ApiError::invalid_field(field, msg);
    let url = url::Url::parse(raw).map_err(|e| bad(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("webhooks are http:// or https:// URLs".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials in the URL are not allowed".into()));
    }
    if raw.len() > 2048 {
        return Err(bad("the URL is longer than 2048 characters".into()));
    }
    resolve_allowed(state, &url).await.map_err(bad)?;
    Ok(())
}

/// Writes `event` to the outbox once per webhook of the monitor, inside `txn`.
pub async fn enqueue(
    txn: &DatabaseTransaction,
    monitor_id: Uuid,
    urls: &[String],
    event: &WebhookEvent,
) -> Result<usize, DbErr> {
    let body = serde_json::to_string(event).expect("event serialises");
    for url in urls {
        txn.execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "INSERT INTO webhook_outbox (monitor_id, url, event, body, created_at, next_attempt_at)
             VALUES ($1, $2, $3, $4, now(), now())",
            [
                monitor_id.into(),
                url.clone().into(),
                event.event.clone().into(),
                body.clone().into(),
            ],
        ))
        .await?;
    }
    Ok(urls.len())
}

/// One attempt at one delivery: `Ok(status)` for any HTTP answer, `Err` for no answer.
async fn send(state: &AppState, url: &str, secret: &str, body: &str) -> Result<u16, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let addrs = resolve_allowed(state, &parsed).await?;
    let host = parsed.host_str().unwrap_or_default().to_string();
    // Connect to the addresses just checked, not to whatever the name resolves to next.
    let client = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .resolve_to_addrs(&host, &addrs)
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .post(url)
        .header("Content-Type", "application/json")
        .header(
            "User-Agent",
            concat!("netcheck/", env!("CARGO_PKG_VERSION")),
        )
        .header("X-Netcheck-Signature", signature(secret, body.as_bytes()))
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    Ok(resp.status().as_u16())
}

/// Sends up to 20 due deliveries (the oldest undelivered one of each monitor and URL only, so
/// events arrive in order); returns how many were attempted.
pub async fn deliver_due(state: &AppState) -> Result<usize, DbErr> {
    let txn = state.db.begin().await?;
    let backend = txn.get_database_backend();
    let rows = txn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT o.id, o.url, o.body, o.attempts, o.created_at, m.webhook_secret
             FROM webhook_outbox o JOIN monitors m ON m.id = o.monitor_id
             WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL AND o.next_attempt_at <= now()
               AND NOT EXISTS (SELECT 1 FROM webhook_outbox p
                               WHERE p.monitor_id = o.monitor_id AND p.url = o.url AND p.id < o.id
                                 AND p.delivered_at IS NULL AND p.gave_up_at IS NULL)
             ORDER BY o.id LIMIT 20
             FOR UPDATE OF o SKIP LOCKED",
        ))
        .await?;
    let attempted = rows.len();
    for row in rows {
        let id: i64 = row.try_get("", "id")?;
        let url: String = row.try_get("", "url")?;
        let body: String = row.try_get("", "body")?;
        let attempts: i32 = row.try_get("", "attempts")?;
        let created_at: chrono::DateTime<Utc> = row.try_get("", "created_at")?;
        let secret: String = row.try_get("", "webhook_secret")?;
        let outcome = send(state, &url, &secret, &body).await;
        let (status, error) = match &outcome {
            Ok(code) => (
                Some(*code as i32),
                (!(200..300).contains(code)).then(|| format!("HTTP {code}")),
            ),
            Err(e) => (None, Some(e.clone())),
        };
        if error.is_none() {
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE webhook_outbox SET attempts = attempts + 1, last_status = $2,
                     last_error = NULL, delivered_at = now() WHERE id = $1",
                [id.into(), status.into()],
            ))
            .await?;
            continue;
        }
        let first = state.settings.notify.retry_first_ms as f64 / 1000.0;
        let backoff = (first * f64::from(1u32 << attempts.clamp(0, 12))).min(MAX_BACKOFF_SECS);
        let give_up = (Utc::now() - created_at).to_std().unwrap_or_default() >= GIVE_UP_AFTER;
        tracing::warn!(delivery = id, attempts = attempts + 1, error = ?error, give_up, "webhook delivery failed");
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE webhook_outbox SET attempts = attempts + 1, last_status = $2, last_error = $3,
                 next_attempt_at = now() + make_interval(secs => $4),
                 gave_up_at = CASE WHEN $5 THEN now() END
             WHERE id = $1",
            [
                id.into(),
                status.into(),
                error.into(),
                backoff.into(),
                give_up.into(),
            ],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(attempted)
}

/// Runs [`deliver_due`] every second (at once again while it finds work) until `shutdown`.
pub fn spawn_deliverer(state: actix_web::web::Data<AppState>, shutdown: CancellationToken) {
    crate::server::periodic::every(
        Duration::from_secs(1),
        shutdown,
        "webhook delivery round",
        move || {
            let state = state.clone();
            async move { Ok(deliver_due(&state).await? > 0) }
        },
    );
}

//! Notification channels: a monitor's `notify` entries, checked when saved and delivered from
//! the outbox (`monitors::webhooks`). Generic webhooks get the signed `WebhookEvent`; every
//! other channel gets its provider's own message, composed in `message` and shaped in
//! `providers`. URLs users give pass the target policy on saving and again on every attempt;
//! the PagerDuty, Telegram and SMTP endpoints are the operator's settings.

mod email;
pub mod message;
pub mod providers;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hmac::{KeyInit, Mac};

use crate::policy::{parse_ip_loose, Policy};
use crate::server::error::{ApiError, ApiResult};
use crate::server::AppState;
use message::Message;
use netcheck_proto::api::monitors::{Notify, WebhookEvent};

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a receiver may take to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Channels one monitor may have.
pub const MAX_CHANNELS: usize = 10;

/// The policy user-given URLs must pass: the target policy plus `notify.allowed_networks`.
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

/// Checks a URL a user gives: http(s), no credentials, at most 2048 characters, and an address
/// the policy allows. (Delivery checks the addresses again: DNS may change.)
pub async fn check_url(state: &AppState, field: &str, raw: &str) -> ApiResult<()> {
    let bad = |msg: String| ApiError::invalid_field(field, msg);
    let url = url::Url::parse(raw).map_err(|e| bad(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the URL must be http:// or https://".into()));
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

/// Checks the monitor's channels when it is saved.
pub async fn validate(state: &AppState, notify: &[Notify]) -> ApiResult<()> {
    if notify.len() > MAX_CHANNELS {
        return Err(ApiError::invalid_field(
            "notify",
            format!("at most {MAX_CHANNELS} notification channels"),
        ));
    }
    for (i, n) in notify.iter().enumerate() {
        let field = format!("notify[{i}].{}", n.kind());
        let bad = |msg: &str| Err(ApiError::invalid_field(&field, msg));
        match n {
            Notify::Webhook(u) | Notify::Slack(u) | Notify::Discord(u) | Notify::Teams(u) => {
                check_url(state, &field, u).await?
            }
            Notify::Ntfy(u) => {
                check_url(state, &field, u).await?;
                let parsed = url::Url::parse(u)
                    .map_err(|e| ApiError::invalid_field(&field, e.to_string()))?;
                providers::ntfy_topic(&parsed).map_err(|e| ApiError::invalid_field(&field, e))?;
            }
            Notify::Pagerduty(p) => {
                let k = &p.routing_key;
                if k.len() != 32 || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return bad(
                        "routing_key is an Events API v2 integration key: 32 letters and digits",
                    );
                }
            }
            Notify::Email(e) => {
                if state.settings.notify.smtp.is_none() {
                    return bad("this server sends no e-mail (notify.smtp is not set)");
                }
                if e.to.is_empty() || e.to.len() > 10 {
                    return bad("to takes 1 to 10 addresses");
                }
                for a in &e.to {
                    if a.parse::<lettre::Address>().is_err() {
                        return Err(ApiError::invalid_field(
                            &field,
                            format!("{a:?} is not an e-mail address"),
                        ));
                    }
                }
            }
            Notify::Telegram(t) => {
                let token_ok = t.bot_token.split_once(':').is_some_and(|(id, rest)| {
                    !id.is_empty()
                        && id.chars().all(|c| c.is_ascii_digit())
                        && !rest.is_empty()
                        && rest
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                });
                if !token_ok {
                    return bad("bot_token is a bot's token from @BotFather (<digits>:<letters>)");
                }
                let chat_ok = t
                    .chat_id
                    .strip_prefix('-')
                    .unwrap_or(&t.chat_id)
                    .parse::<i64>()
                    .is_ok()
                    || (t.chat_id.starts_with('@') && t.chat_id.len() > 1 && t.chat_id.len() <= 64);
                if !chat_ok {
                    return bad("chat_id is a chat's number or @channelname");
                }
            }
        }
    }
    Ok(())
}

/// One attempt at one delivery: `Ok(status)` for any answer (HTTP status; the SMTP reply code
/// for e-mail), `Err` for none. `body` is the stored `WebhookEvent`.
pub async fn deliver(
    state: &AppState,
    channel: &Notify,
    body: &str,
    secret: &str,
) -> Result<u16, String> {
    if let Notify::Webhook(url) = channel {
        let signature = signature(secret, body.as_bytes());
        return post(state, url, body.to_string(), Some(signature), true).await;
    }
    let event: WebhookEvent =
        serde_json::from_str(body).map_err(|e| format!("stored event unreadable: {e}"))?;
    let m = Message::of(&event);
    let json = |v: serde_json::Value| v.to_string();
    match channel {
        Notify::Webhook(_) => unreachable!("handled above"),
        Notify::Slack(url) => post(state, url, json(providers::slack(&m)), None, true).await,
        Notify::Discord(url) => {
            post(state, url, json(providers::discord(&m, &event)), None, true).await
        }
        Notify::Teams(url) => post(state, url, json(providers::teams(&m)), None, true).await,
        Notify::Ntfy(url) => {
            let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
            let (root, body) = providers::ntfy(&m, &parsed)?;
            post(state, root.as_str(), json(body), None, true).await
        }
        Notify::Pagerduty(p) => {
            let body = providers::pagerduty(&m, &event, &p.routing_key);
            let url = state.settings.notify.pagerduty_url.clone();
            post(state, &url, json(body), None, false).await
        }
        Notify::Telegram(t) => {
            let base = state.settings.notify.telegram_url.trim_end_matches('/');
            let url = format!("{base}/bot{}/sendMessage", t.bot_token);
            post(
                state,
                &url,
                json(providers::telegram(&m, &t.chat_id)),
                None,
                false,
            )
            .await
        }
        Notify::Email(e) => email::send(state, &e.to, &m).await,
    }
}

/// POSTs JSON; `checked`: the URL is a user's, so its addresses must pass the policy and are
/// the ones connected to. Errors never carry the URL (a Telegram one holds the bot's token).
async fn post(
    state: &AppState,
    url: &str,
    body: String,
    signature: Option<String>,
    checked: bool,
) -> Result<u16, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let mut builder = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if checked {
        let addrs = resolve_allowed(state, &parsed).await?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        // Connect to the addresses just checked, not to whatever the name resolves to next.
        builder = builder.resolve_to_addrs(&host, &addrs);
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let mut req = client
        .post(parsed)
        .header("Content-Type", "application/json")
        .header(
            "User-Agent",
            concat!("netcheck/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(sig) = signature {
        req = req.header("X-Netcheck-Signature", sig);
    }
    let resp = req
        .body(body)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    Ok(resp.status().as_u16())
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` keyed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

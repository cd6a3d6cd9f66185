//! `GET /probe`: blackbox_exporter's probe endpoint, answered by many agents at once.
//! Prometheus scrapes it exactly as it scrapes blackbox_exporter (same parameters, modules
//! and metric names) and gets one series per agent, labelled with where the agent is.
//!
//! A probe run is not check history: it never touches PostgreSQL. Its request goes to the
//! agents with an id of its own kind (UUIDv8), and the collector hands such results straight
//! to the waiting scrape (in process, or through Redis when another server instance waits).

pub mod exposition;
pub mod modules;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use uuid::Uuid;

use crate::server::auth::AuthUser;
use crate::server::checks::{create, unstored, validate};
use crate::server::error::ApiError;
use crate::server::AppState;
use netcheck_proto::api::agents::Agent;
use netcheck_proto::api::ErrorBody;
use netcheck_proto::api::{AgentSelection, LocationFilter};
use netcheck_proto::check::{CheckRequest, CheckSpec};
use netcheck_proto::result::{CheckResult, ResultStatus};
use netcheck_proto::PROTOCOL_VERSION;

pub use modules::Modules;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/probe", web::get().to(probe));
}

/// blackbox answers its errors as plain text (`http.Error`).
fn text(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    let mut body = body.into();
    body.push('\n');
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

/// An API error as `/probe` tells it: 400 and its message, except for the server's own
/// trouble (503, 429) which keep their status.
fn refused(e: ApiError) -> HttpResponse {
    let status = match e.status() {
        s @ (StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS) => s,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut resp = text(status, e.message().to_string());
    if let Some(after) = e.retry_after_secs() {
        resp.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(after),
        );
    }
    resp
}

/// The query's parameters (names may repeat: `location`, `agents`).
struct Params {
    module: String,
    target: String,
    agents: Vec<String>,
    locations: Vec<String>,
    limit: Option<String>,
    debug: bool,
}

impl Params {
    fn parse(query: &str) -> Self {
        let mut p = Params {
            module: String::new(),
            target: String::new(),
            agents: Vec::new(),
            locations: Vec::new(),
            limit: None,
            debug: false,
        };
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "module" => p.module = v.into_owned(),
                "target" => p.target = v.into_owned(),
                "agents" | "agent" => p.agents.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(String::from),
                ),
                "location" => p.locations.push(v.into_owned()),
                "limit" => p.limit = Some(v.into_owned()),
                // blackbox compares it with "true" exactly.
                "debug" => p.debug = v == "true",
                _ => {}
            }
        }
        p
    }

    fn selection(&self) -> Result<AgentSelection, String> {
        let mut sel = AgentSelection::default();
        if !self.agents.is_empty() {
            sel.agents = Some(self.agents.clone());
        }
        if !self.locations.is_empty() {
            sel.locations = Some(
                self.locations
                    .iter()
                    .map(|l| location(l))
                    .collect::<Result<_, _>>()?,
            );
        }
        if let Some(limit) = &self.limit {
            sel.limit = Some(
                limit
                    .parse()
                    .map_err(|_| format!("limit {limit:?} is not a number"))?,
            );
        }
        Ok(sel)
    }
}

/// `CC[,city][,asN]` (or the CLI's `key:value,…` form).
fn location(text: &str) -> Result<LocationFilter, String> {
    if text.contains(':') {
        return text.parse();
    }
    let mut f = LocationFilter::default();
    for (i, part) in text.split(',').map(str::trim).enumerate() {
        let asn = part
            .strip_prefix("as")
            .or_else(|| part.strip_prefix("AS"))
            .and_then(|n| n.parse::<u32>().ok());
        match (i, asn) {
            (_, Some(n)) => f.asn = Some(n),
            (0, None) if !part.is_empty() => f.country = Some(part.to_string()),
            (_, None) if !part.is_empty() => f.city = Some(part.to_string()),
            _ => {}
        }
    }
    if f == LocationFilter::default() {
        return Err(format!("location {text:?}: expected CC[,city][,asN]"));
    }
    Ok(f)
}

/// The longest scrape budget honoured: Prometheus never allows a scrape timeout longer than its
/// interval, and a larger header (even `1e300`) must not overflow the deadline arithmetic.
const MAX_BUDGET_SECS: f64 = 3600.0;

/// The scrape's time budget as blackbox computes it: the Prometheus header less 0.5 s (120 s
/// without one), or the module's timeout when that is shorter.
fn budget(
    header: Option<&actix_web::http::header::HeaderValue>,
    module_timeout: Option<Duration>,
) -> Result<Duration, String> {
    const OFFSET: f64 = 0.5;
    let header = match header {
        None => 0.0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| {
                format!("Failed to parse timeout from Prometheus header: {v:?} is not a number")
            })?,
    };
    let max = if header == 0.0 { 120.0 } else { header } - OFFSET;
    let module_secs = module_timeout.map_or(0.0, |t| t.as_secs_f64());
    let secs = if (module_secs > 0.0 && module_secs < max) || max < 0.0 {
        module_secs
    } else {
        max
    };
    Ok(Duration::from_secs_f64(secs.clamp(0.1, MAX_BUDGET_SECS)))
}

/// Runs a blackbox_exporter module against `target` on the chosen agents (every online one by
/// default) and answers blackbox 0.23's metric families, one sample per agent, within the
/// scrape timeout. Authenticated by an API key with the `probe` scope, or a session.
#[utoipa::path(operation_id = "probe", get, path = "/probe", tag = "prometheus",
    params(
        ("module" = Option<String>, Query, description = "A module of `probe.modules_file` (default `http_2xx`)"),
        ("target" = String, Query, description = "What the module probes: a URL (http), host:port (tcp), host (icmp), server[:port] (dns)"),
        ("agents" = Option<String>, Query, description = "Agent ids or names, comma-separated"),
        ("location" = Option<Vec<String>>, Query, explode = true, description = "`CC[,city][,asN]`; repeat for several places"),
        ("limit" = Option<u32>, Query, description = "Most agents (1-500)"),
        ("debug" = Option<String>, Query, description = "`true`: blackbox's debug text (logs, metrics, module)"),
        ("X-Prometheus-Scrape-Timeout-Seconds" = Option<f64>, Header, description = "The scrape's timeout; the probe waits 0.5 s less (120 s without it)"),
    ),
    responses(
        (status = 200, description = "Metrics in the text exposition format 0.0.4", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 400, description = "Unknown module, missing target, refused target or no matching agent", content_type = "text/plain; charset=utf-8", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, description = "Over the per-user probe budget (Retry-After)", content_type = "text/plain; charset=utf-8", body = String),
        (status = 503, description = "The message broker is unavailable", content_type = "text/plain; charset=utf-8", body = String),
    ),
    security(("bearer" = [])))]
pub async fn probe(req: HttpRequest, user: AuthUser, state: web::Data<AppState>) -> HttpResponse {
    let started = Instant::now();
    let p = Params::parse(req.query_string());
    let name = if p.module.is_empty() {
        "http_2xx"
    } else {
        &p.module
    };
    let Some(module) = state.probe_modules.get(name) else {
        state.metrics.probe_module_unknown.inc();
        return text(
            StatusCode::BAD_REQUEST,
            format!("Unknown module \"{name}\""),
        );
    };
    let budget = match budget(
        req.headers().get("X-Prometheus-Scrape-Timeout-Seconds"),
        module.timeout,
    ) {
        Ok(b) => b,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    if p.target.is_empty() {
        return text(StatusCode::BAD_REQUEST, "Target parameter is missing");
    }
    let (target, spec) = match module.check(&p.target, budget) {
        Ok(c) => c,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let selection = match p.selection() {
        Ok(s) => s,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    // The same validation and target policy as a check of the same options.
    let target = match validate::check(&target, &spec, &state.policy) {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    let id = unstored::new_id();
    let picked = match create::pick(&state, &user.0, &selection, &spec, id).await {
        Ok(p) => p,
        Err(e) if e.code() == netcheck_proto::api::ErrorCode::NoMatchingAgents => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("no online agent matches the selection {}", p.describe()),
            )
        }
        Err(e) => return refused(e),
    };
    let asked = picked.online.len() + picked.offline.len() + picked.unable.len();
    if let Err(e) = create::take_quota(&state, &user.0, asked as u64).await {
        return refused(e);
    }
    let answers = run(
        &state,
        id,
        &target,
        &spec,
        &picked.online,
        &selection,
        budget,
    )
    .await;
    let waited = started.elapsed().as_secs_f64();
    let mut families = exposition::Families::default();
    let mut logs = String::new();
    let everyone = picked.online.iter().map(|a| (a, true)).chain(
        picked
            .offline
            .iter()
            .chain(&picked.unable)
            .map(|a| (a, false)),
    );
    for (agent, asked) in everyone {
        let answer = answers.get(&agent.id);
        exposition::add(&mut families, agent, &spec, answer, waited);
        logs.push_str(&log_line(agent, asked, answer, waited));
    }
    state.metrics.probe_scrapes.inc();
    let metrics = exposition::render(families);
    if p.debug {
        let config = serde_yaml_ng::to_string(module).unwrap_or_default();
        return HttpResponse::Ok().content_type("text/plain").body(format!(
            "Logs for the probe:\n{logs}\n\n\nMetrics that would have been returned:\n{metrics}\n\n\nModule configuration:\n{config}"
        ));
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics)
}

impl Params {
    /// The selection in words, for the refusal.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.agents.is_empty() {
            parts.push(format!("agents={}", self.agents.join(",")));
        }
        for l in &self.locations {
            parts.push(format!("location={l}"));
        }
        if let Some(l) = &self.limit {
            parts.push(format!("limit={l}"));
        }
        if parts.is_empty() {
            "(every agent)".into()
        } else {
            parts.join(" ")
        }
    }
}

/// One logfmt line per agent, as blackbox's probe log.
fn log_line(agent: &Agent, asked: bool, answer: Option<&CheckResult>, waited: f64) -> String {
    let ts = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (level, msg, detail) = match answer {
        Some(r) if r.status == ResultStatus::Ok => ("info", "Probe succeeded", String::new()),
        Some(r) => (
            "error",
            "Probe failed",
            r.error
                .as_ref()
                .map(|e| format!(" err={:?} code={}", e.message, e.code))
                .unwrap_or_default(),
        ),
        None if asked => (
            "error",
            "Probe failed",
            " err=\"the agent did not answer in time\"".to_string(),
        ),
        None => (
            "error",
            "Probe failed",
            " err=\"the agent is offline or cannot run this probe\"".to_string(),
        ),
    };
    let took = answer.map_or(waited, |r| r.duration_ms / 1000.0);
    format!(
        "ts={ts} caller=netcheck level={level} agent={:?} msg={msg:?} duration_seconds={took:.6}{detail}\n",
        agent.name
    )
}

/// Sends the probe to the online agents and gathers their answers until all have answered
/// or the budget is spent.
async fn run(
    state: &AppState,
    id: Uuid,
    target: &str,
    spec: &CheckSpec,
    online: &[Agent],
    selection: &AgentSelection,
    budget: Duration,
) -> HashMap<Uuid, CheckResult> {
    let mut answers = HashMap::new();
    if online.is_empty() {
        return answers;
    }
    let deadline = tokio::time::Instant::now() + budget;
    // Registered before the request goes out, so no answer can arrive unheard.
    let mut watcher = state.events.watch_for(id, online.len() + 8);
    let request = CheckRequest {
        protocol_version: PROTOCOL_VERSION,
        check_id: id,
        target: target.to_string(),
        spec: spec.clone(),
        // An agent that cannot start it within the scrape's time should not start it.
        expires_at: Utc::now()
            + chrono::Duration::milliseconds(budget.as_millis().min(u32::MAX as u128) as i64),
        agents: online.iter().map(|a| a.id).collect(),
    };
    let everyone = selection.is_everyone();
    if let Err(e) = create::publish(state, &request, everyone).await {
        tracing::warn!(error = %e.message(), "could not send a probe");
        return answers;
    }
    let mut waiting: HashSet<Uuid> = online.iter().map(|a| a.id).collect();
    while !waiting.is_empty() {
        let Ok(Some(payload)) = tokio::time::timeout_at(deadline, watcher.recv()).await else {
            break;
        };
        let Ok(result) = serde_json::from_str::<CheckResult>(&payload) else {
            continue;
        };
        if result.check_id == id && waiting.remove(&result.agent_id) {
            answers.insert(result.agent_id, result);
        }
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_country_city_and_asn() {
        let f = location("DE,Berlin,AS3320").unwrap();
        assert_eq!(f.country.as_deref(), Some("DE"));
        assert_eq!(f.city.as_deref(), Some("Berlin"));
        assert_eq!(f.asn, Some(3320));
        assert_eq!(location("as13335").unwrap().asn, Some(13335));
        assert_eq!(
            location("country:nl,limit:2").unwrap().limit,
            Some(2),
            "the CLI form works too"
        );
        assert!(location(",").is_err());
    }

    #[test]
    fn scrape_budgets_follow_blackbox_and_stay_bounded() {
        use actix_web::http::header::HeaderValue;
        let secs = |h: &str, module: Option<u64>| {
            budget(
                Some(&HeaderValue::from_str(h).unwrap()),
                module.map(Duration::from_secs),
            )
            .map(|d| d.as_secs_f64())
        };
        assert_eq!(budget(None, None).unwrap().as_secs_f64(), 119.5);
        assert_eq!(secs("5", None).unwrap(), 4.5);
        assert_eq!(secs("5", Some(2)).unwrap(), 2.0, "a shorter module wins");
        assert_eq!(secs("0.2", None).unwrap(), 0.1, "never below 100 ms");
        // Huge finite values once panicked in `Duration::from_secs_f64`.
        assert_eq!(secs("1e300", None).unwrap(), MAX_BUDGET_SECS);
        assert_eq!(secs("1e300", Some(7)).unwrap(), 7.0);
        for bad in ["NaN", "inf", "-1", "soon"] {
            assert!(secs(bad, None).is_err(), "{bad}");
        }
    }
}

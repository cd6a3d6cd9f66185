//! `GET /api/v1/status/{slug}`: a public page, without login. Built from a handful of indexed
//! queries whatever the history's length: the monitors, their daily roll-ups (90 days), the
//! last 24 hours' hourly roll-ups, the latest judged run's results, the incidents of the last
//! 90 days, and the maintenance windows. Answers carry an `ETag` (a hash of the body) and
//! are cacheable for a short while; an instance renders a page at most once per
//! [`RENDERED_FOR`] (changes made through it show at once).

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::ConnectionTrait;
use sha2::Digest;

use super::{Column, Entity, Model};
use crate::server::db::monitors;
use crate::server::db::status_history;
use crate::server::error::{ApiError, ApiResult};
use crate::server::{maintenance, AppState};
use netcheck_proto::api::monitors::{
    IncidentPlace, MonitorState, PublicGroup, PublicIncident, PublicMaintenance, PublicMonitor,
    PublicPage, StatusDay, StatusPlace, StatusState, Uptimes,
};
use netcheck_proto::api::ErrorBody;
use netcheck_proto::result::ResultStatus;

/// Days of bars.
pub const DAYS: i64 = 90;
/// How long the incident list reaches back.
const INCIDENT_DAYS: i64 = 30;
/// How long a reader (or a cache in between) may keep a page.
const MAX_AGE_SECS: u32 = 30;
/// How long an instance serves a page it rendered before rendering it again: a thousand
/// readers cost one render (six indexed queries) per page every few seconds.
const RENDERED_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// A rendered public page: its ETag and JSON body.
#[derive(Clone)]
pub struct Rendered {
    etag: String,
    body: actix_web::web::Bytes,
}

/// Rendered public pages by slug, each kept [`RENDERED_FOR`].
pub type Cache = moka::sync::Cache<String, Rendered>;

pub fn new_cache() -> Cache {
    moka::sync::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(RENDERED_FOR)
        .build()
}

/// A public page by slug; `None` for an unknown or private one.
pub async fn find_public(db: &impl ConnectionTrait, slug: &str) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Slug.eq(slug))
        .filter(Column::Public.eq(true))
        .one(db)
        .await
}

#[utoipa::path(operation_id = "public_status_page", get, path = "/api/v1/status/{slug}", tag = "status pages",
    description = "A public status page, without login: overall state, each monitor's state, uptime, 90 daily bars and the places that see it up or down, incidents and maintenance. No agent ids, names or addresses. `ETag` / `If-None-Match` answer 304.",
    params(("slug" = String, Path)),
    responses((status = 200, body = PublicPage), (status = 304), (status = 404, body = ErrorBody, description = "no such page, or a private one")))]
pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let rendered = match state.status_pages.get(slug.as_str()) {
        Some(r) => r,
        None => {
            let p = find_public(&state.db, &slug)
                .await?
                .ok_or_else(|| ApiError::not_found("status page"))?;
            let page = assemble(&state.db, &p, Utc::now()).await?.0;
            let body = serde_json::to_vec(&page).expect("page serialises");
            let etag = format!("\"{}\"", hex(&sha2::Sha256::digest(&body)[..16]));
            let r = Rendered {
                etag,
                body: body.into(),
            };
            state.status_pages.insert(slug.to_string(), r.clone());
            r
        }
    };
    let Rendered { etag, body } = rendered;
    let cache = format!("public, max-age={MAX_AGE_SECS}");
    let matches = req
        .headers()
        .get(actix_web::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok(HttpResponse::NotModified()
            .insert_header(("ETag", etag))
            .insert_header(("Cache-Control", cache))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", etag))
        .insert_header(("Cache-Control", cache))
        .content_type("application/json")
        .body(body))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Country code and city.
type Place = (Option<String>, Option<String>);

/// A monitor on the page, as loaded.
struct Row {
    id: Uuid,
    name: String,
    target: String,
    state: MonitorState,
    last_judged: Option<Uuid>,
}

/// The page as the public sees it, and each monitor's id beside its view (for badges).
pub async fn assemble(
    db: &impl ConnectionTrait,
    page: &Model,
    now: DateTime<Utc>,
) -> Result<(PublicPage, HashMap<Uuid, PublicMonitor>), DbErr> {
    let groups = page.groups();
    let ids: Vec<Uuid> = groups
        .iter()
        .flat_map(|g| g.monitors.iter().map(|m| m.id))
        .collect();
    let rows: HashMap<Uuid, Row> = monitors::Entity::find()
        .filter(monitors::Column::Id.is_in(ids.clone()))
        .filter(monitors::Column::UserId.eq(page.user_id))
        .all(db)
        .await?
        .into_iter()
        .map(|m| {
            let row = Row {
                id: m.id,
                name: m.name.clone(),
                target: m.target.clone(),
                state: if m.paused {
                    MonitorState::Paused
                } else {
                    MonitorState::parse(&m.state)
                },
                last_judged: m.last_evaluated_check_id,
            };
            (m.id, row)
        })
        .collect();
    let ids: Vec<Uuid> = ids.into_iter().filter(|i| rows.contains_key(i)).collect();
    let today = now.date_naive();
    let first_day = today - Duration::days(DAYS - 1);

    // Daily roll-ups: one range scan of the primary key per monitor.
    let mut days: HashMap<Uuid, BTreeMap<NaiveDate, (i64, i64)>> = HashMap::new();
    for d in status_history::days(db, &ids, first_day).await? {
        days.entry(d.monitor)
            .or_default()
            .insert(d.day, (d.runs, d.failing));
    }
    // The last 24 hours exactly, from the hourly roll-ups.
    let since = now.duration_trunc(Duration::hours(1)).unwrap_or(now) - Duration::hours(23);
    let day_totals: HashMap<Uuid, (i64, i64)> = status_history::totals_since(db, &ids, since)
        .await?
        .into_iter()
        .map(|(monitor, runs, failing)| (monitor, (runs, failing)))
        .collect();
    // Where each monitor stands: its latest judged run, per place.
    let judged: Vec<Uuid> = rows.values().filter_map(|r| r.last_judged).collect();
    let mut places: HashMap<Uuid, BTreeMap<Place, bool>> = HashMap::new();
    for answer in status_history::answers(db, judged).await? {
        let status = answer.status;
        let loc = answer.location;
        if matches!(status, ResultStatus::Offline | ResultStatus::Pending) {
            continue;
        }
        let field = |k: &str| {
            loc.as_ref()
                .and_then(|l| l.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let failing = matches!(status, ResultStatus::Failed | ResultStatus::Timeout);
        let down = places
            .entry(answer.monitor)
            .or_default()
            .entry((field("country_code"), field("city")))
            .or_insert(false);
        *down |= failing;
    }
    // Incidents of the bars' 90 days: counted per day, listed for the last 30.
    let mut incident_days: HashMap<(Uuid, NaiveDate), u32> = HashMap::new();
    let mut incidents: Vec<(Uuid, PublicIncident)> = Vec::new();
    let window_start = first_day.and_time(chrono::NaiveTime::MIN).and_utc();
    for i in status_history::incidents(db, &ids, window_start).await? {
        let (monitor, started, resolved) = (i.monitor, i.started_at, i.resolved_at);
        *incident_days
            .entry((monitor, started.date_naive()))
            .or_default() += 1;
        if resolved.is_none() || started >= now - Duration::days(INCIDENT_DAYS) {
            let mut at: Vec<IncidentPlace> = Vec::new();
            for a in i.failing_agents {
                let place = IncidentPlace {
                    country_code: a.country_code,
                    city: a.city,
                };
                if !at.contains(&place) {
                    at.push(place);
                }
            }
            incidents.push((
                monitor,
                PublicIncident {
                    id: i.id,
                    monitor: String::new(),
                    started_at: started,
                    resolved_at: resolved,
                    places: at,
                },
            ));
        }
    }
    // Maintenance: the windows on now, and those starting within 30 days.
    let windows = maintenance::covering(db, &ids, &[page.user_id]).await?;
    let in_maintenance = maintenance::active_of(&windows, now);

    let display: HashMap<Uuid, String> = groups
        .iter()
        .flat_map(|g| g.monitors.iter())
        .filter_map(|m| {
            let row = rows.get(&m.id)?;
            Some((
                m.id,
                m.display_name.clone().unwrap_or_else(|| row.name.clone()),
            ))
        })
        .collect();
    let mut by_id = HashMap::new();
    let mut public_groups = Vec::with_capacity(groups.len());
    for g in &groups {
        let mut list = Vec::with_capacity(g.monitors.len());
        for gm in &g.monitors {
            let Some(row) = rows.get(&gm.id) else {
                continue;
            };
            let mine = days.get(&row.id);
            let bars: Vec<StatusDay> = (0..DAYS)
                .map(|k| {
                    let date = first_day + Duration::days(k);
                    let uptime = mine
                        .and_then(|d| d.get(&date))
                        .and_then(|&(r, f)| pct(r, f));
                    StatusDay {
                        date,
                        uptime,
                        incidents: incident_days.get(&(row.id, date)).copied().unwrap_or(0),
                    }
                })
                .collect();
            let window = |n: i64| {
                let (r, f) = mine
                    .map(|d| {
                        d.range(today - Duration::days(n - 1)..)
                            .fold((0, 0), |(r, f), (_, &(dr, df))| (r + dr, f + df))
                    })
                    .unwrap_or((0, 0));
                pct(r, f)
            };
            let here: Vec<StatusPlace> = places
                .get(&row.id)
                .map(|p| {
                    p.iter()
                        .map(|((cc, city), down)| StatusPlace {
                            country_code: cc.clone(),
                            city: city.clone(),
                            state: if *down {
                                StatusState::Down
                            } else {
                                StatusState::Up
                            },
                        })
                        .collect()
                })
                .unwrap_or_default();
            let state = if in_maintenance.contains(&row.id) {
                StatusState::Maintenance
            } else {
                match row.state {
                    MonitorState::Down => StatusState::Down,
                    MonitorState::Up if here.iter().any(|p| p.state == StatusState::Down) => {
                        StatusState::Degraded
                    }
                    MonitorState::Up => StatusState::Up,
                    MonitorState::Maintenance => StatusState::Up,
                    MonitorState::Pending | MonitorState::Paused => StatusState::Unknown,
                }
            };
            let view = PublicMonitor {
                display_name: display.get(&row.id).cloned().unwrap_or_default(),
                target: page.show_targets.then(|| row.target.clone()),
                state,
                uptime: Uptimes {
                    h24: day_totals.get(&row.id).and_then(|&(r, f)| pct(r, f)),
                    d7: window(7),
                    d30: window(30),
                    d90: window(DAYS),
                },
                days: bars,
                places: here,
            };
            by_id.insert(row.id, view.clone());
            list.push(view);
        }
        public_groups.push(PublicGroup {
            name: g.name.clone(),
            monitors: list,
        });
    }
    let incidents = incidents
        .into_iter()
        .map(|(m, mut i)| {
            i.monitor = display.get(&m).cloned().unwrap_or_default();
            i
        })
        .collect();
    let horizon = now + Duration::days(30);
    let mut upcoming: Vec<PublicMaintenance> = windows
        .iter()
        .filter_map(|c| {
            let (starts_at, ends_at) = c.window.schedule().occurrence(now)?;
            (starts_at <= horizon).then(|| PublicMaintenance {
                starts_at,
                ends_at,
                note: c.window.note.clone(),
                monitors: c
                    .monitors
                    .iter()
                    .filter_map(|m| display.get(m).cloned())
                    .collect(),
            })
        })
        .collect();
    upcoming.sort_by_key(|w| w.starts_at);
    let states: Vec<StatusState> = by_id.values().map(|m| m.state).collect();
    let updated_at = rows
        .values()
        .filter_map(|r| r.last_judged)
        .filter_map(|c| {
            let (s, n) = c.get_timestamp()?.to_unix();
            DateTime::from_timestamp(s as i64, n)
        })
        .chain([page.updated_at])
        .max()
        .unwrap_or(page.updated_at);
    let page = PublicPage {
        title: page.title.clone(),
        description: page.description.clone(),
        state: overall(&states),
        updated_at,
        groups: public_groups,
        incidents,
        maintenance: upcoming,
    };
    Ok((page, by_id))
}

fn pct(runs: i64, failing: i64) -> Option<f64> {
    (runs > 0).then(|| {
        let up = 100.0 * (runs - failing.min(runs)) as f64 / runs as f64;
        (up * 100.0).round() / 100.0
    })
}

/// The page's state from its monitors': `maintenance` when every monitor is in a window,
/// `down` when every other monitor with a verdict is down, `degraded` when some are down or
/// degraded, `up` otherwise.
pub fn overall(states: &[StatusState]) -> StatusState {
    let judged: Vec<StatusState> = states
        .iter()
        .copied()
        .filter(|s| !matches!(s, StatusState::Maintenance | StatusState::Unknown))
        .collect();
    if !states.is_empty() && states.iter().all(|s| *s == StatusState::Maintenance) {
        return StatusState::Maintenance;
    }
    if !judged.is_empty() && judged.iter().all(|s| *s == StatusState::Down) {
        return StatusState::Down;
    }
    if judged
        .iter()
        .any(|s| matches!(s, StatusState::Down | StatusState::Degraded))
    {
        return StatusState::Degraded;
    }
    StatusState::Up
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatusState::*;

    #[test]
    fn the_page_state_follows_its_monitors() {
        assert_eq!(overall(&[]), Up);
        assert_eq!(overall(&[Up, Unknown]), Up);
        assert_eq!(overall(&[Up, Down]), Degraded);
        assert_eq!(overall(&[Up, Degraded]), Degraded);
        assert_eq!(overall(&[Down, Maintenance]), Down);
        assert_eq!(overall(&[Down, Down, Unknown]), Down);
        assert_eq!(overall(&[Maintenance, Maintenance]), Maintenance);
        assert_eq!(overall(&[Maintenance, Up]), Up);
    }

    #[test]
    fn uptime_is_the_share_of_runs_below_the_rule() {
        assert_eq!(pct(0, 0), None);
        assert_eq!(pct(4, 1), Some(75.0));
        assert_eq!(pct(3, 1), Some(66.67));
    }
}

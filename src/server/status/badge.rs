//! `GET /api/v1/status/{slug}/badge/{monitor}`: an SVG badge in shields.io's flat look, for
//! READMEs: the monitor's state, or its uptime over a window.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use uuid::Uuid;

use super::public::{assemble, find_public};
use crate::server::error::{ApiError, ApiResult};
use crate::server::notify::providers::html_escape;
use crate::server::AppState;
use netcheck_proto::api::monitors::{BadgeKind, BadgeQuery, BadgeWindow, StatusState};
use netcheck_proto::api::ErrorBody;

#[utoipa::path(operation_id = "status_badge", get, path = "/api/v1/status/{slug}/badge/{monitor}", tag = "status pages",
    description = "An SVG badge (`image/svg+xml`) of a monitor on a public page: its state (`kind=status`) or its uptime over `window` (`kind=uptime`).",
    params(("slug" = String, Path), ("monitor" = Uuid, Path), BadgeQuery),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 404, body = ErrorBody, description = "no such public page, or the monitor is not on it")))]
pub async fn badge(
    state: web::Data<AppState>,
    path: web::Path<(String, Uuid)>,
    q: web::Query<BadgeQuery>,
) -> ApiResult<HttpResponse> {
    let (slug, monitor) = path.into_inner();
    let missing = || ApiError::not_found("monitor on this status page");
    let page = find_public(&state.db, &slug)
        .await?
        .ok_or_else(|| ApiError::not_found("status page"))?;
    if !crate::server::maintenance::page_monitor_ids(&page.groups).contains(&monitor) {
        return Err(missing());
    }
    let (_, monitors) = assemble(&state.db, &page, Utc::now()).await?;
    let m = monitors.get(&monitor).ok_or_else(missing)?;
    let (label, message, colour) = match q.kind.unwrap_or_default() {
        BadgeKind::Status => {
            let (word, colour) = match m.state {
                StatusState::Up => ("up", "#4c1"),
                StatusState::Degraded => ("degraded", "#dfb317"),
                StatusState::Down => ("down", "#e05d44"),
                StatusState::Maintenance => ("maintenance", "#007ec6"),
                StatusState::Unknown => ("unknown", "#9f9f9f"),
            };
            (m.display_name.clone(), word.to_string(), colour)
        }
        BadgeKind::Uptime => {
            let window = q.window.unwrap_or_default();
            let (value, name) = match window {
                BadgeWindow::H24 => (m.uptime.h24, "24h"),
                BadgeWindow::D7 => (m.uptime.d7, "7d"),
                BadgeWindow::D30 => (m.uptime.d30, "30d"),
            };
            let (message, colour) = match value {
                None => ("no data".to_string(), "#9f9f9f"),
                Some(v) => (
                    format!("{}%", trim(v)),
                    match v {
                        v if v >= 99.9 => "#4c1",
                        v if v >= 99.0 => "#97ca00",
                        v if v >= 95.0 => "#dfb317",
                        _ => "#e05d44",
                    },
                ),
            };
            (format!("{} {name}", m.display_name), message, colour)
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "public, max-age=60"))
        .body(svg(&label, &message, colour)))
}

/// 99.95 → "99.95", 100.0 → "100".
fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Verdana 11 px is ~6.5 px a character on average; shields pads each side by 5 px.
fn width(text: &str) -> u32 {
    (text.chars().count() as f64 * 6.5).ceil() as u32 + 10
}

/// shields.io's flat badge.
pub fn svg(label: &str, message: &str, colour: &str) -> String {
    let (lw, mw) = (width(label), width(message));
    let w = lw + mw;
    let (label, message) = (html_escape(label), html_escape(message));
    let (lx, mx) = (lw * 5, lw * 10 + mw * 5);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="{label}: {message}"><title>{label}: {message}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{w}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{mw}" height="20" fill="{colour}"/><rect width="{w}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="110"><text x="{lx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)">{label}</text><text x="{lx}" y="140" transform="scale(.1)">{label}</text><text x="{mx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)">{message}</text><text x="{mx}" y="140" transform="scale(.1)">{message}</text></g></svg>"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badge_text_is_escaped_and_sized() {
        let s = svg("a<b & \"c\"", "up", "#4c1");
        assert!(s.contains("a&lt;b &amp; &quot;c&quot;"), "{s}");
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(width("a longer label") > width("short"));
        assert_eq!(trim(99.5), "99.5");
        assert_eq!(trim(100.0), "100");
    }
}

//! A user's probe budget: checks and monitors share `checks.rate_limit_per_minute`. A monitor
//! costs `agents × 60 / interval_secs` probes a minute; one that would take its owner's
//! monitors past the budget is refused (409 `over_budget`, with the numbers), and what the
//! monitors take is left out of the per-minute window the user's own checks spend.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use crate::server::db::monitors::{Column, Entity};
use crate::server::error::{ApiError, ApiResult};
use crate::server::AppState;
use netcheck_proto::api::AgentSelection;

/// The most agents a selection can pick from a fleet of `fleet`: named agents, the sum of
/// its places' limits, the overall limit — whichever bounds it (everyone without one).
pub fn agents_of(selection: &AgentSelection, fleet: u64) -> u64 {
    let mut n = fleet;
    if let Some(names) = &selection.agents {
        n = n.min(names.len() as u64);
    }
    if let Some(places) = &selection.locations {
        if places.iter().all(|p| p.limit.is_some()) {
            n = n.min(places.iter().map(|p| p.limit.unwrap_or(0) as u64).sum());
        }
    }
    if let Some(limit) = selection.limit {
        n = n.min(limit as u64);
    }
    n
}

/// Probes a minute a monitor on `agents` agents every `interval_secs` costs.
pub fn per_minute(agents: u64, interval_secs: u32) -> f64 {
    agents as f64 * 60.0 / interval_secs.max(1) as f64
}

/// Probes a minute `user_id`'s running monitors take, leaving out `replacing`.
async fn used_per_minute(
    state: &AppState,
    user_id: Uuid,
    replacing: Option<Uuid>,
) -> ApiResult<f64> {
    let fleet = crate::server::agents::Entity::find()
        .count(&state.db)
        .await?;
    let mut used = 0.0;
    for m in Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Paused.eq(false))
        .all(&state.db)
        .await?
    {
        if Some(m.id) == replacing {
            continue;
        }
        let sel: AgentSelection = serde_json::from_value(m.selection).unwrap_or_default();
        used += per_minute(agents_of(&sel, fleet), m.interval_secs as u32);
    }
    Ok(used)
}

/// What each user's monitors take from their budget, remembered for a few seconds so that
/// creating a check costs no extra query in the common case.
#[derive(Default)]
pub struct Standing(std::sync::Mutex<std::collections::HashMap<Uuid, (std::time::Instant, u64)>>);

/// How long a user's standing cost is remembered.
const STANDING_FOR: std::time::Duration = std::time::Duration::from_secs(10);

impl Standing {
    /// Whole probes a minute `user_id`'s monitors take (rounded down).
    pub async fn of(&self, state: &AppState, user_id: Uuid) -> ApiResult<u64> {
        if let Some((at, cost)) = self.0.lock().expect("standing lock").get(&user_id) {
            if at.elapsed() < STANDING_FOR {
                return Ok(*cost);
            }
        }
        let cost = used_per_minute(state, user_id, None).await?.floor() as u64;
        self.0
            .lock()
            .expect("standing lock")
            .insert(user_id, (std::time::Instant::now(), cost));
        Ok(cost)
    }

    /// Forgets `user_id`'s cost after their monitors changed.
    pub fn forget(&self, user_id: Uuid) {
        self.0.lock().expect("standing lock").remove(&user_id);
    }
}

/// Refuses a monitor (`replacing` the one being changed, if any) that would take `user`'s
/// monitors past the budget. Administrators are not limited.
pub async fn ensure_within(
    state: &AppState,
    user: &crate::server::db::users::Model,
    replacing: Option<Uuid>,
    selection: &AgentSelection,
    interval_secs: u32,
    paused: bool,
) -> ApiResult<()> {
    if user.is_admin() || paused {
        return Ok(());
    }
    let used = used_per_minute(state, user.id, replacing).await?;
    let fleet = crate::server::agents::Entity::find()
        .count(&state.db)
        .await?;
    let this = per_minute(agents_of(selection, fleet), interval_secs);
    let budget = state.settings.checks.rate_limit_per_minute as f64;
    if used + this > budget {
        return Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            netcheck_proto::api::ErrorCode::OverBudget,
            format!(
                "This monitor would run {this:.1} probes a minute; your monitors already run \
                 {used:.1} of your {budget:.0}. Run it less often, on fewer agents, or pause \
                 another."
            ),
        )
        .with_details(serde_json::json!({
            "budget_per_minute": budget,
            "used_per_minute": used,
            "monitor_per_minute": this,
        })));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcheck_proto::api::LocationFilter;

    #[test]
    fn a_selection_costs_the_agents_it_can_pick() {
        let everyone = AgentSelection::default();
        assert_eq!(agents_of(&everyone, 7), 7);
        let named = AgentSelection {
            agents: Some(vec!["a".into(), "b".into()]),
            ..Default::default()
        };
        assert_eq!(agents_of(&named, 7), 2);
        let places = AgentSelection {
            locations: Some(vec![
                LocationFilter {
                    limit: Some(2),
                    ..Default::default()
                },
                LocationFilter {
                    limit: Some(3),
                    ..Default::default()
                },
            ]),
            limit: Some(4),
            ..Default::default()
        };
        assert_eq!(agents_of(&places, 50), 4);
        assert_eq!(per_minute(5, 10), 30.0);
    }
}

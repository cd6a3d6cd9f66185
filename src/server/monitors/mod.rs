//! Monitors: recurring checks from chosen agents, judged by an alert rule. Runs are ordinary
//! checks carrying `monitor_id`; `runner` starts them (one per due tick across instances) and
//! judges them as they finish; state changes go to `webhooks` through an outbox.

pub mod budget;
pub mod metrics;
pub mod outcomes;
pub mod routes;
pub mod runner;
mod validate;
pub mod webhook_routes;
pub mod webhooks;

use sea_orm::entity::prelude::*;

use crate::server::db::monitors::{Entity, Model};
use crate::server::db::users;
use crate::server::error::{ApiError, ApiResult};
use crate::server::AppState;
use netcheck_proto::api::monitors::{AlertRule, Monitor, MonitorCheck, MonitorState, Notify};
use netcheck_proto::check::CheckSpec;

impl Model {
    pub fn spec(&self) -> Result<CheckSpec, DbErr> {
        crate::server::checks::model::stored_spec(self.check_type, &self.options)
    }

    pub fn notify_list(&self) -> Vec<Notify> {
        serde_json::from_value(self.notify.clone()).unwrap_or_default()
    }

    pub fn view(&self) -> Result<Monitor, DbErr> {
        Ok(Monitor {
            id: self.id,
            name: self.name.clone(),
            check: MonitorCheck {
                spec: self.spec()?,
                target: self.target.clone(),
                unknown: Default::default(),
            },
            selection: serde_json::from_value(self.selection.clone()).unwrap_or_default(),
            interval_secs: self.interval_secs as u32,
            alert: AlertRule {
                min_failing_agents: self.min_failing_agents as u32,
                for_runs: self.for_runs as u32,
            },
            notify: self.notify_list(),
            paused: self.paused,
            state: MonitorState::parse(&self.state),
            last_check_id: self.last_check_id,
            last_run_at: self.last_run_at,
            next_run_at: self.next_run_at,
            delayed_since: self.delayed_since,
            created_at: self.created_at,
            user_id: self.user_id,
            stats: None,
        })
    }
}

/// A monitor the user may see (their own, or any for admins); 404 otherwise.
pub async fn load_visible(state: &AppState, user: &users::Model, id: Uuid) -> ApiResult<Model> {
    let m = Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("monitor"))?;
    if !user.may_see(m.user_id) {
        return Err(ApiError::not_found("monitor"));
    }
    Ok(m)
}

/// A fresh webhook signing key: 256 random bits, URL-safe.
pub fn new_secret() -> String {
    use base64::Engine;
    use rand::Rng;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

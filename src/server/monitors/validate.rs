//! The rules for a monitor's fields, shared by creation and change.

use crate::server::checks::validate;
use crate::server::error::{ApiError, ApiResult};
use crate::server::AppState;
use netcheck_proto::api::monitors::{AlertRule, MonitorCheck, Notify};
use netcheck_proto::api::AgentSelection;

pub(super) fn validate_name(name: &str) -> ApiResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 128 || n.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "name",
            "name must be 1-128 printable characters",
        ));
    }
    Ok(n.to_string())
}

/// Checks a run's definition as a check would be checked; the normalised target and options.
pub(super) fn validate_check(
    state: &AppState,
    check: &MonitorCheck,
    selection: &AgentSelection,
) -> ApiResult<(String, serde_json::Value)> {
    if selection.same_agents_as.is_some() {
        return Err(ApiError::invalid_field(
            "same_agents_as",
            "monitors choose their agents with agents, locations or limit",
        ));
    }
    crate::server::selection::validate(selection)?;
    crate::server::extract::refuse_unknown(&check.unknown).map_err(under_check)?;
    let target = validate::check(&check.target, &check.spec, &state.policy).map_err(under_check)?;
    Ok((
        target,
        check.spec.options_json().map_err(ApiError::internal)?,
    ))
}

/// The same field names as a check's, under `check.`.
fn under_check(e: ApiError) -> ApiError {
    let field = e.field().map(|f| format!("check.{f}"));
    match field {
        Some(f) => e.with_details(serde_json::json!({ "field": f })),
        None => e,
    }
}

pub(super) fn validate_interval(v: Option<u32>) -> ApiResult<u32> {
    let v = v.unwrap_or(60);
    if !(10..=86_400).contains(&v) {
        return Err(ApiError::invalid_field(
            "interval_secs",
            "interval_secs must be between 10 and 86400",
        ));
    }
    Ok(v)
}

pub(super) fn validate_alert(a: Option<AlertRule>) -> ApiResult<AlertRule> {
    let a = a.unwrap_or_default();
    if !(1..=500).contains(&a.min_failing_agents) {
        return Err(ApiError::invalid_field(
            "alert.min_failing_agents",
            "alert.min_failing_agents must be between 1 and 500",
        ));
    }
    if !(1..=100).contains(&a.for_runs) {
        return Err(ApiError::invalid_field(
            "alert.for_runs",
            "alert.for_runs must be between 1 and 100",
        ));
    }
    Ok(a)
}

pub(super) async fn validate_notify(state: &AppState, notify: &[Notify]) -> ApiResult<()> {
    crate::server::notify::validate(state, notify).await
}

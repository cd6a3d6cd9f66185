//! The API's view of the `checks` and `check_results` rows ([`crate::server::db::checks`]).

use crate::server::db::checks::{check, result};
use crate::server::db::stored::StoredCheckType;
use netcheck_proto::api::checks::{CheckResultView, CheckView, ResultAgent};
use netcheck_proto::check::CheckSpec;

impl From<result::Model> for CheckResultView {
    fn from(m: result::Model) -> Self {
        // Rows hold what agents sent, read by the same types; one that does not read (an
        // answer of a newer agent this server does not know) shows without its data.
        let data = m.data.and_then(|d| serde_json::from_value(d).ok());
        Self {
            agent: ResultAgent {
                id: m.agent_id,
                name: m.agent_name,
                region: m.agent_region,
                location: m
                    .agent_location
                    .and_then(|l| serde_json::from_value(l).ok()),
            },
            status: m.status.into(),
            error: m.error.and_then(|e| serde_json::from_value(e).ok()),
            started_at: m.started_at,
            duration_ms: m.duration_ms,
            data,
        }
    }
}

/// A stored check's or monitor's spec. Rows are written from typed options, so this fails
/// only for one a newer server wrote with options this one does not know (after a
/// rollback): an error, not a guess at what it meant.
pub fn stored_spec(
    check_type: StoredCheckType,
    options: &serde_json::Value,
) -> Result<CheckSpec, sea_orm::DbErr> {
    CheckSpec::from_parts(check_type.into(), options)
        .map_err(|e| sea_orm::DbErr::Type(format!("stored {}: {}", e.field, e.message)))
}

/// The API's view of a stored check and its results (sorted by agent name).
pub fn check_view(
    c: check::Model,
    mut results: Vec<result::Model>,
) -> Result<CheckView, sea_orm::DbErr> {
    results.sort_by(|a, b| a.agent_name.cmp(&b.agent_name));
    Ok(CheckView {
        id: c.id,
        spec: stored_spec(c.check_type, &c.options)?,
        target: c.target,
        status: c.status.into(),
        created_at: c.created_at,
        finished_at: c.finished_at,
        monitor_id: c.monitor_id,
        results: results.into_iter().map(Into::into).collect(),
    })
}

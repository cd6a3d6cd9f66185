//! Checks: the creation request, the stored check with its results (`results`), the history
//! (`history`) and the live event stream (`events`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AgentSelection;
use crate::check::{CheckSpec, CheckType, SpecError};

mod events;
mod history;
mod results;
pub use events::{CheckEvent, CheckFinished};
pub use history::{CheckPage, CheckSummary, HistoryQuery, OutcomeFilter};
pub(crate) use results::maybe_result_data;
pub use results::{CheckResultView, CheckView, ResultAgent};

/// Where a check stands: waiting for answers, or done (every agent answered, or its deadline
/// passed and the silent ones were marked `timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    InProgress,
    Finished,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::InProgress => "in_progress",
            CheckStatus::Finished => "finished",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateCheck {
    /// `type` and its `options` (see API.md); defaults apply to what is left out.
    #[serde(flatten)]
    pub spec: CheckSpec,
    pub target: String,
    /// Which agents run it; nothing chosen: every online agent.
    #[serde(flatten)]
    pub selection: AgentSelection,
    /// Fields that belong to neither: refused by [`CreateCheck::refuse_unknown`] (serde's
    /// `deny_unknown_fields` does not combine with `flatten`).
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: BTreeMap<String, Value>,
}

impl CreateCheck {
    /// A check of `target` with these options of the type (the JSON option object, e.g.
    /// `{"port": 443}`; defaults fill in the rest), run by every online agent.
    pub fn from_options(
        check_type: CheckType,
        target: impl Into<String>,
        options: Value,
    ) -> Result<Self, SpecError> {
        Ok(Self::of(
            CheckSpec::from_parts(check_type, &options)?,
            target,
        ))
    }

    /// A check of `target` as `spec` says, run by every online agent.
    pub fn of(spec: CheckSpec, target: impl Into<String>) -> Self {
        Self {
            spec,
            target: target.into(),
            selection: AgentSelection::default(),
            unknown: BTreeMap::new(),
        }
    }

    /// The same check, run only by these agents (ids or names).
    pub fn agents(mut self, agents: impl IntoIterator<Item = impl ToString>) -> Self {
        self.selection.agents = Some(agents.into_iter().map(|a| a.to_string()).collect());
        self
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckCreated {
    pub id: Uuid,
    /// `in_progress` (or `finished` when every chosen agent was offline).
    pub status: CheckStatus,
    /// Agents asked to run it.
    pub agents: usize,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::check::{PingOptions, TcpOptions};

    #[test]
    fn a_request_reads_its_typed_spec_and_keeps_the_rest_apart() {
        let body: CreateCheck = serde_json::from_value(json!({
            "type": "tcp", "target": "example.com", "options": {"port": 443},
            "limit": 2, "colour": "blue"
        }))
        .unwrap();
        let CheckSpec::Tcp(TcpOptions {
            port, timeout_ms, ..
        }) = body.spec
        else {
            panic!("a tcp spec: {body:?}")
        };
        assert_eq!((port, timeout_ms), (443, 3000));
        assert_eq!(body.selection.limit, Some(2));
        assert_eq!(body.unknown.keys().collect::<Vec<_>>(), ["colour"]);
    }

    #[test]
    fn left_out_or_null_options_are_the_types_defaults() {
        for options in [
            json!({"type": "ping"}),
            json!({"type": "ping", "options": null}),
        ] {
            let mut body = options;
            body["target"] = json!("example.com");
            let body: CreateCheck = serde_json::from_value(body).unwrap();
            assert_eq!(body.spec, CheckSpec::Ping(PingOptions::default()));
        }
    }

    #[test]
    fn a_bad_type_or_option_is_named_in_the_error() {
        let named = |body: serde_json::Value| {
            let e = serde_json::from_value::<CreateCheck>(body).unwrap_err();
            SpecError::from_serde_message(&e.to_string()).map(|e| e.field)
        };
        let field = |f: &str| Some(f.to_string());
        assert_eq!(named(json!({"type": "nope", "target": "x"})), field("type"));
        assert_eq!(
            named(json!({"type": "ping", "target": "x", "options": {"count": "many"}})),
            field("options.count")
        );
        assert_eq!(
            named(json!({"type": "tcp", "target": "x", "options": {}})),
            field("options.port")
        );
        assert_eq!(
            named(json!({"type": "http", "target": "x", "options": {"expect": {"bogus": 1}}})),
            field("options.expect.bogus")
        );
    }

    #[test]
    fn the_wire_shape_is_type_and_options_beside_the_other_fields() {
        let body = CreateCheck::from_options(CheckType::Tcp, "example.com", json!({"port": 22}))
            .unwrap()
            .agents(["fra-1"]);
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["type"], "tcp");
        assert_eq!(json["options"]["port"], 22);
        assert_eq!(json["target"], "example.com");
        assert_eq!(json["agents"], json!(["fra-1"]));
        let back: CreateCheck = serde_json::from_value(json).unwrap();
        assert_eq!(back.spec, body.spec);
        assert!(back.unknown.is_empty());
    }
}

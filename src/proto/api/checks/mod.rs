//! Checks: the creation request, the stored check with its results (`results`), the history
//! (`history`) and the live event stream (`events`).

use std::collections::BTreeMap;

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AgentSelection;
use crate::proto::check::CheckType;

mod events;
mod history;
mod results;
pub use events::{CheckEvent, CheckFinished};
pub use history::{CheckPage, CheckSummary, HistoryQuery, OutcomeFilter};
pub use results::{CheckResultView, CheckView, ResultAgent};

/// Where a check stands: waiting for answers, or done (every agent answered, or its deadline
/// passed and the silent ones were marked `timeout`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    #[sea_orm(string_value = "in_progress")]
    InProgress,
    #[sea_orm(string_value = "finished")]
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
    #[serde(rename = "type")]
    pub check_type: CheckType,
    pub target: String,
    /// Options of the type (see API.md); defaults apply to what is left out.
    #[schema(value_type = Option<crate::proto::check::CheckOptions>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
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
    /// A check of `target` with the type's default options, run by every online agent.
    pub fn new(check_type: CheckType, target: impl Into<String>) -> Self {
        Self {
            check_type,
            target: target.into(),
            options: None,
            selection: AgentSelection::default(),
            unknown: BTreeMap::new(),
        }
    }

    /// The same check with these options (the type's option object, e.g. `{"port": 443}`).
    pub fn options(mut self, options: Value) -> Self {
        self.options = Some(options);
        self
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

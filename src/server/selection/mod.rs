//! Choosing the agents that run a check: an [`AgentSelection`](netcheck_proto::api::AgentSelection)
//! is validated (`choose::validate`), then matched against a [`Fleet`] (one read of the agent
//! table, indexed) and spread over as many places as it can (`spread`). Everything here works
//! on plain data ([`Member`]), not on database rows, so it is tested without a database and
//! the agent table's module depends on it, not the other way round.

mod choose;
mod fleet;
mod spread;

pub use choose::{choose, validate, worth_rereading, Choice, Refusal};
pub use fleet::{Fleet, Member};

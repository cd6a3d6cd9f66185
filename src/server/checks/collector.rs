//! Consumes the results queue: authenticates each result by the broker-verified `user_id`,
//! stores it exactly once, acks only after the commit, and publishes the live event.

use std::time::Duration;

use amqprs::channel::{BasicAckArguments, BasicNackArguments};
use sea_orm::entity::prelude::*;

use super::{events, store_result, Stored};
use crate::proto::check::{CheckResult, ResultStatus};
use crate::server::broker::link::Delivery;
use crate::server::AppState;

/// Largest result message accepted.
pub const MAX_RESULT_BYTES: usize = 256 * 1024;

/// The agent a broker user name belongs to (`netcheck-agent-<uuid>`).
fn agent_of(user: &str) -> Option<Uuid> {
    Uuid::parse_str(user.strip_prefix("netcheck-agent-")?).ok()
}

pub async fn handle(state: actix_web::web::Data<AppState>, d: Delivery) {
    let ack = |d: &Delivery| {
        let ch = d.channel.clone();
        let tag = d.tag;
        async move {
            if let Err(e) = ch.basic_ack(BasicAckArguments::new(tag, false)).await {
                tracing::warn!(error = %e, "could not ack a result (it will be redelivered and deduplicated)");
            }
        }
    };
    // RabbitMQ rejects a user_id that is not the publishing connection's user, so this is
    // the sender's identity.
    let Some(sender) = d.properties.user_id().and_then(|u| agent_of(u)) else {
        state.metrics.drop_result("unauthenticated");
        tracing::warn!("dropping a result without an agent user_id");
        return ack(&d).await;
    };
    if d.body.len() > MAX_RESULT_BYTES {
        state.metrics.drop_result("malformed");
        tracing::warn!(agent_id = %sender, bytes = d.body.len(), "dropping an oversized result");
        return ack(&d).await;
    }
    let result: CheckResult = match serde_json::from_slice(&d.body) {
        Ok(r) => r,
        Err(e) => {
            state.metrics.drop_result("malformed");
            tracing::warn!(agent_id = %sender, error = %e, "dropping a malformed result");
            return ack(&d).await;
        }
    };
    if result.agent_id != sender {
        state.metrics.drop_result("forged");
        tracing::warn!(agent_id = %sender, claimed = %result.agent_id, "dropping a result that claims another agent");
        return ack(&d).await;
    }
    if !matches!(result.status, ResultStatus::Ok | ResultStatus::Failed) {
        state.metrics.drop_result("malformed");
        tracing::warn!(agent_id = %sender, "dropping a result with a status agents may not report");
        return ack(&d).await;
    }
    match store_result(&state.db, &result).await {
        Ok(Stored::New { finished, row }) => {
            ack(&d).await;
            state.metrics.results_stored.inc();
            // Check ids are UUIDv7: their timestamp is the creation time.
            if let Some((secs, nanos)) = result.check_id.get_timestamp().map(|t| t.to_unix()) {
                let created = secs as f64 + nanos as f64 / 1e9;
                let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
                state
                    .metrics
                    .result_latency
                    .observe((now - created).max(0.0));
            }
            events::publish_result(&state, *row).await;
            if finished {
                state.metrics.checks_finished.inc();
                events::publish_finished(&state, result.check_id).await;
            }
        }
        Ok(Stored::Duplicate) => {
            state.metrics.results_duplicate.inc();
            ack(&d).await;
        }
        Ok(Stored::NotAsked) => {
            state.metrics.drop_result("not_asked");
            tracing::warn!(agent_id = %sender, check_id = %result.check_id, "dropping a result for a check the agent was not asked to run");
            ack(&d).await;
        }
        Err(e) => {
            // Not stored: give it back to the broker after a pause (the database may be down).
            tracing::warn!(error = %e, "could not store a result; requeueing");
            crate::server::metrics::dependency_error("database");
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = d
                .channel
                .basic_nack(BasicNackArguments::new(d.tag, false, true))
                .await;
        }
    }
}

//! Runs nobody stores: `/probe`'s. Their requests carry UUIDv8 ids where checks carry v7
//! ones, and the collector hands their answers straight to whoever waits for them (in
//! process, or through Redis when another server instance waits) instead of the database.

use std::sync::Arc;

use deadpool_redis::redis;
use uuid::Uuid;

use crate::server::AppState;
use netcheck_proto::result::CheckResult;

/// Whether `id` is an unstored run's (checks' ids are UUIDv7).
pub fn is_unstored(id: &Uuid) -> bool {
    id.get_version_num() == 8
}

/// A new unstored run's id.
pub fn new_id() -> Uuid {
    Uuid::new_v8(rand::random())
}

/// Hands an unstored run's result to the one waiting for it: on this instance when it is
/// here, otherwise through Redis to the instance that is. Nobody waiting (a scrape timed out):
/// it is dropped, as blackbox_exporter would drop it.
pub async fn hand_over(state: &AppState, result: &CheckResult) {
    let Ok(payload) = serde_json::to_string(result) else {
        return;
    };
    let payload: Arc<str> = payload.into();
    if state.events.deliver_here(result.check_id, payload.clone()) {
        return;
    }
    let Ok(mut conn) = state.redis.get().await else {
        return;
    };
    let channel = super::events::channel(state, result.check_id);
    let _: Result<(), _> = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload.as_ref())
        .query_async(&mut conn)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstored_ids_are_told_from_check_ids() {
        assert!(is_unstored(&new_id()));
        assert!(!is_unstored(&Uuid::now_v7()));
    }
}

//! Checks: creation and fan-out to agents (`create`), results taken from the broker
//! (`collector`) and stored exactly once (`db::results`), finishing at the deadline (`sweeper`), and
//! the live event stream (`events`); admission control from queueing delay (`pressure`).

pub mod collector;
pub mod create;
pub mod events;
pub mod model;
pub mod pressure;
pub mod routes;
pub mod share;
mod sweeper;
pub mod unstored;
pub mod validate;

use sea_orm::entity::prelude::*;

use super::db::checks::check;
use super::error::{ApiError, ApiResult};
use super::AppState;

pub use create::{admit, create};
pub use sweeper::{finish_due, prune_old, spawn_sweeper, PRUNE_BATCH, SWEEP_BATCH};

/// Loads a check the user may see (their own, or any for admins); 404 otherwise.
pub async fn load_visible(
    state: &AppState,
    user: &super::db::users::Model,
    id: Uuid,
) -> ApiResult<check::Model> {
    let c = check::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("check"))?;
    if !user.may_see(c.user_id) {
        return Err(ApiError::not_found("check"));
    }
    Ok(c)
}

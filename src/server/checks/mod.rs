//! Checks: creation and fan-out to agents (`create`), exactly-once storage of results as they
//! arrive (`collector`), finishing at the deadline (`sweeper`), and the live event stream
//! (`events`). A result's way into the database is all in `collector`.

pub mod choose;
pub mod collector;
mod create;
pub mod events;
pub mod model;
pub mod routes;
pub mod share;
mod sweeper;
pub mod validate;

use sea_orm::entity::prelude::*;

use super::error::{ApiError, ApiResult};
use super::AppState;
use model::check;

pub use collector::{store_results, Stored, StoredBatch};
pub use create::create;
pub use sweeper::{finish_due, prune_old, spawn_sweeper, PRUNE_BATCH, SWEEP_BATCH};

/// Loads a check the user may see (their own, or any for admins); 404 otherwise.
pub async fn load_visible(
    state: &AppState,
    user: &super::users::Model,
    id: Uuid,
) -> ApiResult<check::Model> {
    let c = check::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("check"))?;
    if c.user_id != user.id && user.role != crate::proto::api::auth::Role::Admin {
        return Err(ApiError::not_found("check"));
    }
    Ok(c)
}

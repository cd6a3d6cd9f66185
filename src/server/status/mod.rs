//! Status pages: an owner groups monitors under display names; anyone may read a public page
//! (`public`) and its badges (`badge`). The page is assembled from daily roll-ups
//! (`monitor_days`), the latest judged run of each monitor, its incidents and maintenance.

pub mod badge;
pub mod public;
pub mod routes;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QuerySelect};

use crate::server::db::monitors;
use crate::server::db::users;
use crate::server::error::{ApiError, ApiResult};
use crate::server::AppState;
use netcheck_proto::api::monitors::{StatusGroup, StatusPage};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "status_pages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub slug: String,
    pub title: String,
    pub description: Option<String>,
    pub public: bool,
    pub show_targets: bool,
    pub groups: Json,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn groups(&self) -> Vec<StatusGroup> {
        serde_json::from_value(self.groups.clone()).unwrap_or_default()
    }

    pub fn view(&self) -> StatusPage {
        StatusPage {
            id: self.id,
            slug: self.slug.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            public: self.public,
            show_targets: self.show_targets,
            groups: self.groups(),
            user_id: self.user_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A page the user may see (their own, or any for admins); 404 otherwise.
pub async fn load_visible(state: &AppState, user: &users::Model, id: Uuid) -> ApiResult<Model> {
    let p = Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("status page"))?;
    if !user.may_see(p.user_id) {
        return Err(ApiError::not_found("status page"));
    }
    Ok(p)
}

/// Most groups on a page, and monitors over all its groups.
const MAX_GROUPS: usize = 20;
const MAX_MONITORS: usize = 200;

pub fn validate_slug(slug: &str) -> ApiResult<()> {
    let ok = (3..=40).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(ApiError::invalid_field(
            "slug",
            "slug is 3-40 of a-z, 0-9 and -",
        ));
    }
    Ok(())
}

pub fn validate_text(field: &str, text: &str, max: usize, required: bool) -> ApiResult<String> {
    let t = text.trim();
    if (required && t.is_empty())
        || t.chars().count() > max
        || t.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "{field} is {} {max} printable characters",
                if required { "1 to" } else { "at most" }
            ),
        ));
    }
    Ok(t.to_string())
}

/// Checks the groups: names, display names, and monitors that exist, belong to `owner` and
/// appear once. The groups with names trimmed.
pub async fn validate_groups(
    db: &impl ConnectionTrait,
    owner: Uuid,
    groups: &[StatusGroup],
) -> ApiResult<Vec<StatusGroup>> {
    if groups.len() > MAX_GROUPS {
        return Err(ApiError::invalid_field(
            "groups",
            format!("at most {MAX_GROUPS} groups"),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(groups.len());
    for (i, g) in groups.iter().enumerate() {
        let name = validate_text(&format!("groups[{i}].name"), &g.name, 100, true)?;
        let mut monitors = Vec::with_capacity(g.monitors.len());
        for (j, m) in g.monitors.iter().enumerate() {
            if !seen.insert(m.id) {
                return Err(ApiError::invalid_field(
                    &format!("groups[{i}].monitors[{j}].id"),
                    "a monitor appears once on a page",
                ));
            }
            let display_name = match &m.display_name {
                Some(d) => Some(validate_text(
                    &format!("groups[{i}].monitors[{j}].display_name"),
                    d,
                    100,
                    true,
                )?),
                None => None,
            };
            monitors.push(netcheck_proto::api::monitors::StatusGroupMonitor {
                id: m.id,
                display_name,
            });
        }
        out.push(StatusGroup { name, monitors });
    }
    if seen.len() > MAX_MONITORS {
        return Err(ApiError::invalid_field(
            "groups",
            format!("at most {MAX_MONITORS} monitors on a page"),
        ));
    }
    let ids: Vec<Uuid> = seen.iter().copied().collect();
    let found: HashSet<Uuid> = monitors::Entity::find()
        .select_only()
        .column(monitors::Column::Id)
        .filter(monitors::Column::Id.is_in(ids))
        .filter(monitors::Column::UserId.eq(owner))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    for (i, g) in out.iter().enumerate() {
        for (j, m) in g.monitors.iter().enumerate() {
            if !found.contains(&m.id) {
                return Err(ApiError::invalid_field(
                    &format!("groups[{i}].monitors[{j}].id"),
                    format!("no monitor {} of the page's owner", m.id),
                ));
            }
        }
    }
    Ok(out)
}
